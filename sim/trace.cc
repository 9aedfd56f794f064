#include "sim/trace.h"

#include <nlohmann/json.hpp>

namespace xpipe {

std::string ToChromeTrace(const Schedule& s, const SimResult& r) {
  using nlohmann::json;
  json events = json::array();
  const auto meta = [&](int pid, int tid, const char* what, const std::string& name) {
    json e = {{"ph", "M"}, {"pid", pid}, {"tid", tid}, {"name", what}, {"args", {{"name", name}}}};
    events.push_back(std::move(e));
  };
  meta(0, 0, "process_name", "compute");
  meta(1, 0, "process_name", "links");
  meta(2, 0, "process_name", "memory");
  for (int d = 0; d < s.num_devices; ++d) meta(0, d, "thread_name", "device " + std::to_string(d));
  for (std::size_t l = 0; l < r.link_names.size(); ++l)
    meta(1, static_cast<int>(l), "thread_name", "link " + r.link_names[l]);
  for (const TraceSpan& t : r.trace) {
    const bool link = t.track >= s.num_devices;
    json e = {{"ph", "X"},
              {"name", ToText(t.action, s.micro_batches)},
              {"cat", link ? "transfer" : "compute"},
              {"pid", link ? 1 : 0},
              {"tid", link ? t.track - s.num_devices : t.track},
              {"ts", NsToUs(t.start_ns)},
              {"dur", NsToUs(t.end_ns - t.start_ns)},
              {"args", {{"mini_batch", t.action.mini_batch}, {"micro_batch", t.action.micro_batch}}}};
    if (link) e["args"]["bytes"] = t.bytes;
    events.push_back(std::move(e));
  }
  for (const MemorySample& m : r.memory_trace) {
    json e = {{"ph", "C"},
              {"name", "memory stage " + std::to_string(m.stage)},
              {"pid", 2},
              {"tid", 0},
              {"ts", NsToUs(m.time_ns)},
              {"args", {{"bytes", m.bytes}}}};
    events.push_back(std::move(e));
  }
  json doc = {{"traceEvents", std::move(events)}, {"displayTimeUnit", "ns"}};
  return doc.dump() + "\n";
}

}  // namespace xpipe
