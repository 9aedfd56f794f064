// What the simulator's two engines share (internal to sim/): the modelled
// cost of each compute action, the wiring of stages to channels and links,
// and the Recorder that turns what an engine saw into a SimResult.
//
// The engines (sim/engines.h) differ only in how
// they find the order to run things in; given the same schedule and config
// they produce the same SimResult bit for bit wherever both apply, and
// tests/sim/engines_test.cc holds them to it.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "common/message.h"
#include "sim/simulator.h"

namespace xpipe::sim {

// The time an output is (or will be) at its consumer, until it is known.
constexpr TimeNs kNotYet = std::numeric_limits<TimeNs>::min();

// Compute time of action `index` of device d's list: the stage's profiled
// time (a zero-bubble split gives each of I and W half of B, in whole ns),
// divided by the device's speed, times 1 + jitter * u with u uniform in
// [-1, 1) drawn from a hash of (seed, device, index), so the draw does not
// depend on the order an engine visits actions in.
//
// What the runtime does beyond each pass's profiled time is billed too: the
// cluster's fixed pass overhead; the receiver's cost of a message from
// another device (cluster.receive_*) and the sender's (cluster.send_fixed_ns,
// on the pass that produces it); a backward with weight_switch == recompute
// runs the forward again first (scaled like compute); every weight copy and
// prediction (common/versioning.h, WeightWorkOf) takes the stage's profiled
// copy or prediction time (unprofiled: 2 x its parameter bytes at the
// device's memory bandwidth); an update takes its optimizer step, the copies
// it makes and (data parallel) its all-reduce on its device, after the pass
// before it has sent its output (as the lowered schedule's SEND precedes U).
class ComputeCost {
 public:
  ComputeCost(const Schedule& s, const SimConfig& c);
  TimeNs operator()(int d, std::size_t index, const Action& a) const {
    if (table_.empty()) return Cost(d, index, a);
    return table_[(static_cast<std::size_t>(a.stage) * kKinds + static_cast<std::size_t>(a.kind)) * 2 +
                  (a.weight_switch == WeightSwitch::kRecompute ? 1 : 0)];
  }
  const std::vector<TimeNs>& allreduce_ns() const { return allreduce_ns_; }

 private:
  static constexpr std::size_t kKinds = static_cast<std::size_t>(ActionKind::kRecvB) + 1;
  TimeNs Cost(int d, std::size_t index, const Action& a) const;

  const SimConfig& c_;
  // Where an action's cost depends only on its stage, kind and switch (every
  // speed 1, no jitter, no per-action weight work): all of them, looked up
  // [stage][kind][recompute] in a simulation's innermost loop.
  std::vector<TimeNs> table_;
  bool exact_ = true;                          // every speed 1 and no jitter: stay in integers
  std::vector<std::vector<TimeNs>> extra_ns_;  // per device and action: weight work, updates' moved back
  std::vector<TimeNs> receive_forward_ns_, receive_backward_ns_;  // per stage: taking in its input / gradient
  std::vector<TimeNs> send_forward_ns_, send_backward_ns_;        // per stage: sending its output / gradient
  std::vector<TimeNs> allreduce_ns_;                              // per stage: one all-reduce (AllReduceNs)
};

// A channel carries one sender's outputs to one receiver, in the order they
// were sent (as an ordered P2P stream does). Channels live on links: on a
// chain each channel has a link of its own; on a shared bus all share one.
// A link's bandwidth is what replica 0's channels on it get: its route's
// bandwidth x (replica 0's channels on it) / (all replicas' channels on it).
struct Wiring {
  std::vector<std::optional<int>> forward_channel;   // per stage k < S-1: k -> k+1; none = in memory
  std::vector<std::optional<int>> backward_channel;  // per stage k > 0: k -> k-1
  std::vector<int> channel_sender, channel_link;     // per channel
  std::vector<std::string> channel_tracks;  // per channel: "link d0->d1", "bus d0->d1", "nic n0 d7->d8"
  std::vector<std::string> link_names;      // Route::link, in the order of their first channel
  std::vector<double> link_bytes_per_sec;   // per link
  std::vector<TimeNs> link_latency_ns;      // per link
  bool one_channel_per_link = true;
};
Wiring Wire(const Schedule& s, const SimConfig& c);

// Per stage: one ring all-reduce of its gradients over its replicas' GPUs
// (SimConfig::data_parallel); all 0 without data parallelism.
std::vector<TimeNs> AllReduceNs(const Schedule& s, const SimConfig& c);

// Collects busy time, in-flight activations, memory, stage 0's update times,
// per-link bytes and (with record_trace) spans, then finishes the result. An
// engine reports each device's actions in that device's order.
class Recorder {
 public:
  Recorder(const Schedule& s, const SimConfig& c, const Wiring& w);

  void Compute(int d, TimeNs start_ns, TimeNs end_ns, const Action& a) {
    r_.busy_ns[d] += end_ns - start_ns;
    if (record_) r_.trace.spans.push_back({d, start_ns, end_ns, a, 0});
  }
  void Update(const Action& a, TimeNs at_ns) {
    if (a.stage == 0) stage0_updates_.push_back(at_ns);
  }
  void CountAction() {
    ++r_.actions;
#ifdef XPIPE_TEST_SLOWDOWN
    // Test-only (bench/CMakeLists.txt: sim_bench_slowed): extra work per
    // action, so that the test of bench/run.sh sees a slower build caught.
    for (int spin = 0; spin < XPIPE_TEST_SLOWDOWN; ++spin) __asm__ __volatile__("" ::: "memory");
#endif
  }
  // A forward starts holding what its backward needs (its activations; only
  // its input when the backward recomputes; plus a private weight copy when
  // the backward swaps); the backward (or W) frees it.
  void ChangeInFlight(const Action& a, int delta, TimeNs at_ns) {
    const int stage = a.stage;
    const Bytes bytes = flight_bytes_[static_cast<int>(a.weight_switch)][stage];
    in_flight_[stage] += delta;
    in_flight_bytes_[stage] += delta * bytes;
    if (in_flight_[stage] > r_.peak_in_flight[stage]) r_.peak_in_flight[stage] = in_flight_[stage];
    peak_in_flight_bytes_[stage] = std::max(peak_in_flight_bytes_[stage], in_flight_bytes_[stage]);
    if (record_) r_.trace.memory.push_back({stage, at_ns, static_bytes_[stage] + in_flight_bytes_[stage]});
  }
  // A transfer on `channel` sent from start_ns (its first byte) to end_ns
  // (its last).
  void Transfer(int channel, TimeNs start_ns, TimeNs end_ns, const Action& sender_action, Bytes bytes) {
    r_.link_bytes[w_.channel_link[channel]] += bytes;
    if (record_) r_.trace.spans.push_back({devices_ + channel, start_ns, end_ns, sender_action, bytes});
  }

  // Spans are put in track order (each track's arrive in its own time order),
  // so a trace does not depend on the order the engine visited devices in.
  SimResult Finish(TimeNs makespan_ns);

 private:
  const Schedule& s_;
  const SimConfig& c_;
  const Wiring& w_;
  const int devices_;
  const bool record_;
  std::vector<int> in_flight_;
  std::vector<Bytes> static_bytes_, kept_bytes_;
  std::array<std::vector<Bytes>, 3> flight_bytes_;  // [weight switch][stage]: held per micro-batch in flight
  std::vector<Bytes> in_flight_bytes_, peak_in_flight_bytes_;
  std::vector<TimeNs> stage0_updates_;
  SimResult r_;
};

// What both engines hold: the inputs, costs, wiring and recorder, and when
// each stage's output for each micro-batch is (or will be) at its consumer.
class EngineBase {
 protected:
  EngineBase(const Schedule& s, const SimConfig& c, Wiring w)
      : s_(s),
        c_(c),
        S_(s.num_stages),
        D_(s.num_devices),
        T_(s.micro_batches),
        G_(static_cast<std::int64_t>(s.mini_batches) * s.micro_batches),
        cost_(s, c),
        wiring_(std::move(w)),
        rec_(s, c, wiring_),
        fwd_avail_(static_cast<std::size_t>(S_) * G_, kNotYet),
        bwd_avail_(static_cast<std::size_t>(S_) * G_, kNotYet) {}

  // The recorder's result, with what the cost model knows of the all-reduces.
  SimResult Finish(TimeNs makespan_ns) {
    SimResult r = rec_.Finish(makespan_ns);
    r.allreduce_ns = cost_.allreduce_ns();
    return r;
  }

  // Runs device d's actions in order from `next`, each at the later of
  // `free_ns` (then its end) and its input's arrival, while !held(); stops
  // at the first whose input nobody has produced yet and returns false.
  // Reports each to the recorder and calls sent(a, g, end) when a pass
  // (not an update) of global micro-batch g ends, to send its output. What
  // both the dataflow engine and the event engine running ahead do between
  // one blocked input and the next.
  template <class Held, class Sent>
  bool RunActions(int d, std::size_t& next, TimeNs& free_ns, Held held, Sent sent) {
    const Action* const row = s_.device_actions[d].data();
    const std::size_t row_size = s_.device_actions[d].size();
    while (!held() && next < row_size) {
      const Action& a = row[next];
      if (IsComm(a.kind)) {  // transfers are modelled, not run
        ++next;
        continue;
      }
      const std::int64_t g = GlobalMicroBatch(a);
      TimeNs start = free_ns;
      if (const auto m = Consumes(a, S_, T_)) {
        const TimeNs at = Arrival(*m, g);
        if (at == kNotYet) return false;
        start = std::max(start, at);
      }
      rec_.CountAction();
      const TimeNs end = start + cost_(d, next, a);
      PrefetchAfter(row, next);
      ++next;
      free_ns = end;
      if (a.kind == ActionKind::kUpdate) {
        rec_.Update(a, start);
        if (end > start) rec_.Compute(d, start, end, a);
        continue;
      }
      if (a.kind == ActionKind::kForward) rec_.ChangeInFlight(a, +1, start);
      rec_.Compute(d, start, end, a);
      if (a.kind == ActionKind::kBackward || a.kind == ActionKind::kBackwardWeight)
        rec_.ChangeInFlight(a, -1, end);
      sent(a, g, end);
    }
    return true;
  }
  // When the input of global micro-batch g that m names is (or will be) at
  // its consumer; kNotYet until its producer has published it.
  TimeNs Arrival(const Message& m, std::int64_t g) const {
    const std::vector<TimeNs>& avail = m.forward ? fwd_avail_ : bwd_avail_;
    const std::size_t key = Key(m.producer_stage, g);
    if (2 * key + m.forward == last_published_) return last_published_at_;
    return avail[key];
  }
  // A device reads its inputs micro-batch after micro-batch: asks for the
  // next cache line of m's stream. Where every completion is an event, a
  // device's next input is read an event later, among a thousand streams,
  // too many for the hardware's prefetcher: 10 % faster on the 256-sender
  // bus. (Running ahead, a device reads on at once, and asking there was
  // 3 % slower on the bus and up to 11 % on dataflow chains.)
  void PrefetchStream(const Message& m, std::int64_t g) const {
    __builtin_prefetch((m.forward ? fwd_avail_ : bwd_avail_).data() + Key(m.producer_stage, g) + 8);
  }
  // The output of `producer_stage` for global micro-batch g is (or will be)
  // at its consumer at `at`. The consumer it wakes reads it at once: from a
  // copy at a fixed address, since a load from the array, at an address
  // known early, waits for (or is replayed behind) the store to an address
  // that was computed late (on the 256-sender bus benchmark the copy took
  // the event engine from 512 to 484 ms).
  void SetArrival(bool forward, int producer_stage, std::int64_t g, TimeNs at) {
    const std::size_t key = Key(producer_stage, g);
    (forward ? fwd_avail_ : bwd_avail_)[key] = at;
    last_published_ = 2 * key + (forward ? 1 : 0);
    last_published_at_ = at;
  }
  // A device's action after action i is read when i ends, maybe a thousand
  // devices' work later: ask for it now, and for the line after it, which
  // holds the action after that (a device woken on a shared bus reads both)
  // or the pass after the next one's transfers. (A third line, as before:
  // 1.5-2 % slower on the 256-sender bus; one line: 46 % slower.)
  static void PrefetchAfter(const Action* row, std::size_t i) {
    const char* next = reinterpret_cast<const char*>(row + i + 1);
    __builtin_prefetch(next);
    __builtin_prefetch(next + 64);
  }

  std::size_t Key(int stage, std::int64_t g) const { return static_cast<std::size_t>(stage) * G_ + g; }
  std::int64_t GlobalMicroBatch(const Action& a) const {
    return static_cast<std::int64_t>(a.mini_batch) * T_ + a.micro_batch;
  }

  const Schedule& s_;
  const SimConfig& c_;
  const int S_, D_, T_;
  const std::int64_t G_;
  const ComputeCost cost_;
  const Wiring wiring_;
  Recorder rec_;
  std::vector<TimeNs> fwd_avail_, bwd_avail_;     // [producer stage][g]: arrival at the consumer
  std::size_t last_published_ = ~std::size_t{0};  // 2 x key + forward, of the latest SetArrival
  TimeNs last_published_at_ = kNotYet;
};

}  // namespace xpipe::sim
