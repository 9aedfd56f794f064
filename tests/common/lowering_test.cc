// Lowering and the validator's per-channel check, against an independent
// oracle: a simulation of the lowered schedule in which every ordered device
// pair is one FIFO (as a NCCL communicator or a socket is), a SEND pushes, a
// RECV pops the front and must get the message it names, and a pass may run
// only once the messages it consumes were received on its device.
#include "common/lowering.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <set>
#include <tuple>

#include "common/validate.h"
#include "tests/common/test_util.h"

namespace xpipe {
namespace {

using testing::Make;
using MsgKey = std::tuple<bool, int, std::int64_t>;

MsgKey Key(const Message& m) { return {m.forward, m.producer_stage, m.g}; }

// "ok", or what went wrong first (a mismatch or a deadlock).
std::string RunOnFifos(const Schedule& s) {
  const int T = s.micro_batches, S = s.num_stages;
  std::map<std::pair<int, int>, std::deque<Message>> wire;
  std::vector<std::set<MsgKey>> got(s.num_devices);
  std::vector<std::size_t> pc(s.num_devices, 0);
  for (bool progress = true; progress;) {
    progress = false;
    for (int d = 0; d < s.num_devices; ++d) {
      const auto& row = s.device_actions[d];
      while (pc[d] < row.size()) {
        const Action& a = row[pc[d]];
        if (a.kind == ActionKind::kSendF || a.kind == ActionKind::kSendB) {
          const Message m = MessageOf(a, T);
          wire[{d, s.stage_device[ReceiverStage(m)]}].push_back(m);
        } else if (a.kind == ActionKind::kRecvF || a.kind == ActionKind::kRecvB) {
          const Message m = MessageOf(a, T);
          auto& q = wire[{s.stage_device[m.producer_stage], d}];
          if (q.empty()) break;
          if (!(q.front() == m)) return "mismatch on device " + std::to_string(d);
          q.pop_front();
          got[d].insert(Key(m));
        } else if (IsCompute(a.kind)) {
          const std::int64_t g = GlobalMicroBatch(a, T);
          if (a.kind == ActionKind::kForward && a.stage > 0 && !got[d].count({true, a.stage - 1, g})) break;
          if (IsBackwardPass(a.kind) && a.stage < S - 1 && !got[d].count({false, a.stage + 1, g})) break;
        }
        ++pc[d];
        progress = true;
      }
    }
  }
  for (int d = 0; d < s.num_devices; ++d)
    if (pc[d] < s.device_actions[d].size()) return "deadlock on device " + std::to_string(d);
  return "ok";
}

struct Case {
  ScheduleKind kind;
  int N, T, V;
};

std::vector<Case> Grid() {
  std::vector<Case> out;
  for (ScheduleKind k : {ScheduleKind::kGPipe, ScheduleKind::kOneFOneBFlush, ScheduleKind::kZeroBubbleH1,
                         ScheduleKind::kStale, ScheduleKind::kPipeDream2BW, ScheduleKind::kPipeOptim,
                         ScheduleKind::kXPipe, ScheduleKind::kPipeDream, ScheduleKind::kSpecTrain})
    for (int N = 1; N <= 5; ++N)
      for (int T = 1; T <= 6; ++T) {
        if ((k == ScheduleKind::kPipeDream || k == ScheduleKind::kSpecTrain) && T != 1) continue;
        if (k == ScheduleKind::kPipeDream2BW && T < N - 1) continue;
        out.push_back({k, N, T, 1});
      }
  for (int N = 1; N <= 4; ++N)
    for (int V = 2; V <= 3; ++V)
      for (int T = N; T <= 2 * N; T += N) out.push_back({ScheduleKind::kInterleaved1F1B, N, T, V});
  return out;
}

TEST(Lowering, EveryGeneratorMatchesOnFifoChannelsAndValidates) {
  int cases = 0;
  for (const Case& c : Grid()) {
    const Schedule s = LowerCommunication(Make(c.kind, c.N, c.T, 3, c.V));
    const std::string what = std::string(ScheduleName(c.kind)) + " N=" + std::to_string(c.N) +
                             " T=" + std::to_string(c.T) + " V=" + std::to_string(c.V);
    EXPECT_EQ(RunOnFifos(s), "ok") << what;
    const ValidationResult v = Validate(s);
    EXPECT_TRUE(v.ok) << what << ": " << v.error;
    EXPECT_EQ(StripCommunication(s), Make(c.kind, c.N, c.T, 3, c.V)) << what;
    ++cases;
  }
  EXPECT_GT(cases, 150);
}

// Perturbed lowerings (a RECV moved one step earlier or later): the validator accepts exactly those the FIFO
// simulation runs, and both reject some (else this test shows nothing).
TEST(Lowering, ValidatorAgreesWithFifosOnPerturbedOrders) {
  int rejected = 0, accepted = 0;
  for (const Case& c : {Case{ScheduleKind::kInterleaved1F1B, 2, 2, 2},
                        Case{ScheduleKind::kInterleaved1F1B, 3, 3, 2}, Case{ScheduleKind::kXPipe, 3, 2, 1},
                        Case{ScheduleKind::kGPipe, 3, 3, 1}, Case{ScheduleKind::kZeroBubbleH1, 3, 4, 1}}) {
    const Schedule base = LowerCommunication(Make(c.kind, c.N, c.T, 2, c.V));
    for (int d = 0; d < base.num_devices; ++d)
      for (std::size_t i = 0; i + 1 < base.device_actions[d].size(); ++i) {
        const Action& a = base.device_actions[d][i];
        if (a.kind != ActionKind::kRecvF && a.kind != ActionKind::kRecvB) continue;
        for (std::size_t j : {i - 1, i + 1}) {  // one step earlier, one step later
          if (j >= base.device_actions[d].size()) continue;
          Schedule s = base;
          std::swap(s.device_actions[d][i], s.device_actions[d][j]);
          const bool fifo_ok = RunOnFifos(s) == "ok";
          const ValidationResult v = Validate(s);
          EXPECT_EQ(v.ok, fifo_ok) << ScheduleName(c.kind) << " device " << d << " step " << i << "<->" << j
                                   << ": " << v.error;
          (fifo_ok ? accepted : rejected) += 1;
        }
      }
  }
  EXPECT_GT(rejected, 10);
  EXPECT_GT(accepted, 10);
}

TEST(Lowering, TwoDeviceInterleavedChannelCarriesBothDirections) {
  // Devices 0 and 1 hold stages {0, 2} and {1, 3}: channel 0 -> 1 carries
  // stage 0's and stage 2's activations and stage 2's gradients.
  const Schedule s = LowerCommunication(Make(ScheduleKind::kInterleaved1F1B, 2, 2, 1, 2));
  std::set<std::pair<bool, int>> kinds;
  for (const Action& a : s.device_actions[0])
    if (a.kind == ActionKind::kSendF || a.kind == ActionKind::kSendB) {
      const Message m = MessageOf(a, s.micro_batches);
      if (s.stage_device[ReceiverStage(m)] == 1) kinds.insert({m.forward, m.producer_stage});
    }
  EXPECT_EQ(kinds, (std::set<std::pair<bool, int>>{{true, 0}, {true, 2}, {false, 2}}));
  EXPECT_EQ(RunOnFifos(s), "ok");
}

}  // namespace
}  // namespace xpipe
