// Builders for simulator tests: uniform stages, free or costed links.
#pragma once

#include "common/generators.h"
#include "sim/scenario.h"
#include "sim/simulator.h"

namespace xpipe::testing {

inline SimConfig UniformConfig(const Schedule& s, TimeNs f_ns, TimeNs b_ns, Bytes out_bytes = 0) {
  SimConfig c;
  for (int k = 0; k < s.num_stages; ++k) {
    StageCost sc;
    sc.forward_ns = f_ns;
    sc.backward_ns = b_ns;
    sc.output_bytes = k + 1 < s.num_stages ? out_bytes : 0;
    sc.input_bytes = k > 0 ? out_bytes : 0;
    c.stages.push_back(sc);
  }
  c.memory = MemoryModelFor(s, OptimizerKind::kAdam, false);
  c.samples_per_mini_batch = 32;
  return c;
}

inline Schedule Sched(ScheduleKind kind, int N, int T, int M) {
  ScheduleParams p;
  p.kind = kind;
  p.devices = N;
  p.micro_batches = T;
  p.mini_batches = M;
  return MakeSchedule(p);
}

}  // namespace xpipe::testing
