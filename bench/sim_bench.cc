// Simulator speed: simulated actions per second, and the 1024 stages x 4096
// micro-batches case (issue 4: >= 10 M actions/s on one core, < 2 s). The
// last argument picks the engine: 0 = automatic (the dataflow engine on these chains),
// 1 = the event queue, for comparison.
#include <benchmark/benchmark.h>

#include "common/generators.h"
#include "sim/scenario.h"
#include "sim/simulator.h"

namespace xpipe {
namespace {

SimConfig Config(const Schedule& s, Bytes out_bytes) {
  SimConfig c;
  for (int k = 0; k < s.num_stages; ++k) {
    StageCost sc;
    sc.forward_ns = 1000 + 37 * (k % 7);
    sc.backward_ns = 2000 + 53 * (k % 5);
    sc.output_bytes = k + 1 < s.num_stages ? out_bytes : 0;
    sc.input_bytes = k > 0 ? out_bytes : 0;
    sc.parameter_bytes = 1 << 20;
    sc.activation_bytes = 1 << 16;
    c.stages.push_back(sc);
  }
  c.memory = MemoryModelFor(s, OptimizerKind::kAdam, false);
  c.cluster.link_bytes_per_sec = 10e9;
  return c;
}

void BM_Simulate(benchmark::State& state) {
  ScheduleParams p;
  p.kind = static_cast<ScheduleKind>(state.range(0));
  p.devices = static_cast<int>(state.range(1));
  p.micro_batches = static_cast<int>(state.range(2));
  p.mini_batches = 1;
  const Schedule s = Generate(p);
  SimConfig c = Config(s, state.range(3));
  c.engine = static_cast<SimEngine>(state.range(4));
  std::int64_t actions = 0;
  for (auto _ : state) {
    const SimResult r = Simulate(s, c);
    actions = r.actions;
    benchmark::DoNotOptimize(r.makespan_ns);
  }
  state.counters["actions"] = static_cast<double>(actions);
  state.counters["actions/s"] =
      benchmark::Counter(static_cast<double>(actions), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(ScheduleName(p.kind)) +
                 (state.range(3) ? " with transfers" : " free transfers") +
                 (c.engine == SimEngine::kEventQueue ? ", event queue" : ", dataflow"));
}

constexpr int kGPipe = static_cast<int>(ScheduleKind::kGPipe);
constexpr int k1F1B = static_cast<int>(ScheduleKind::kOneFOneBFlush);
constexpr int kXPipe = static_cast<int>(ScheduleKind::kXPipe);
constexpr int kAuto = static_cast<int>(SimEngine::kAuto);
constexpr int kEvents = static_cast<int>(SimEngine::kEventQueue);

BENCHMARK(BM_Simulate)
    ->Args({kGPipe, 8, 64, 0, kAuto})
    ->Args({kGPipe, 1024, 4096, 0, kAuto})
    ->Args({kGPipe, 1024, 4096, 1 << 20, kAuto})
    ->Args({k1F1B, 1024, 4096, 1 << 20, kAuto})
    ->Args({kXPipe, 1024, 4096, 1 << 20, kAuto})
    ->Args({kGPipe, 1024, 4096, 1 << 20, kEvents})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);

}  // namespace
}  // namespace xpipe

BENCHMARK_MAIN();
