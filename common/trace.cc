#include "common/trace.h"

#include <nlohmann/json.hpp>

namespace xpipe {
namespace {

// Events of one timeline under processes base (compute), base + 1 (links)
// and base + 2 (memory).
void AppendEvents(const Schedule& s, const Trace& t, int base, const std::string& prefix,
                  nlohmann::json& events) {
  using nlohmann::json;
  const auto meta = [&](int pid, int tid, const char* what, const std::string& name) {
    events.push_back({{"ph", "M"}, {"pid", pid}, {"tid", tid}, {"name", what}, {"args", {{"name", name}}}});
  };
  meta(base, 0, "process_name", prefix + "compute");
  meta(base + 1, 0, "process_name", prefix + "links");
  meta(base + 2, 0, "process_name", prefix + "memory");
  for (int d = 0; d < s.num_devices; ++d) meta(base, d, "thread_name", "device " + std::to_string(d));
  for (std::size_t i = 0; i < t.transfer_tracks.size(); ++i)
    meta(base + 1, static_cast<int>(i), "thread_name", t.transfer_tracks[i]);
  for (const ActionSpan& a : t.spans) {
    const bool link = a.track >= s.num_devices;
    json e = {{"ph", "X"},
              {"name", ToText(a.action, s.micro_batches)},
              {"cat", link ? "transfer" : "compute"},
              {"pid", base + (link ? 1 : 0)},
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
                      {"pid", base + 2},
                      {"tid", 0},
                      {"ts", NsToUs(m.time_ns)},
                      {"args", {{"bytes", m.bytes}}}});
}

}  // namespace

std::string ToChromeTrace(const Schedule& s, const Trace& t) { return ToChromeTrace(s, {{"", &t}}); }

std::string ToChromeTrace(const Schedule& s, const std::vector<TraceSection>& sections) {
  using nlohmann::json;
  json events = json::array();
  for (std::size_t i = 0; i < sections.size(); ++i) {
    const int base = 3 * static_cast<int>(i);
    const std::string prefix = sections[i].name.empty() ? "" : sections[i].name + " ";
    AppendEvents(s, *sections[i].trace, base, prefix, events);
  }
  const json doc = {{"traceEvents", std::move(events)}, {"displayTimeUnit", "ns"}};
  return doc.dump() + "\n";
}

TimeNs SteadyMiniBatchNs(const std::vector<TimeNs>& stage0_updates_ns, int mini_batches, TimeNs makespan_ns) {
  const int M = mini_batches;
  if (M >= 4 && static_cast<int>(stage0_updates_ns.size()) == M) {
    const int lo = M / 4, hi = (3 * M) / 4;
    return (stage0_updates_ns[hi] - stage0_updates_ns[lo]) / (hi - lo);
  }
  return M > 0 ? makespan_ns / M : 0;
}

}  // namespace xpipe
