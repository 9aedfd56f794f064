// The dataflow engine against the event engine (the second implementation as
// oracle, style.md 12): on chains the two must agree on every figure and
// every span, for every generator over a grid of (N, T), with transfers,
// latency, jitter, uneven speeds and stages, and with and without a copy
// engine.
#include <gtest/gtest.h>

#include <string>

#include "common/error.h"
#include "common/lowering.h"
#include "sim/simulator.h"
#include "tests/sim/sim_test_util.h"

namespace xpipe {
namespace {

using testing::Sched;
using testing::UniformConfig;

void ExpectSameResult(const SimResult& a, const SimResult& b, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(a.makespan_ns, b.makespan_ns);
  EXPECT_EQ(a.mini_batch_ns, b.mini_batch_ns);
  EXPECT_EQ(a.samples_per_sec, b.samples_per_sec);
  EXPECT_EQ(a.busy_ns, b.busy_ns);
  EXPECT_EQ(a.utilisation, b.utilisation);
  EXPECT_EQ(a.peak_in_flight, b.peak_in_flight);
  EXPECT_EQ(a.peak_memory_bytes, b.peak_memory_bytes);
  EXPECT_EQ(a.link_bytes, b.link_bytes);
  EXPECT_EQ(a.actions, b.actions);
  EXPECT_EQ(a.link_names, b.link_names);
  EXPECT_EQ(a.trace.transfer_tracks, b.trace.transfer_tracks);
  ASSERT_EQ(a.trace.spans.size(), b.trace.spans.size());
  for (std::size_t i = 0; i < a.trace.spans.size(); ++i) {
    const ActionSpan &x = a.trace.spans[i], &y = b.trace.spans[i];
    ASSERT_TRUE(x.track == y.track && x.start_ns == y.start_ns && x.end_ns == y.end_ns &&
                x.action == y.action && x.bytes == y.bytes)
        << "span " << i << ": " << ToText(x.action, 1) << " on track " << x.track << " [" << x.start_ns
        << ", " << x.end_ns << "] vs " << ToText(y.action, 1) << " on track " << y.track << " [" << y.start_ns
        << ", " << y.end_ns << "]";
  }
  ASSERT_EQ(a.trace.memory.size(), b.trace.memory.size());
  for (std::size_t i = 0; i < a.trace.memory.size(); ++i) {
    const MemorySample &x = a.trace.memory[i], &y = b.trace.memory[i];
    ASSERT_TRUE(x.stage == y.stage && x.time_ns == y.time_ns && x.bytes == y.bytes) << "memory sample " << i;
  }
}

struct Variant {
  const char* name;
  Bytes bytes;
  TimeNs latency_ns;
  double jitter;
  bool uneven;  // stage costs and device speeds differ
  bool overlap;
};

SimConfig ConfigFor(const Schedule& s, const Variant& v) {
  SimConfig c = UniformConfig(s, 3000, 5000, v.bytes);
  if (v.uneven) {
    for (int k = 0; k < s.num_stages; ++k) {
      c.stages[k].forward_ns = 2000 + 700 * (k % 3);
      c.stages[k].backward_ns = 4001 + 900 * (k % 4);  // odd: I and W halves differ
      if (k + 1 < s.num_stages) c.stages[k].output_bytes = v.bytes * (1 + k % 2);
      if (k > 0) c.stages[k].input_bytes = v.bytes * (1 + (k - 1) % 2);
    }
    for (int d = 0; d < s.num_devices; ++d) c.cluster.speed.push_back(d % 2 ? 0.75 : 1.25);
  }
  for (int k = 0; k < s.num_stages; ++k)
    c.stages[k].parameter_bytes = 1000, c.stages[k].activation_bytes = 10;
  c.cluster.link_bytes_per_sec = 1e9;  // 1 us per kB: transfers as long as compute and longer
  c.cluster.link_latency_ns = v.latency_ns;
  c.cluster.overlap_compute = v.overlap;
  c.jitter = v.jitter;
  c.seed = 7;
  c.record_trace = true;
  return c;
}

const Variant kVariants[] = {
    {"free transfers", 0, 0, 0, false, true},
    {"short transfers", 1000, 500, 0, false, true},
    {"queued transfers", 20000, 1500, 0, false, true},
    {"uneven, jitter", 4000, 700, 0.3, true, true},
    {"no copy engine", 6000, 300, 0, false, false},
    {"no copy engine, uneven, jitter", 3000, 100, 0.2, true, false},
};

TEST(Engines, DataflowEqualsEventQueueOnChains) {
  struct Case {
    ScheduleKind kind;
    int N, T, chunks;
  };
  std::vector<Case> cases;
  for (int N : {1, 2, 3, 4, 6})
    for (int T : {1, 2, 4, 8}) {
      for (ScheduleKind k : {ScheduleKind::kGPipe, ScheduleKind::kOneFOneBFlush, ScheduleKind::kZeroBubbleH1,
                             ScheduleKind::kStale, ScheduleKind::kXPipe, ScheduleKind::kPipeOptim})
        cases.push_back({k, N, T, 1});
      if (T >= N - 1) cases.push_back({ScheduleKind::kPipeDream2BW, N, T, 1});
      if (T % N == 0) cases.push_back({ScheduleKind::kInterleaved1F1B, N, T, 2});
    }
  for (int N : {1, 2, 4, 6}) {
    cases.push_back({ScheduleKind::kPipeDream, N, 1, 1});
    cases.push_back({ScheduleKind::kSpecTrain, N, 1, 1});
  }
  int compared = 0;
  for (const Case& cs : cases) {
    ScheduleParams p;
    p.kind = cs.kind;
    p.devices = cs.N;
    p.micro_batches = cs.T;
    p.mini_batches = 6;
    p.chunks = cs.chunks;
    const Schedule s = MakeSchedule(p);
    for (const Variant& v : kVariants) {
      SimConfig c = ConfigFor(s, v);
      c.engine = SimEngine::kDataflow;
      const SimResult dataflow = Simulate(s, c);
      c.engine = SimEngine::kEventQueue;
      const std::string what = std::string(ScheduleName(cs.kind)) + " N=" + std::to_string(cs.N) +
                               " T=" + std::to_string(cs.T) + " " + v.name;
      // Both ways of running the event engine: devices running ahead (no
      // events on a chain) and an event for every compute completion.
      for (bool run_ahead : {false, true}) {
        c.run_ahead = run_ahead;
        const SimResult events = Simulate(s, c);
        ExpectSameResult(dataflow, events, what + (run_ahead ? ", running ahead" : ", every completion"));
        EXPECT_EQ(events.events == 0, run_ahead) << what;
      }
      ++compared;
    }
  }
  EXPECT_GT(compared, 500);
}

// Where links are shared, devices running ahead between link events must see
// exactly what an event for every completion sees: on a shared bus and on two
// nodes whose GPUs share one NIC (chain links inside, a shared link between),
// for every generator, with latency, jitter, uneven stages, queues on the
// wire and without a copy engine (where a send holds its device).
TEST(Engines, RunningAheadEqualsAnEventPerCompletionOnSharedLinks) {
  int compared = 0;
  for (ScheduleKind k : {ScheduleKind::kGPipe, ScheduleKind::kOneFOneBFlush, ScheduleKind::kZeroBubbleH1,
                         ScheduleKind::kStale, ScheduleKind::kXPipe, ScheduleKind::kPipeDream,
                         ScheduleKind::kPipeDream2BW, ScheduleKind::kInterleaved1F1B})
    for (int N : {2, 4, 6}) {
      ScheduleParams p;
      p.kind = k;
      p.devices = N;
      p.micro_batches = k == ScheduleKind::kPipeDream ? 1 : (k == ScheduleKind::kInterleaved1F1B ? N : 8);
      p.mini_batches = 5;
      p.chunks = k == ScheduleKind::kInterleaved1F1B ? 2 : 1;
      const Schedule s = MakeSchedule(p);
      for (int topology = 0; topology < 2; ++topology) {
        for (const Variant& v : kVariants) {
          SimConfig c = ConfigFor(s, v);
          c.engine = SimEngine::kEventQueue;
          if (topology == 0) {
            c.cluster.topology = Topology::kSharedBus;
          } else {
            c.cluster.nodes = 2;
            c.cluster.gpus_per_node = N / 2;
            c.cluster.devices = N;
            c.cluster.network.bytes_per_sec = 0.5e9;
            c.cluster.network.latency_ns = 2000;
            c.cluster.network.shared_nic = true;
          }
          c.run_ahead = false;
          const SimResult reference = Simulate(s, c);
          c.run_ahead = true;
          const SimResult ahead = Simulate(s, c);
          const std::string what = std::string(ScheduleName(k)) + " N=" + std::to_string(N) +
                                   (topology == 0 ? " bus " : " shared NIC ") + v.name;
          ExpectSameResult(reference, ahead, what);
          // Running ahead, a transfer sent behind a busy channel needs no event.
          if (v.bytes > 0) {
            EXPECT_LT(ahead.events, reference.events) << what;
          }
          ++compared;
        }
      }
    }
  EXPECT_EQ(compared, 8 * 3 * 2 * 6);
}

// Lowered schedules carry SEND/RECV actions; both engines model transfers
// from the compute actions and skip them.
TEST(Engines, LoweredSchedulesAgree) {
  const Schedule s = LowerCommunication(Sched(ScheduleKind::kXPipe, 4, 4, 5));
  SimConfig c = ConfigFor(s, kVariants[3]);
  c.engine = SimEngine::kDataflow;
  const SimResult dataflow = Simulate(s, c);
  c.engine = SimEngine::kEventQueue;
  ExpectSameResult(dataflow, Simulate(s, c), "lowered xpipe");
}

// The dataflow engine is for chains; a shared bus goes to the event queue by default.
TEST(Engines, SharedBusUsesTheEventQueue) {
  const Schedule s = Sched(ScheduleKind::kOneFOneBFlush, 4, 4, 2);
  SimConfig c = ConfigFor(s, kVariants[2]);
  c.cluster.topology = Topology::kSharedBus;
  const SimResult automatic = Simulate(s, c);
  c.engine = SimEngine::kEventQueue;
  ExpectSameResult(automatic, Simulate(s, c), "bus");
  EXPECT_EQ(automatic.link_names, std::vector<std::string>{"bus"});
}

}  // namespace
}  // namespace xpipe
