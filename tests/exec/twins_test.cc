// The executor and the simulator do the same work: for every schedule and
// both weight-switch strategies, the forward computations (recomputes
// included) and the weight copies the executor performs on each stage equal
// what the simulator bills. The executor counts what its weight store really
// does; the simulator reads the schedule's annotations.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/generators.h"
#include "exec/data.h"
#include "exec/executor.h"
#include "sim/simulator.h"

namespace xpipe::exec {
namespace {

TEST(Twins, ExecutorDoesWhatTheSimulatorBills) {
  torch::set_num_threads(1);
  const Dataset data = Synthetic(32 * 8, {1, 8, 8}, 10, 3, 12345);
  const Model model = MakeModel("mlp", {1, 8, 8}, 10);
  int cases = 0, switching = 0;
  for (int k = 0; k <= static_cast<int>(ScheduleKind::kXPipe); ++k) {
    const auto kind = static_cast<ScheduleKind>(k);
    for (int N : {2, 3})
      for (int T : {1, 2, 4}) {
        ScheduleParams p;
        p.kind = kind;
        p.devices = N;
        p.micro_batches = T;
        p.mini_batches = 6;
        if (kind == ScheduleKind::kInterleaved1F1B) {
          if (T % N != 0 || N * 2 > 4) continue;
          p.chunks = 2;
        }
        if ((kind == ScheduleKind::kPipeDream || kind == ScheduleKind::kSpecTrain) && T != 1) continue;
        if (kind == ScheduleKind::kPipeDream2BW && T < N - 1) continue;
        // XPipe both ways: passes after the bellwether predict from the live
        // weights (new predictions) or reuse the bellwether's.
        const bool bellwether = TraitsOf(kind).bellwether;
        for (int v = 0; v < (bellwether ? 4 : 2); ++v) {
          const WeightSwitch strategy = v % 2 == 0 ? WeightSwitch::kSwap : WeightSwitch::kRecompute;
          p.backward_weights = strategy;
          p.prediction_base = v < 2 ? PredictionBase::kLive : PredictionBase::kBellwether;
          const Schedule s = MakeSchedule(p);
          ExecConfig c;
          c.stages = Partition(model, s.num_stages, {});
          c.devices.assign(s.num_stages, torch::kCPU);
          c.sample_output_shapes = SampleOutputShapes(c.stages, {1, 8, 8});
          c.micro_batch_size = 32 / T;
          Executor ex(c, InitStages(c.stages, 1));
          const MicroBatchFn fn = [&](int64_t b, int j) {
            const int64_t m = 32 / T, start = b * 32 + j * m;
            return std::make_pair(data.images.slice(0, start, start + m),
                                  data.labels.slice(0, start, start + m));
          };
          const SegmentResult r = ex.Run(s, fn, 0);
          const BilledWork sim = Billed(s);
          const std::string what = std::string(ScheduleName(kind)) + " N=" + std::to_string(N) +
                                   " T=" + std::to_string(T) + " " + std::string(WeightSwitchName(strategy)) +
                                   " " + std::string(PredictionBaseName(p.prediction_base));
          EXPECT_EQ(r.forwards_run, sim.forwards) << what;
          EXPECT_EQ(r.weight_copies, sim.weight_copies) << what;
          int64_t recomputed = 0;
          for (const auto& stage : r.passes)
            for (const auto& pass : stage) recomputed += pass.recomputed;
          switching += recomputed > 0;
          ++cases;
        }
      }
  }
  EXPECT_GT(cases, 80);
  EXPECT_GT(switching, 10);  // some schedules really recompute
}

}  // namespace
}  // namespace xpipe::exec
