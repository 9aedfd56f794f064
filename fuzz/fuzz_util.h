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
  // The engines against each other (a difference is a bug): on the chain,
  // the dataflow engine and the event engine with an event per completion;
  // on a shared bus, with and without a copy engine, the event engine
  // running ahead and with an event per completion.
  const auto same = [](const SimResult& a, const SimResult& b) {
    return a.makespan_ns == b.makespan_ns && a.busy_ns == b.busy_ns && a.peak_in_flight == b.peak_in_flight &&
           a.peak_memory_bytes == b.peak_memory_bytes && a.link_bytes == b.link_bytes &&
           a.actions == b.actions;
  };
  c.engine = SimEngine::kDataflow;
  const SimResult dataflow = Simulate(s, c);
  c.engine = SimEngine::kEventQueue;
  c.run_ahead = false;
  if (!same(dataflow, Simulate(s, c))) __builtin_trap();
  c.cluster.topology = Topology::kSharedBus;
  c.cluster.link_bytes_per_sec = 1e9;  // 4 us per transfer, longer than a pass: queues
  c.cluster.link_latency_ns = 300;
  for (bool overlap : {true, false}) {
    c.cluster.overlap_compute = overlap;
    c.run_ahead = false;
    const SimResult every = Simulate(s, c);
    c.run_ahead = true;
    if (!same(every, Simulate(s, c))) __builtin_trap();
  }
  const Schedule back = ParseJson(ToJson(s), "round trip");
  if (back.device_actions != s.device_actions) __builtin_trap();
  const Schedule csv = ParseCsv(ToCsv(s, CsvFlavour::kXPipe), s.micro_batches, "round trip");
  if (csv.device_actions.size() > s.device_actions.size()) __builtin_trap();
}

}  // namespace xpipe::fuzz
