// XPipe horizons (golden, with the derivation), the paper's closed forms, and
// the weight annotations of each policy.
#include "common/versioning.h"

#include <gtest/gtest.h>

#include <vector>

#include "tests/common/test_util.h"

namespace xpipe {
namespace {

using testing::Make;

struct Golden {
  int N, T;
  std::vector<int> s_f, s_b;
};

// Derivation for N = 4, T = 2 on the unit-step grid of schedules.md (steps from 0):
//   GPU0: F1a0 F1b1 F2a2 F2b3 . . . B1a7 F3a8 B1b*9 F3b10 B2a11 F4a12 B2b*13 F4b14 B3a15 F5a16 B3b*17
//   GPU3: . . . F1a3 B1a4 F1b5 B1b*6 F2a7 B2a8 F2b9 B2b*10 F3a11 B3a12 F3b13 B3b*14
// Each U sits at the end of the B it follows: stage 0's at 10, 14, 18, ...;
// stage 3's at 7, 11, 15, 19, .... Mini-batch 3's round trip ends when GPU0
// starts B3b, at step 17.
//   stage 0: F3a starts at 8; U in (8, 17) = {10, 14}    -> s_f = 2
//            B3a starts at 15; U in (15, 17) = {}        -> s_b = 0
//   stage 3: F3a starts at 11; U in (11, 17) = {15}      -> s_f = 1
//            B3a starts at 12; U in (12, 17) = {15}      -> s_b = 1
// The other stages and cases follow the same count; the table is schedules.md's.
const Golden kGoldens[] = {
    {4, 2, {2, 1, 2, 1}, {0, 0, 1, 1}},
    {4, 4, {1, 1, 2, 1}, {0, 0, 1, 1}},
    {8, 4, {2, 2, 3, 2, 2, 2, 2, 1}, {0, 0, 1, 1, 1, 1, 1, 1}},
};

TEST(XPipeHorizons, GoldenBellwetherValues) {
  for (const Golden& g : kGoldens) {
    const Schedule s = Make(ScheduleKind::kXPipe, g.N, g.T, 4 * g.N + 4);
    const auto summary = SteadyStateSummary(s, AnalyzeVersions(s));
    for (int k = 0; k < g.N; ++k) {
      EXPECT_EQ(summary[k].forward_horizon, g.s_f[k]) << "N=" << g.N << " T=" << g.T << " k=" << k;
      EXPECT_EQ(summary[k].backward_horizon, g.s_b[k]) << "N=" << g.N << " T=" << g.T << " k=" << k;
    }
  }
}

Schedule XPipeFrom(PredictionBase base, int N, int T, int M) {
  ScheduleParams p;
  p.kind = ScheduleKind::kXPipe;
  p.devices = N;
  p.micro_batches = T;
  p.mini_batches = M;
  p.prediction_base = base;
  return MakeSchedule(p);
}

TEST(XPipeHorizons, MicroBatchesReuseTheBellwethersPrediction) {
  const Schedule s = XPipeFrom(PredictionBase::kBellwether, 4, 4, 12);
  for (const auto& row : s.device_actions)
    for (const Action& a : row) {
      if (!IsCompute(a.kind)) continue;
      EXPECT_EQ(a.weights, WeightSource::kPredicted);
      EXPECT_EQ(a.reuse_prediction, a.micro_batch != 0) << ToText(a, 4);
    }
}

// Predicting from the live weights: every pass aims at its bellwether's
// target (version + horizon of the paper's annotation of the same order) from
// the version live when it runs (the dry run's), and reads that version
// itself once it exists.
TEST(XPipeHorizons, LiveBaseAimsAtTheBellwethersTarget) {
  for (const auto& [N, T] : {std::pair{4, 4}, {4, 2}, {8, 4}, {3, 1}}) {
    const Schedule paper = XPipeFrom(PredictionBase::kBellwether, N, T, 3 * N);
    const Schedule live = XPipeFrom(PredictionBase::kLive, N, T, 3 * N);
    const VersionAnalysis va = AnalyzeVersions(live);
    int fewer_steps = 0;
    for (std::size_t d = 0; d < live.device_actions.size(); ++d)
      for (std::size_t i = 0; i < live.device_actions[d].size(); ++i) {
        const Action& a = live.device_actions[d][i];
        const Action& b = paper.device_actions[d][i];
        if (!IsCompute(a.kind)) continue;
        const std::string what = "N=" + std::to_string(N) + " T=" + std::to_string(T) + " " + ToText(a, T);
        EXPECT_FALSE(a.reuse_prediction) << what;
        EXPECT_EQ(a.version, va.passes[d][i].version_seen) << what;
        EXPECT_EQ(a.version + a.horizon, std::max(b.version + b.horizon, a.version)) << what;
        if (a.micro_batch == 0) {
          EXPECT_EQ(WeightKey(a), WeightKey(b)) << what;
        }
        fewer_steps += a.horizon < b.horizon;
      }
    if (T > 1) {
      EXPECT_GT(fewer_steps, 0) << "N=" << N << " T=" << T;
    }
  }
  // By hand (N = 4, T = 4, the grid printed by `xpipe schedule --format
  // versions`): stage 0 updates to v1 after B3, between F6 and F7; mini-batch
  // 1's forwards aim at v1 (s_f = 1), so F4..F6 predict it from v0 and F7
  // reads v1 itself, where the paper's F7 reuses F4's prediction.
  const Schedule s = XPipeFrom(PredictionBase::kLive, 4, 4, 6);
  std::vector<std::string> row;
  for (const Action& a : s.device_actions[0])
    if (a.kind == ActionKind::kForward && a.mini_batch == 1)
      row.push_back(ToText(a, 4) + "@v" + std::to_string(a.version) + "+" + std::to_string(a.horizon));
  EXPECT_EQ(row, (std::vector<std::string>{"0F4@v0+1", "0F5@v0+1", "0F6@v0+1", "0F7@v1+0"}));
}

// The paper's closed forms approximate the exact counts; where they differ is
// reported (and pinned here so a change is noticed).
TEST(XPipeHorizons, ClosedFormAgainstExact) {
  // N = 4, T = 2: s_f = round((4 + 2 - 2 - ceil(k/2)) / 2) = 2, 2, 2, 1 (round half up);
  // s_b = round((2 + floor(k/2) - 1) / 2) = 1, 1, 1, 1.
  EXPECT_EQ(ClosedFormForwardHorizon(4, 2, 0), 2);
  EXPECT_EQ(ClosedFormForwardHorizon(4, 2, 1), 2);
  EXPECT_EQ(ClosedFormForwardHorizon(4, 2, 3), 1);
  EXPECT_EQ(ClosedFormBackwardHorizon(4, 2, 0), 1);
  int differ = 0;
  for (const Golden& g : kGoldens)
    for (int k = 0; k < g.N; ++k)
      differ += (ClosedFormForwardHorizon(g.N, g.T, k) != g.s_f[k]) +
                (ClosedFormBackwardHorizon(g.N, g.T, k) != g.s_b[k]);
  EXPECT_GT(differ, 0);  // they are an approximation
  // Choosing the closed form as the target annotates with it.
  ScheduleParams p;
  p.kind = ScheduleKind::kXPipe;
  p.devices = 4;
  p.micro_batches = 2;
  p.mini_batches = 12;
  p.target = PredictionTarget::kRoundTripClosedForm;
  const Schedule s = MakeSchedule(p);
  const auto summary = SteadyStateSummary(s, AnalyzeVersions(s));
  for (int k = 0; k < 4; ++k) {
    EXPECT_EQ(summary[k].forward_horizon, ClosedFormForwardHorizon(4, 2, k));
    EXPECT_EQ(summary[k].backward_horizon, ClosedFormBackwardHorizon(4, 2, k));
  }
}

// PipeOptim: forward predicts exactly the updates until its own backward,
// which then uses the live weights; the version arithmetic closes.
TEST(Policies, PipeOptimPredictsItsOwnBackward) {
  const Schedule s = Make(ScheduleKind::kPipeOptim, 4, 2, 12);
  for (int k = 0; k < 4; ++k) {
    std::vector<int> target(12 * 2, -1);
    for (const Action& a : s.device_actions[k]) {
      const auto g = GlobalMicroBatch(a, 2);
      if (a.kind == ActionKind::kForward) target[g] = a.version + a.horizon;
      if (a.kind == ActionKind::kBackward) {
        EXPECT_EQ(a.weights, WeightSource::kCurrent);
        EXPECT_EQ(a.version, target[g]) << "stage " << k << " " << ToText(a, 2);
      }
    }
  }
}

// PipeDream-2BW: mini-batch b reads one version in both directions, at most
// one step old (b-1 on stages with work in flight, b on the last), and at
// most two versions are kept.
TEST(Policies, DoubleBufferingDelayAtMostOne) {
  for (int N = 1; N <= 6; ++N)
    for (int T = std::max(1, N - 1); T <= N + 2; ++T) {
      const Schedule s = Make(ScheduleKind::kPipeDream2BW, N, T, 10);
      for (const auto& row : s.device_actions)
        for (const Action& a : row) {
          if (!IsCompute(a.kind)) continue;
          EXPECT_GE(a.version, a.mini_batch - 1);
          EXPECT_LE(a.version, a.mini_batch);
          if (a.mini_batch >= 2 && a.stage < N - 1) {
            EXPECT_EQ(a.version, a.mini_batch - 1);
          }
          if (N == 1) {
            EXPECT_EQ(a.version, a.mini_batch);
          }
        }
      for (int kept : VersionsKept(s)) EXPECT_LE(kept, 2) << "N=" << N << " T=" << T;
    }
}

TEST(Policies, SynchronousSchedulesHaveNoStaleness) {
  for (ScheduleKind kind :
       {ScheduleKind::kGPipe, ScheduleKind::kOneFOneBFlush, ScheduleKind::kZeroBubbleH1}) {
    const Schedule s = Make(kind, 4, 4, 3);
    const VersionAnalysis va = AnalyzeVersions(s);
    for (std::size_t d = 0; d < s.device_actions.size(); ++d)
      for (std::size_t i = 0; i < s.device_actions[d].size(); ++i) {
        EXPECT_EQ(va.passes[d][i].staleness, 0);
        EXPECT_EQ(s.device_actions[d][i].weights, WeightSource::kCurrent);
      }
    for (int kept : VersionsKept(s)) EXPECT_EQ(kept, 1);
  }
}

}  // namespace
}  // namespace xpipe
