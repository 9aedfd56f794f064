// Simulator speed: simulated actions per second, and the 1024 stages x 4096
// micro-batches case (issue 4: >= 10 M actions/s on one core, < 2 s). The
// last argument picks the engine: 0 = automatic (the dataflow engine on these
// chains), 1 = the event queue; a fifth argument of 1 puts every transfer on
// one shared bus (event queue only); engine 3 is the event queue with an event
// for every compute completion (SimConfig::run_ahead off). BM_ReferenceLoop is what bench/run.sh
// divides by: a plain critical-path loop over the same actions (start = the
// later of the device and the input, plus the cost), whose speed is the
// machine's, not xpipe's.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <vector>

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
  // 3: the event queue with every compute completion an event (run_ahead off).
  c.engine = state.range(4) == 3 ? SimEngine::kEventQueue : static_cast<SimEngine>(state.range(4));
  c.run_ahead = state.range(4) != 3;
  if (state.range(5)) c.cluster.topology = Topology::kSharedBus;
  std::int64_t actions = 0, events = 0;
  for (auto _ : state) {
    const SimResult r = Simulate(s, c);
    actions = r.actions;
    events = r.events;
    benchmark::DoNotOptimize(r.makespan_ns);
  }
  state.counters["units"] = static_cast<double>(actions);  // per iteration, for bench/run.sh
  state.counters["events"] = static_cast<double>(events);
  state.counters["actions/s"] =
      benchmark::Counter(static_cast<double>(actions), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(ScheduleName(p.kind)) +
                 (state.range(3) ? " with transfers" : " free transfers") +
                 (state.range(5) ? " on a bus" : "") +
                 (c.engine != SimEngine::kEventQueue ? ", dataflow"
                  : c.run_ahead                      ? ", event queue"
                                                     : ", event queue, an event per completion"));
}

// GPipe's actions, device by device as far as inputs allow: the dependency
// walk every engine must do at least, with nothing else.
void BM_ReferenceLoop(benchmark::State& state) {
  ScheduleParams p;
  p.kind = ScheduleKind::kGPipe;
  p.devices = static_cast<int>(state.range(0));
  p.micro_batches = static_cast<int>(state.range(1));
  const Schedule s = Generate(p);
  const int S = s.num_stages, T = s.micro_batches;
  std::vector<TimeNs> fwd(static_cast<std::size_t>(S) * T), bwd(static_cast<std::size_t>(S) * T);
  std::int64_t actions = 0;
  for (auto _ : state) {
    std::fill(fwd.begin(), fwd.end(), -1);
    std::fill(bwd.begin(), bwd.end(), -1);
    std::vector<std::size_t> next(S, 0);
    std::vector<TimeNs> free(S, 0);
    actions = 0;
    for (bool progress = true; progress;) {
      progress = false;
      for (int d = 0; d < S; ++d) {
        const auto& row = s.device_actions[d];
        for (; next[d] < row.size(); ++next[d], ++actions, progress = true) {
          const Action& a = row[next[d]];
          TimeNs ready = 0;
          if (a.kind == ActionKind::kForward && d > 0) ready = fwd[(d - 1) * T + a.micro_batch];
          if (a.kind == ActionKind::kBackward && d + 1 < S) ready = bwd[(d + 1) * T + a.micro_batch];
          if (ready < 0) break;
          const TimeNs end = std::max(free[d], ready) +
                             (a.kind == ActionKind::kForward ? 1000 + 37 * (d % 7) : 2000 + 53 * (d % 5));
          free[d] = end;
          if (a.kind == ActionKind::kForward) fwd[d * T + a.micro_batch] = end + 100000;
          if (a.kind == ActionKind::kBackward) bwd[d * T + a.micro_batch] = end + 100000;
        }
      }
    }
    benchmark::DoNotOptimize(free.data());
  }
  state.counters["units"] = static_cast<double>(actions);
  state.counters["actions/s"] =
      benchmark::Counter(static_cast<double>(actions), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel("reference: plain critical-path loop, gpipe");
}

constexpr int kGPipe = static_cast<int>(ScheduleKind::kGPipe);
constexpr int k1F1B = static_cast<int>(ScheduleKind::kOneFOneBFlush);
constexpr int kXPipe = static_cast<int>(ScheduleKind::kXPipe);
constexpr int kAuto = static_cast<int>(SimEngine::kAuto);
constexpr int kEvents = static_cast<int>(SimEngine::kEventQueue);
constexpr int kEventsPerCompletion = 3;

// Small cases: as many iterations as half a second takes, or noise decides.
BENCHMARK(BM_Simulate)
    ->Args({kGPipe, 8, 64, 0, kAuto, 0})
    ->Args({kGPipe, 8, 64, 1 << 20, kEvents, 0})
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.5);
BENCHMARK(BM_Simulate)
    ->Args({kGPipe, 1024, 4096, 0, kAuto, 0})
    ->Args({kGPipe, 1024, 4096, 1 << 20, kAuto, 0})
    ->Args({k1F1B, 1024, 4096, 1 << 20, kAuto, 0})
    ->Args({kXPipe, 1024, 4096, 1 << 20, kAuto, 0})
    ->Args({kGPipe, 1024, 4096, 1 << 20, kEvents, 0})
    ->Args({kGPipe, 1024, 4096, 0, kEvents, 0})
    ->Args({kGPipe, 257, 16384, 1 << 20, kEvents, 1})
    ->Args({kGPipe, 257, 16384, 1 << 20, kAuto, 0})
    ->Args({kGPipe, 1024, 4096, 1 << 20, kEventsPerCompletion, 0})
    ->Args({kGPipe, 257, 16384, 1 << 20, kEventsPerCompletion, 1})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);
BENCHMARK(BM_ReferenceLoop)
    ->Args({8, 64})
    ->Args({1024, 4096})
    ->Args({257, 16384})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace xpipe

BENCHMARK_MAIN();
