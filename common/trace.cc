#include "common/trace.h"

#include <nlohmann/json.hpp>

namespace xpipe {

std::string ToChromeTrace(const Schedule& s, const Trace& t) {
  using nlohmann::json;
  json events = json::array();
  const auto meta = [&](int pid, int tid, const char* what, const std::string& name) {
    events.push_back({{"ph", "M"}, {"pid", pid}, {"tid", tid}, {"name", what}, {"args", {{"name", name}}}});
  };
  meta(0, 0, "process_name", "compute");
  meta(1, 0, "process_name", "links");
  meta(2, 0, "process_name", "memory");
  for (int d = 0; d < s.num_devices; ++d) meta(0, d, "thread_name", "device " + std::to_string(d));
  for (std::size_t i = 0; i < t.transfer_tracks.size(); ++i)
    meta(1, static_cast<int>(i), "thread_name", t.transfer_tracks[i]);
  for (const ActionSpan& a : t.spans) {
    const bool link = a.track >= s.num_devices;
    json e = {{"ph", "X"},
              {"name", ToText(a.action, s.micro_batches)},
              {"cat", link ? "transfer" : "compute"},
              {"pid", link ? 1 : 0},
              {"tid", link ? a.track - s.num_devices : a.track},
              {"ts", NsToUs(a.start_ns)},
              {"dur", NsToUs(a.end_ns - a.start_ns)},
              {"args", {{"mini_batch", a.action.mini_batch}, {"micro_batch", a.action.micro_batch}}}};
    if (link) e["args"]["bytes"] = a.bytes;
    events.push_back(std::move(e));
  }
  for (const MemorySample& m : t.memory)
    events.push_back({{"ph", "C"},
                      {"name", "memory stage " + std::to_string(m.stage)},
                      {"pid", 2},
                      {"tid", 0},
                      {"ts", NsToUs(m.time_ns)},
                      {"args", {{"bytes", m.bytes}}}});
  const json doc = {{"traceEvents", std::move(events)}, {"displayTimeUnit", "ns"}};
  return doc.dump() + "\n";
}

}  // namespace xpipe
