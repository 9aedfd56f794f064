// What the schedule fuzzers do with a schedule that parsed: validate it; if
// valid, dry-run, lower and validate again, simulate it on uniform costs,
// and write it as CSV and JSON, which must read back to the same actions.
#pragma once

#include "common/dry_run.h"
#include "common/lowering.h"
#include "common/schedule_io.h"
#include "common/validate.h"
#include "sim/simulator.h"

namespace xpipe::fuzz {

inline void Exercise(const Schedule& s) {
  if (!Validate(s).ok) return;
  (void)DryRun(s);
  std::size_t actions = 0;
  for (const auto& row : s.device_actions) actions += row.size();
  if (actions > 20000) return;  // keep an execution short
  const Schedule lowered = LowerCommunication(s);
  if (!Validate(lowered).ok) __builtin_trap();  // a valid schedule lowers to a valid one
  SimConfig c;
  for (int k = 0; k < s.num_stages; ++k) {
    StageCost sc;
    sc.forward_ns = 1000;
    sc.backward_ns = 2000;
    sc.output_bytes = sc.input_bytes = 4096;
    c.stages.push_back(sc);
  }
  c.memory.versions.assign(s.num_stages, 1);
  c.memory.scratch.assign(s.num_stages, 0);
  c.memory.in_flight.assign(s.num_stages, 0);
  (void)Simulate(s, c);
  const Schedule back = ParseJson(ToJson(s), "round trip");
  if (back.device_actions != s.device_actions) __builtin_trap();
  const Schedule csv = ParseCsv(ToCsv(s, CsvFlavour::kXPipe), s.micro_batches, "round trip");
  if (csv.device_actions.size() > s.device_actions.size()) __builtin_trap();
}

}  // namespace xpipe::fuzz
