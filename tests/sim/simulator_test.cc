// The simulator against closed forms, hand-computed transfer and memory
// figures, and itself (determinism).
#include "sim/simulator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <tuple>

#include "common/lowering.h"
#include "common/trace.h"
#include "sim/event_queue.h"
#include "tests/sim/sim_test_util.h"

namespace xpipe {
namespace {

using testing::Sched;
using testing::UniformConfig;

constexpr TimeNs kF = 3 * kNsPerMs, kB = 5 * kNsPerMs;

TEST(EventQueue, TiesRunInInsertionOrder) {
  EventQueue q;
  q.Schedule(10, 0, 1);
  q.Schedule(5, 0, 2);
  q.Schedule(10, 0, 3);
  q.Schedule(5, 0, 4);
  std::vector<std::uint32_t> order;
  while (!q.Empty()) order.push_back(q.Pop().target);
  EXPECT_EQ(order, (std::vector<std::uint32_t>{2, 4, 1, 3}));
  EXPECT_EQ(q.Now(), 10);
}

// Against a sorted reference (std::map on (time, order scheduled)): random
// interleavings of scheduling and popping, times from "now" to far ahead,
// many ties.
// Rounds that schedule two events per pop grow the queue; rounds that
// schedule one per pop keep it at a few events, often one (the clock keeps a
// lone event outside its buckets) or none, and there the clock is sometimes
// moved ahead with no event (AdvanceTo, as the event engine does when its
// next event would be the only one).
TEST(EventQueue, MatchesASortedReference) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 40; ++round) {
    const std::uint64_t pop_one_in = round % 2 == 0 ? 3 : 2;
    EventQueue q;
    std::map<std::pair<TimeNs, std::uint64_t>, std::uint32_t> ref;
    std::uint64_t order = 0;
    std::uint32_t id = 0;
    for (int step = 0; step < 20000; ++step) {
      ASSERT_EQ(q.MoreAtNow(), !ref.empty() && ref.begin()->first.first == q.Now());
      if (ref.empty() && rng() % 3 == 0) {
        const TimeNs to = q.Now() + static_cast<TimeNs>(rng() % (1ULL << (rng() % 40)));
        q.AdvanceTo(to);
        ASSERT_EQ(q.Now(), to);
        ASSERT_TRUE(q.Empty());
      } else if (ref.empty() || rng() % pop_one_in != 0) {
        const std::uint64_t r = rng();
        const TimeNs ahead = r % 4 == 0 ? 0 : static_cast<TimeNs>(rng() % (1ULL << (r % 40)));
        q.Schedule(q.Now() + ahead, 0, id);
        ref.emplace(std::make_pair(q.Now() + ahead, order++), id++);
      } else {
        const Event e = q.Pop();
        ASSERT_EQ(e.target, ref.begin()->second);
        ASSERT_EQ(e.time_ns, ref.begin()->first.first);
        ASSERT_EQ(q.Now(), e.time_ns);
        ref.erase(ref.begin());
      }
    }
    while (!ref.empty()) {
      ASSERT_EQ(q.Pop().target, ref.begin()->second);
      ref.erase(ref.begin());
    }
    EXPECT_TRUE(q.Empty());
  }
}

// GPipe / 1F1B-flush on uniform stages, free transfers: (T+N-1)(f+b) per
// mini-batch and a bubble of (N-1)/(T+N-1).
TEST(Simulator, SynchronousClosedForms) {
  for (ScheduleKind kind : {ScheduleKind::kGPipe, ScheduleKind::kOneFOneBFlush})
    for (int N : {1, 2, 4, 8})
      for (int T : {1, 2, 4, 8}) {
        const Schedule s = Sched(kind, N, T, 1);
        const SimResult r = Simulate(s, UniformConfig(s, kF, kB));
        EXPECT_EQ(r.mini_batch_ns, (T + N - 1) * (kF + kB)) << "N=" << N << " T=" << T;
        for (double u : r.utilisation) EXPECT_NEAR(1.0 - u, static_cast<double>(N - 1) / (T + N - 1), 1e-12);
      }
}

// Asynchronous schedules: T(f+b) per mini-batch in steady state, so the ratio
// to GPipe is exactly (T+N-1)/T.
TEST(Simulator, AsyncOverGPipeRatio) {
  for (int N : {2, 4, 8})
    for (int T : {1, 2, 4}) {
      const Schedule gp = Sched(ScheduleKind::kGPipe, N, T, 8);
      const Schedule xp = Sched(ScheduleKind::kXPipe, N, T, 4 * N + 8);
      const SimResult rg = Simulate(gp, UniformConfig(gp, kF, kB));
      const SimResult rx = Simulate(xp, UniformConfig(xp, kF, kB));
      EXPECT_EQ(rx.mini_batch_ns, T * (kF + kB)) << "N=" << N << " T=" << T;
      EXPECT_DOUBLE_EQ(static_cast<double>(rg.mini_batch_ns) / rx.mini_batch_ns,
                       static_cast<double>(T + N - 1) / T);
    }
}

// Two stages, one micro-batch: the transfers add exactly bytes/bandwidth +
// latency in each direction.
TEST(Simulator, TransfersAddExactlyTheModelledTime) {
  const Schedule s = Sched(ScheduleKind::kGPipe, 2, 1, 1);
  const Bytes bytes = 123456789;
  SimConfig c = UniformConfig(s, kF, kB, bytes);
  c.cluster.link_bytes_per_sec = 10e9;
  c.cluster.link_latency_ns = 7000;
  const TimeNs hop = TransferNs(bytes, 10e9) + 7000;
  EXPECT_EQ(Simulate(s, c).makespan_ns, 2 * (kF + kB) + 2 * hop);
  // Without a copy engine the sender is busy while it sends, which here
  // delays nothing on the critical path but shows in utilisation.
  c.cluster.overlap_compute = false;
  const SimResult r = Simulate(s, c);
  EXPECT_EQ(r.makespan_ns, 2 * (kF + kB) + 2 * hop);
}

// One sender's transfers to one receiver go in order: the second waits for
// the first to leave, as on an ordered P2P stream.
TEST(Simulator, ChannelsSendInOrder) {
  const Schedule s = Sched(ScheduleKind::kGPipe, 2, 2, 1);
  SimConfig c = UniformConfig(s, 0, kB, 1000000);
  c.cluster.link_bytes_per_sec = 1e9;  // 1 ms per MB
  c.cluster.link_latency_ns = 0;
  c.record_trace = true;
  for (SimEngine engine : {SimEngine::kDataflow, SimEngine::kEventQueue}) {
    c.engine = engine;
    const SimResult r = Simulate(s, c);
    std::vector<std::pair<TimeNs, TimeNs>> forward;
    for (const ActionSpan& t : r.trace.spans)
      if (t.track >= s.num_devices && t.action.kind == ActionKind::kForward)
        forward.emplace_back(t.start_ns, t.end_ns);
    // Both forwards are done at 0 (zero cost); the second leaves at 1 ms.
    EXPECT_EQ(forward, (std::vector<std::pair<TimeNs, TimeNs>>{{0, kNsPerMs}, {kNsPerMs, 2 * kNsPerMs}}));
    ASSERT_EQ(r.link_bytes.size(), 2u);  // d0->d1 and d1->d0
    EXPECT_EQ(r.link_names, (std::vector<std::string>{"d0->d1", "d1->d0"}));
    EXPECT_EQ(r.trace.transfer_tracks, (std::vector<std::string>{"link d0->d1", "link d1->d0"}));
    EXPECT_EQ(r.link_bytes[0], 2000000);
  }
}

// On a shared bus, channels with a transfer on the wire share its bandwidth:
// three stages, zero-cost forwards, 1 MB outputs at 1 GB/s. d0 sends F0
// alone over [0, 1 ms]; then d0's F1 and d1's F0 share the bus and take 2 ms
// each; d1's F1 follows alone.
TEST(Simulator, SharedBusContention) {
  const Schedule s = Sched(ScheduleKind::kGPipe, 3, 2, 1);
  SimConfig c = UniformConfig(s, 0, kB, 1000000);
  c.cluster.link_bytes_per_sec = 1e9;
  c.cluster.link_latency_ns = 0;
  c.cluster.topology = Topology::kSharedBus;
  c.record_trace = true;
  const SimResult r = Simulate(s, c);
  std::vector<std::tuple<int, int, TimeNs, TimeNs>> forward;  // stage, micro-batch, start, end
  for (const ActionSpan& t : r.trace.spans)
    if (t.track >= s.num_devices && t.action.kind == ActionKind::kForward)
      forward.emplace_back(t.action.stage, t.action.micro_batch, t.start_ns, t.end_ns);
  std::sort(forward.begin(), forward.end());
  const TimeNs ms = kNsPerMs;
  EXPECT_EQ(forward, (std::vector<std::tuple<int, int, TimeNs, TimeNs>>{
                         {0, 0, 0, ms}, {0, 1, ms, 3 * ms}, {1, 0, ms, 3 * ms}, {1, 1, 3 * ms, 4 * ms}}));
  EXPECT_EQ(r.link_names, std::vector<std::string>{"bus"});
  EXPECT_EQ(r.trace.transfer_tracks,
            (std::vector<std::string>{"bus d0->d1", "bus d1->d0", "bus d1->d2", "bus d2->d1"}));
  EXPECT_EQ(r.link_bytes[0], 2 * 2 * 2 * 1000000);  // 2 cuts x 2 micro-batches x (activation, gradient)
}

// A bus shared by processor sharing is work-conserving: with free compute
// and no latency, some transfer is always on it until the last gradient
// lands (every waiting sender waits on data that is on the wire), so 256
// senders finish exactly when the bus has carried every byte, 2 (N-1) T
// messages of b bytes at the bus bandwidth (plus at most 1 ns of rounding
// per finish).
TEST(Simulator, SharedBusWithManySendersIsWorkConserving) {
  const int N = 257, T = 4;
  const Bytes b = 1 << 20;
  const Schedule s = Sched(ScheduleKind::kGPipe, N, T, 1);
  SimConfig c = UniformConfig(s, 0, 0, b);
  c.cluster.link_bytes_per_sec = 10e9;
  c.cluster.link_latency_ns = 0;
  c.cluster.topology = Topology::kSharedBus;
  c.engine = SimEngine::kEventQueue;
  const SimResult r = Simulate(s, c);
  const std::int64_t messages = 2LL * (N - 1) * T;
  const double exact_ns = static_cast<double>(messages) * b / c.cluster.link_bytes_per_sec * kNsPerSec;
  EXPECT_GE(static_cast<double>(r.makespan_ns), exact_ns - 1);
  EXPECT_LE(static_cast<double>(r.makespan_ns), exact_ns + static_cast<double>(messages));
  EXPECT_EQ(r.link_bytes[0], messages * b);
}

// Memory: PipeDream keeps N-k versions and N-k activations; GPipe one
// version and T activations. Adam: 2 copies of state; gradients: 1.
TEST(Simulator, MemoryMatchesHandCount) {
  const Bytes P = 1000, A = 10;
  const auto with_memory = [&](const Schedule& s) {
    SimConfig c = UniformConfig(s, kF, kB);
    for (auto& st : c.stages) st.parameter_bytes = P, st.activation_bytes = A;
    return Simulate(s, c);
  };
  const int N = 4, T = 4;
  const Schedule pd = Sched(ScheduleKind::kPipeDream, N, 1, 4 * N + 4);
  const SimResult rp = with_memory(pd);
  for (int k = 0; k < N; ++k) {
    EXPECT_EQ(rp.peak_in_flight[k], N - k);
    EXPECT_EQ(rp.peak_memory_bytes[k], P * ((N - k) + 1 + 2) + (N - k) * A) << "k=" << k;
  }
  const Schedule gp = Sched(ScheduleKind::kGPipe, N, T, 2);
  const SimResult rg = with_memory(gp);
  for (int k = 0; k < N; ++k) EXPECT_EQ(rg.peak_memory_bytes[k], P * (1 + 1 + 2) + T * A);
  // XPipe with T > 1 holds the bellwether's forward and backward predictions.
  // With the paper's bellwether prediction, stages 0..N-2 switch weights
  // between every forward and its backward (s_f != s_b): a swap keeps a
  // private weight copy per micro-batch in flight besides its activations; a
  // recompute keeps only the stage's input (0 bytes here).
  ScheduleParams p;
  p.kind = ScheduleKind::kXPipe;
  p.devices = N;
  p.micro_batches = T;
  p.mini_batches = 12;
  p.prediction_base = PredictionBase::kBellwether;
  const Schedule xp = MakeSchedule(p);
  const SimResult rx = with_memory(xp);
  for (int k = 0; k < N; ++k)
    EXPECT_EQ(rx.peak_memory_bytes[k], P * (1 + 1 + 2 + 2) + (N - k) * (A + (k < N - 1 ? P : 0)))
        << "k=" << k;
  p.backward_weights = WeightSwitch::kRecompute;
  const Schedule xr = MakeSchedule(p);
  SimConfig c = UniformConfig(xr, kF, kB);
  for (auto& st : c.stages) st.parameter_bytes = P, st.activation_bytes = A;
  c.record_trace = true;
  const SimResult rr = Simulate(xr, c);
  // Mini-batch 0 switches nothing (no update to predict yet), so the warm-up
  // holds full activations; from then on only the last stage does.
  std::vector<Bytes> late_peak(N, 0);
  for (const MemorySample& m : rr.trace.memory)
    if (m.time_ns > rr.makespan_ns / 2) late_peak[m.stage] = std::max(late_peak[m.stage], m.bytes);
  for (int k = 0; k < N; ++k) {
    EXPECT_EQ(rr.peak_memory_bytes[k], P * (1 + 1 + 2 + 2) + (N - k) * A) << "k=" << k;
    EXPECT_EQ(late_peak[k], P * (1 + 1 + 2 + 2) + (k < N - 1 ? 0 : (N - k) * A)) << "k=" << k;
  }
}

// A device at half speed takes twice as long for each of its passes: with
// two stages and one micro-batch, f + 2f + 2b + b.
// Two devices that slow each other down by c while both compute: GPipe on 2
// stages, 2 micro-batches. d0 runs F0 alone; then d0's F1 and d1's F0 run
// together (f (1 + c) each); d1's F1 alone; d1's first backward alone; then
// one backward on each device together (b (1 + c)); d0's last alone. So the
// makespan is (3 + c)(f + b) against 3 (f + b) without contention.
TEST(Simulator, ContentionClosedForm) {
  const Schedule s = Sched(ScheduleKind::kGPipe, 2, 2, 1);
  for (const double c : {0.0, 0.5, 1.0}) {
    SimConfig cfg = UniformConfig(s, 1000, 2000);
    cfg.cluster.compute_contention = c;
    cfg.record_trace = true;
    const SimResult r = Simulate(s, cfg);
    EXPECT_EQ(r.makespan_ns, static_cast<TimeNs>((3 + c) * 3000)) << c;
    // Busy time is each span's length; spans of a device never overlap.
    for (int d = 0; d < 2; ++d) {
      TimeNs busy = 0, last_end = 0;
      for (const ActionSpan& sp : r.trace.spans)
        if (sp.track == d) {
          EXPECT_GE(sp.start_ns, last_end);
          last_end = sp.end_ns;
          busy += sp.end_ns - sp.start_ns;
        }
      EXPECT_EQ(busy, r.busy_ns[d]);
    }
  }
  // Without contention the event queue agrees with the dataflow engine.
  SimConfig cfg = UniformConfig(s, 1000, 2000);
  cfg.engine = SimEngine::kEventQueue;
  EXPECT_EQ(Simulate(s, cfg).makespan_ns, 9000);
}

// What the runtime does beyond the passes: an update per mini-batch and
// stage, a fixed overhead per compute pass, and each prediction its profiled
// time. Oracles: the schedule's own counts (mini-batches, passes, and the
// distinct (version, horizon) predictions a stage reads).
TEST(Simulator, RuntimeCostsAreBilled) {
  const int T = 4, M = 6;
  const Schedule g = Sched(ScheduleKind::kGPipe, 2, T, M);
  SimConfig base = UniformConfig(g, kF, kB);
  SimConfig more = base;
  for (auto& st : more.stages) st.update_ns = 70000;
  more.cluster.pass_overhead_ns = 3000;
  const SimResult a = Simulate(g, base), b = Simulate(g, more);
  for (int d = 0; d < 2; ++d) EXPECT_EQ(b.busy_ns[d] - a.busy_ns[d], M * 70000 + 2 * T * M * 3000) << d;

  const Schedule x = Sched(ScheduleKind::kXPipe, 2, T, M);
  SimConfig cheap = UniformConfig(x, kF, kB);
  for (auto& st : cheap.stages) st.copy_ns = st.predict_ns = 1000;
  SimConfig dear = cheap;
  for (auto& st : dear.stages) st.predict_ns = 1000 + 777;
  std::vector<std::set<std::pair<int, int>>> predicted(2);
  for (const auto& row : x.device_actions)
    for (const Action& a : row)
      if (a.weights == WeightSource::kPredicted && a.horizon > 0)
        predicted[a.stage].insert({a.version, a.horizon});
  const SimResult c = Simulate(x, cheap), d = Simulate(x, dear);
  EXPECT_GT(predicted[0].size(), 0u);
  for (int k = 0; k < 2; ++k) {
    EXPECT_EQ(d.busy_ns[k] - c.busy_ns[k], 777 * static_cast<TimeNs>(predicted[k].size())) << k;
  }
}

// A send to another device costs its sender send_fixed_ns on the pass that
// produces the message: per mini-batch T forwards of stage 0 and T backwards
// of stage 1 on a 2-stage chain (the oracle: the schedule's message count),
// nothing on the stages' other passes, and nothing when the stages share a
// device.
TEST(Simulator, SendCostIsBilledToTheSendingPass) {
  const int T = 4, M = 5;
  const Schedule g = Sched(ScheduleKind::kGPipe, 2, T, M);
  SimConfig base = UniformConfig(g, kF, kB);
  for (auto& st : base.stages) st.output_bytes = st.input_bytes = 1 << 16;
  base.stages[0].input_bytes = base.stages[1].output_bytes = 0;
  SimConfig more = base;
  more.cluster.send_fixed_ns = 4321;
  const SimResult a = Simulate(g, base), b = Simulate(g, more);
  for (int d = 0; d < 2; ++d) EXPECT_EQ(b.busy_ns[d] - a.busy_ns[d], T * M * 4321) << d;

  ScheduleParams one;  // two chunks on one device: stages 0 and 1 share it
  one.kind = ScheduleKind::kInterleaved1F1B;
  one.devices = 1;
  one.chunks = 2;
  one.micro_batches = T;
  one.mini_batches = M;
  const Schedule shared = MakeSchedule(one);
  ASSERT_EQ(shared.stage_device, (std::vector<int>{0, 0}));
  SimConfig c = UniformConfig(shared, kF, kB);
  for (auto& st : c.stages) st.output_bytes = st.input_bytes = 1 << 16;
  SimConfig d = c;
  d.cluster.send_fixed_ns = 4321;
  EXPECT_EQ(Simulate(shared, d).busy_ns[0], Simulate(shared, c).busy_ns[0]);
}

TEST(Simulator, DeviceSpeedFactors) {
  const Schedule s = Sched(ScheduleKind::kGPipe, 2, 1, 1);
  SimConfig c = UniformConfig(s, kF, kB);
  c.cluster.speed = {1.0, 0.5};
  EXPECT_EQ(Simulate(s, c).makespan_ns, 3 * (kF + kB));
  c.cluster.speed = {2.0, 1.0};  // a faster first device
  EXPECT_EQ(Simulate(s, c).makespan_ns, kF / 2 + kF + kB + kB / 2);
}

TEST(Simulator, BitIdenticalRuns) {
  const Schedule s = Sched(ScheduleKind::kXPipe, 4, 4, 12);
  SimConfig c = UniformConfig(s, kF, kB, 5000000);
  c.jitter = 0.2;
  c.seed = 42;
  c.record_trace = true;
  const SimResult a = Simulate(s, c), b = Simulate(s, c);
  EXPECT_EQ(a.makespan_ns, b.makespan_ns);
  EXPECT_EQ(ToChromeTrace(s, a.trace), ToChromeTrace(s, b.trace));
  c.seed = 43;
  EXPECT_NE(Simulate(s, c).makespan_ns, a.makespan_ns);
}

TEST(Simulator, LoweredScheduleRunsTheSame) {
  const Schedule s = Sched(ScheduleKind::kOneFOneBFlush, 4, 4, 2);
  const SimConfig c = UniformConfig(s, kF, kB, 1000000);
  EXPECT_EQ(Simulate(LowerCommunication(s), c).makespan_ns, Simulate(s, c).makespan_ns);
}

TEST(Trace, ParsesWithTheRequiredFields) {
  const Schedule s = Sched(ScheduleKind::kXPipe, 3, 2, 6);
  SimConfig c = UniformConfig(s, kF, kB, 1000000);
  c.record_trace = true;
  const nlohmann::json j = nlohmann::json::parse(ToChromeTrace(s, Simulate(s, c).trace));
  ASSERT_TRUE(j.contains("traceEvents"));
  int spans = 0, counters = 0;
  for (const auto& e : j["traceEvents"]) {
    ASSERT_TRUE(e.contains("ph") && e.contains("pid") && e.contains("name"));
    if (e["ph"] == "X") {
      ++spans;
      EXPECT_TRUE(e.contains("ts") && e.contains("dur") && e.contains("tid"));
      EXPECT_GE(e["dur"].get<double>(), 0);
    }
    if (e["ph"] == "C") {
      ++counters;
      EXPECT_TRUE(e["args"].contains("bytes"));
    }
  }
  // Compute: 3 stages x 12 micro-batches x (F, B); transfers: 2 cuts x 12 x (activation, gradient).
  EXPECT_EQ(spans, 3 * 12 * 2 + 2 * 12 * 2);
  EXPECT_GT(counters, 0);
}

// Perfetto shows only properly nested slices on a track: no two spans on a
// track may overlap, on a chain or a bus, compute or transfers.
TEST(Trace, SpansOnATrackDoNotOverlap) {
  const Schedule s = Sched(ScheduleKind::kXPipe, 4, 4, 8);
  for (Topology topology : {Topology::kChain, Topology::kSharedBus}) {
    SimConfig c = UniformConfig(s, kF, kB, 50000000);  // 5 ms alone at 10 GB/s: transfers queue and share
    c.cluster.link_bytes_per_sec = 10e9;
    c.cluster.topology = topology;
    c.record_trace = true;
    const SimResult r = Simulate(s, c);
    ASSERT_EQ(r.trace.spans.size(), 4u * 32 * 2 + 3u * 32 * 2);
    std::map<int, std::vector<std::pair<TimeNs, TimeNs>>> by_track;
    for (const ActionSpan& sp : r.trace.spans) by_track[sp.track].emplace_back(sp.start_ns, sp.end_ns);
    EXPECT_EQ(by_track.size(), 4u + 6u);  // 4 devices, 6 channels
    for (auto& [track, spans] : by_track) {
      std::sort(spans.begin(), spans.end());
      for (std::size_t i = 1; i < spans.size(); ++i)
        EXPECT_LE(spans[i - 1].second, spans[i].first) << "track " << track << " span " << i;
    }
  }
}

}  // namespace
}  // namespace xpipe
