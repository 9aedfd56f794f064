#include "common/schedule_file.h"

#include <algorithm>
#include <tuple>

#include "common/error.h"
#include "common/lowering.h"
#include "common/schedule_io.h"
#include "common/validate.h"
#include "common/versioning.h"

namespace xpipe {
namespace {

// The messages a lowered schedule posts between different devices, sorted:
// (device, kind, stage, mini-batch, micro-batch).
std::vector<std::tuple<int, int, int, int, int>> CrossDeviceMessages(const Schedule& s) {
  std::vector<std::tuple<int, int, int, int, int>> out;
  for (int d = 0; d < s.num_devices; ++d)
    for (const Action& a : s.device_actions[d]) {
      if (!IsComm(a.kind)) continue;
      const int peer = PeerStage(a);
      if (peer < 0 || peer >= s.num_stages || s.stage_device[peer] == d) continue;
      out.emplace_back(d, static_cast<int>(a.kind), a.stage, a.mini_batch, a.micro_batch);
    }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

ScheduleFile ReadScheduleFile(const std::string& path, int micro_batches) {
  const std::string text = ReadFile(path);
  const std::size_t first = text.find_first_not_of(" \t\r\n");
  const bool json = (path.size() > 5 && path.substr(path.size() - 5) == ".json") ||
                    (first != std::string::npos && text[first] == '{');
  ScheduleFile f;
  if (json) {
    f.schedule = ParseJson(text, path);
    if (micro_batches > 0 && micro_batches != f.schedule.micro_batches)
      throw InputError("--micro-batches", std::to_string(micro_batches) + " per mini-batch, but " + path +
                                              " says " + std::to_string(f.schedule.micro_batches));
  } else {
    f.schedule = ParseCsv(text, micro_batches, path, &f.notes);
  }
  Schedule& s = f.schedule;
  if (IsLowered(s) && !Validate(s).ok) {
    const Schedule compute = StripCommunication(s);
    if (Validate(compute).ok) {
      Schedule ours = LowerCommunication(compute);
      if (CrossDeviceMessages(ours) == CrossDeviceMessages(s)) {
        ours.kind = s.kind;
        s = std::move(ours);
        f.notes.push_back(path +
                          ": SEND/RECV reordered: each device pair is one channel matched in posting "
                          "order in xpipe, by tag in PyTorch; the messages are the file's");
      }
    }
  }
  return f;
}

void PrepareSchedule(ScheduleFile& f, const std::string& path, const ScheduleFileOptions& o) {
  Schedule& s = f.schedule;
  const ValidationResult r = Validate(s);
  if (!r.ok) throw InputError(path, r.error);
  if (!o.policy.empty()) s.kind = ParseScheduleKind(o.policy, "--policy");
  AnnotateWeights(s, o.target, o.backward_weights, o.prediction_base);
}

ScheduleFile LoadScheduleFile(const std::string& path, const ScheduleFileOptions& o) {
  ScheduleFile f = ReadScheduleFile(path, o.micro_batches);
  PrepareSchedule(f, path, o);
  return f;
}

Schedule RepeatSchedule(const Schedule& s, int times) {
  XPIPE_CHECK(times >= 1, "a schedule runs at least once");
  Schedule out = s;
  out.mini_batches = s.mini_batches * times;
  for (int d = 0; d < s.num_devices; ++d) {
    auto& row = out.device_actions[d];
    row.clear();
    row.reserve(s.device_actions[d].size() * times);
    for (int r = 0; r < times; ++r)
      for (const Action& a : s.device_actions[d]) {
        Action b;
        b.stage = a.stage;
        b.kind = a.kind;
        b.mini_batch = a.mini_batch + r * s.mini_batches;
        b.micro_batch = a.micro_batch;
        row.push_back(b);
      }
  }
  return out;
}

}  // namespace xpipe
