// Every generator over a grid of (N, T): validates, lowers, and round-trips;
// plus the closed forms of ../shared/docs/schedules.md for each schedule.
#include "common/generators.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <tuple>

#include "common/dry_run.h"
#include "common/error.h"
#include "common/lowering.h"
#include "common/schedule_io.h"
#include "common/validate.h"
#include "tests/common/test_util.h"

namespace xpipe {
namespace {

using testing::Make;
using testing::UpdateTimes;

bool Feasible(ScheduleKind k, int N, int T) {
  if ((k == ScheduleKind::kPipeDream || k == ScheduleKind::kSpecTrain) && T != 1) return false;
  if (k == ScheduleKind::kPipeDream2BW && T < N - 1) return false;
  if (k == ScheduleKind::kInterleaved1F1B && T % N != 0) return false;
  return true;
}

class GridTest : public ::testing::TestWithParam<std::tuple<ScheduleKind, int, int>> {};

TEST_P(GridTest, ValidatesLowersAndRoundTrips) {
  const auto [kind, N, T] = GetParam();
  const int V = kind == ScheduleKind::kInterleaved1F1B ? 2 : 1;
  const Schedule s = Make(kind, N, T, /*M=*/3, V);
  const ValidationResult r = Validate(s);
  ASSERT_TRUE(r.ok) << r.error << "\n" << r.grid;
  const Schedule lowered = LowerCommunication(s);
  const ValidationResult rl = Validate(lowered);
  ASSERT_TRUE(rl.ok) << rl.error << "\n" << rl.grid;
  EXPECT_EQ(StripCommunication(lowered), s);
  // The lowered schedule takes exactly as long on the unit grid.
  EXPECT_EQ(DryRun(lowered).Makespan(), DryRun(s).Makespan());
  EXPECT_EQ(ParseJson(ToJson(s), "mem"), s);
  EXPECT_EQ(ParseJson(ToJson(lowered), "mem"), lowered);
  // CSV carries order only (no weight fields, no schedule kind).
  Schedule order_only = lowered;
  for (auto& row : order_only.device_actions)
    for (auto& a : row) {
      Action order;
      order.stage = a.stage;
      order.kind = a.kind;
      order.mini_batch = a.mini_batch;
      order.micro_batch = a.micro_batch;
      a = order;
    }
  Schedule back = ParseCsv(ToCsv(lowered, CsvFlavour::kXPipe), T, "mem");
  back.kind = order_only.kind;
  EXPECT_EQ(back, order_only);
}

// Every generator at every (N, T) where it is defined.
std::vector<std::tuple<ScheduleKind, int, int>> FeasibleGrid() {
  std::vector<std::tuple<ScheduleKind, int, int>> out;
  for (ScheduleKind k : {ScheduleKind::kGPipe, ScheduleKind::kOneFOneBFlush, ScheduleKind::kInterleaved1F1B,
                         ScheduleKind::kZeroBubbleH1, ScheduleKind::kStale, ScheduleKind::kPipeDream,
                         ScheduleKind::kPipeDream2BW, ScheduleKind::kSpecTrain, ScheduleKind::kPipeOptim,
                         ScheduleKind::kXPipe})
    for (int N : {1, 2, 3, 4, 8})
      for (int T : {1, 2, 4, 8})
        if (Feasible(k, N, T)) out.emplace_back(k, N, T);
  return out;
}

INSTANTIATE_TEST_SUITE_P(AllSchedules, GridTest, ::testing::ValuesIn(FeasibleGrid()), [](const auto& info) {
  std::string name(ScheduleName(std::get<0>(info.param)));
  std::replace(name.begin(), name.end(), '-', '_');
  return name + "_N" + std::to_string(std::get<1>(info.param)) + "_T" +
         std::to_string(std::get<2>(info.param));
});

// GPipe / 1F1B-flush: one mini-batch in (T+N-1)(f+b); bubble (N-1)/(T+N-1).
TEST(ClosedForms, SynchronousMakespanAndBubble) {
  for (ScheduleKind kind : {ScheduleKind::kGPipe, ScheduleKind::kOneFOneBFlush})
    for (int N = 1; N <= 8; ++N)
      for (int T = 1; T <= 12; ++T) {
        const Schedule s = Make(kind, N, T, 1);
        const TimeNs makespan = DryRun(s).Makespan();
        EXPECT_EQ(makespan, 2 * (T + N - 1)) << ScheduleName(kind) << " N=" << N << " T=" << T;
        const double bubble = 1.0 - 2.0 * T / static_cast<double>(makespan);
        EXPECT_DOUBLE_EQ(bubble, static_cast<double>(N - 1) / (T + N - 1));
      }
}

// 1F1B-flush: warm-up min(N-k-1, T) forwards; in flight min(N-k, T).
TEST(ClosedForms, OneFOneBWarmupAndInFlight) {
  for (int N = 1; N <= 8; ++N)
    for (int T = 1; T <= 10; ++T) {
      const Schedule s = Make(ScheduleKind::kOneFOneBFlush, N, T, 1);
      for (int k = 0; k < N; ++k) {
        const auto& row = s.device_actions[k];
        const int warmup = std::min(N - k - 1, T);
        int leading = 0;
        while (row[leading].kind == ActionKind::kForward) ++leading;
        // Warm-up, then the steady phase begins with one more forward if any is left.
        EXPECT_EQ(leading, warmup + (warmup < T ? 1 : 0)) << "N=" << N << " T=" << T << " k=" << k;
        int in_flight = 0, peak = 0;
        for (const Action& a : row) {
          if (a.kind == ActionKind::kForward) peak = std::max(peak, ++in_flight);
          if (a.kind == ActionKind::kBackward) --in_flight;
        }
        EXPECT_EQ(peak, std::min(N - k, T));
      }
    }
}

// Asynchronous 1F1B: steady state 2T steps per mini-batch, so the ratio to
// GPipe is (T+N-1)/T.
TEST(ClosedForms, AsyncSteadyStateTwoTStepsPerMiniBatch) {
  for (ScheduleKind kind : {ScheduleKind::kStale, ScheduleKind::kXPipe, ScheduleKind::kPipeOptim})
    for (int N = 1; N <= 8; ++N)
      for (int T = 1; T <= 6; ++T) {
        const int M = 3 * N + 6;
        const Schedule s = Make(kind, N, T, M);
        const DryRunResult r = DryRun(s);
        ASSERT_TRUE(r.ok());
        for (int k = 0; k < N; ++k) {
          const auto u = UpdateTimes(s, r, k);
          // Mini-batches well past the warm-up and before the drain.
          for (int b = N + 1; b < M - N - 1; ++b)
            EXPECT_EQ(u[b + 1] - u[b], 2 * T) << "N=" << N << " T=" << T << " k=" << k << " b=" << b;
        }
        const double gpipe = 2.0 * (T + N - 1), async = 2.0 * T;
        EXPECT_DOUBLE_EQ(gpipe / async, static_cast<double>(T + N - 1) / T);
      }
}

// PipeDream: forward staleness N-1-k, N-k versions kept, backward reads the
// version its forward used.
TEST(ClosedForms, PipeDreamStalenessAndVersions) {
  for (int N = 1; N <= 10; ++N) {
    const int M = 4 * N + 4;
    const Schedule s = Make(ScheduleKind::kPipeDream, N, 1, M);
    const VersionAnalysis va = AnalyzeVersions(s);
    const auto summary = SteadyStateSummary(s, va);
    const auto kept = VersionsKept(s);
    for (int k = 0; k < N; ++k) {
      EXPECT_EQ(summary[k].forward_staleness, N - 1 - k) << "N=" << N << " k=" << k;
      EXPECT_EQ(kept[k], N - k) << "N=" << N << " k=" << k;
    }
    for (int k = 0; k < N; ++k) {
      std::vector<int> fwd_version(M, -1);
      for (const Action& a : s.device_actions[k]) {
        if (a.kind == ActionKind::kForward) {
          EXPECT_EQ(a.weights, WeightSource::kCurrent);
          fwd_version[a.mini_batch] = a.version;
        } else if (a.kind == ActionKind::kBackward) {
          EXPECT_EQ(a.weights, WeightSource::kStashed);
          EXPECT_EQ(a.version, fwd_version[a.mini_batch]);
        }
      }
    }
  }
}

// SpecTrain (T = 1): s_f = floor(k/2) + N - k - 1, s_b = floor(k/2), N = 2..12.
TEST(ClosedForms, SpecTrainHorizons) {
  for (int N = 2; N <= 12; ++N) {
    const Schedule s = Make(ScheduleKind::kSpecTrain, N, 1, 4 * N + 4);
    const auto summary = SteadyStateSummary(s, AnalyzeVersions(s));
    for (int k = 0; k < N; ++k) {
      EXPECT_EQ(summary[k].forward_horizon, k / 2 + N - k - 1) << "N=" << N << " k=" << k;
      EXPECT_EQ(summary[k].backward_horizon, k / 2) << "N=" << N << " k=" << k;
    }
  }
}

// Asynchronous 1F1B staleness: T = 1 gives N-1-k; T = 2, N = 4 gives the
// bellwether 2,1,1,0, and every backward sees staleness 0.
TEST(ClosedForms, AsyncStaleness) {
  for (int N = 1; N <= 8; ++N) {
    const Schedule s = Make(ScheduleKind::kStale, N, 1, 4 * N + 4);
    const auto summary = SteadyStateSummary(s, AnalyzeVersions(s));
    for (int k = 0; k < N; ++k) EXPECT_EQ(summary[k].forward_staleness, N - 1 - k);
  }
  const Schedule s = Make(ScheduleKind::kStale, 4, 2, 16);
  const VersionAnalysis va = AnalyzeVersions(s);
  const auto summary = SteadyStateSummary(s, va);
  const int expected[] = {2, 1, 1, 0};
  for (int k = 0; k < 4; ++k) EXPECT_EQ(summary[k].forward_staleness, expected[k]) << "k=" << k;
  for (int d = 0; d < 4; ++d)
    for (std::size_t i = 0; i < s.device_actions[d].size(); ++i)
      if (s.device_actions[d][i].kind == ActionKind::kBackward) {
        EXPECT_EQ(va.passes[d][i].staleness, 0);
      }
}

// Zero bubble with F = I = W = 1: idle/compute per stage is (N-1)/T for 1F1B
// (B = I + W = 2) and a third of it for ZB-H1 (here for T >= N, where the
// cool-down has enough deferred W to fill).
TEST(ClosedForms, ZeroBubbleH1IsAThirdOf1F1B) {
  const CostFn split = [](int, const Action& a) -> TimeNs {
    if (a.kind == ActionKind::kBackward) return 2;
    return IsCompute(a.kind) ? 1 : 0;
  };
  for (int N = 2; N <= 8; ++N)
    for (int T = N; T <= N + 8; ++T) {
      const TimeNs one = DryRun(Make(ScheduleKind::kOneFOneBFlush, N, T, 1), split).Makespan();
      const TimeNs zb = DryRun(Make(ScheduleKind::kZeroBubbleH1, N, T, 1), split).Makespan();
      const double compute = 3.0 * T;
      EXPECT_DOUBLE_EQ((one - compute) / compute, static_cast<double>(N - 1) / T);
      EXPECT_DOUBLE_EQ((zb - compute) / compute, static_cast<double>(N - 1) / T / 3.0)
          << "N=" << N << " T=" << T;
    }
}

// Interleaved 1F1B: bubble (N-1)/(V*T) relative to the ideal time.
TEST(ClosedForms, InterleavedBubble) {
  for (int N = 2; N <= 8; N *= 2)
    for (int V = 1; V <= 4; ++V)
      for (int T = N; T <= 4 * N; T += N) {
        const Schedule s = Make(ScheduleKind::kInterleaved1F1B, N, T, 1, V);
        const TimeNs makespan = DryRun(s).Makespan();
        const double ideal = 2.0 * T * V;  // unit steps are chunk passes
        EXPECT_DOUBLE_EQ((makespan - ideal) / ideal, static_cast<double>(N - 1) / (V * T))
            << "N=" << N << " V=" << V << " T=" << T;
      }
}

TEST(Generate, RejectsImpossibleParameters) {
  ScheduleParams p;
  p.kind = ScheduleKind::kInterleaved1F1B;
  p.devices = 4;
  p.micro_batches = 6;
  p.chunks = 2;
  EXPECT_THROW(Generate(p), InputError);
  p.kind = ScheduleKind::kPipeDream;
  p.chunks = 1;
  p.micro_batches = 2;
  EXPECT_THROW(Generate(p), InputError);
  p.kind = ScheduleKind::kGPipe;
  p.devices = 0;
  EXPECT_THROW(Generate(p), InputError);
}

}  // namespace
}  // namespace xpipe
