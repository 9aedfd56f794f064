// Helpers shared by the schedule tests.
#pragma once

#include <vector>

#include "common/dry_run.h"
#include "common/generators.h"
#include "common/versioning.h"

namespace xpipe::testing {

inline Schedule Make(ScheduleKind kind, int N, int T, int M, int V = 1) {
  ScheduleParams p;
  p.kind = kind;
  p.devices = N;
  p.micro_batches = T;
  p.mini_batches = M;
  p.chunks = V;
  return MakeSchedule(p);
}

// Unit-grid start times of stage k's U actions, in order.
inline std::vector<TimeNs> UpdateTimes(const Schedule& s, const DryRunResult& r, int stage) {
  std::vector<TimeNs> out;
  const int d = s.stage_device[stage];
  for (std::size_t i = 0; i < s.device_actions[d].size(); ++i)
    if (s.device_actions[d][i].kind == ActionKind::kUpdate && s.device_actions[d][i].stage == stage)
      out.push_back(r.start[d][i]);
  return out;
}

}  // namespace xpipe::testing
