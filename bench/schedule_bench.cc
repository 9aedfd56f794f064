// Schedule IR at scale: generating and validating 1024 stages x 4096
// micro-batches (issue 3 asks for well under a second).
#include <benchmark/benchmark.h>

#include "common/generators.h"
#include "common/validate.h"
#include "common/versioning.h"

namespace xpipe {
namespace {

ScheduleParams Params(ScheduleKind kind, int N, int T, int M) {
  ScheduleParams p;
  p.kind = kind;
  p.devices = N;
  p.micro_batches = T;
  p.mini_batches = M;
  return p;
}

void BM_GenerateAndValidate(benchmark::State& state) {
  const auto kind = static_cast<ScheduleKind>(state.range(0));
  const int N = static_cast<int>(state.range(1)), T = static_cast<int>(state.range(2));
  std::int64_t actions = 0;
  for (auto _ : state) {
    const Schedule s = Generate(Params(kind, N, T, 1));
    const ValidationResult r = Validate(s);
    if (!r.ok) state.SkipWithError(r.error.c_str());
    actions = s.NumActions();
    benchmark::DoNotOptimize(r.ok);
  }
  state.counters["units"] = static_cast<double>(actions);  // per iteration, for bench/run.sh
  state.counters["actions/s"] =
      benchmark::Counter(static_cast<double>(actions), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(ScheduleName(kind)));
}

void BM_Annotate(benchmark::State& state) {
  const Schedule base = Generate(
      Params(ScheduleKind::kXPipe, static_cast<int>(state.range(0)), static_cast<int>(state.range(1)), 1));
  for (auto _ : state) {
    Schedule s = base;
    AnnotateWeights(s, PredictionTarget::kRoundTrip);
    benchmark::DoNotOptimize(s.device_actions.data());
  }
  state.counters["units"] = static_cast<double>(base.NumActions());
}

BENCHMARK(BM_GenerateAndValidate)
    ->Args({static_cast<int>(ScheduleKind::kGPipe), 1024, 4096})
    ->Args({static_cast<int>(ScheduleKind::kOneFOneBFlush), 1024, 4096})
    ->Args({static_cast<int>(ScheduleKind::kXPipe), 1024, 4096})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);
BENCHMARK(BM_Annotate)->Args({1024, 4096})->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace
}  // namespace xpipe

BENCHMARK_MAIN();
