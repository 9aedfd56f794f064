#include "sim/simulator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <unordered_map>

#include "common/error.h"
#include "sim/event_queue.h"

namespace xpipe {
namespace {

constexpr TimeNs kNotYet = std::numeric_limits<TimeNs>::min();
enum EventType : std::uint32_t { kComputeDone, kLinkDone };

class Engine {
 public:
  Engine(const Schedule& s, const SimConfig& c)
      : s_(s),
        c_(c),
        S_(s.num_stages),
        D_(s.num_devices),
        G_(static_cast<std::int64_t>(s.mini_batches) * s.micro_batches),
        rng_(c.seed) {
    XPIPE_CHECK(static_cast<int>(c.stages.size()) == S_, "one StageCost per stage");
    exact_costs_ = c.jitter == 0;
    for (int d = 0; d < D_; ++d) exact_costs_ = exact_costs_ && c.cluster.Speed(d) == 1.0;
    fwd_avail_.assign(static_cast<std::size_t>(S_) * G_, kNotYet);
    neighbour_link_.assign(2 * static_cast<std::size_t>(D_), -1);
    bwd_avail_.assign(static_cast<std::size_t>(S_) * G_, kNotYet);
    dev_.resize(D_);
    r_.busy_ns.assign(D_, 0);
    r_.peak_in_flight.assign(S_, 0);
    in_flight_.assign(S_, 0);
    static_bytes_.resize(S_);
    kept_bytes_.resize(S_);
    for (int k = 0; k < S_; ++k) {
      const StageCost& sc = c.stages[k];
      const MemoryModel& m = c.memory;
      static_bytes_[k] = sc.parameter_bytes * (m.versions[k] + 1 + m.optimizer_copies + m.scratch[k]);
      kept_bytes_[k] = m.recompute ? sc.input_bytes : sc.activation_bytes;
    }
  }

  SimResult Run() {
    for (int d = 0; d < D_; ++d) TryStart(d);
    while (!q_.Empty()) {
      const Event e = q_.Pop();
      switch (e.type) {
        case kComputeDone:
          ComputeDone(static_cast<int>(e.target));
          break;
        case kLinkDone:
          LinkDone(static_cast<int>(e.target), e.payload);
          break;
      }
    }
    for (int d = 0; d < D_; ++d)
      XPIPE_CHECK(dev_[d].next == Row(d).size(),
                  "simulation stalled: the schedule deadlocks (validate it first)");
    Finish();
    return std::move(r_);
  }

 private:
  struct Device {
    std::size_t next = 0;
    bool busy = false;
    int pending_sends = 0;  // transfers holding the device (overlap_compute off)
  };
  struct Transfer {  // what the simulation needs; trace-only facts live in traced_
    double remaining;
    std::int64_t g;
    std::int32_t link, sender, consumer_stage;
    bool forward;
  };
  struct TracedTransfer {
    TimeNs start_ns;
    Action action;
    Bytes bytes;
  };
  struct Link {
    std::vector<std::size_t> active;
    TimeNs last_ns = 0;
    std::uint64_t generation = 0;
    Bytes total = 0;
  };

  const std::vector<Action>& Row(int d) const { return s_.device_actions[d]; }
  std::size_t Key(int stage, std::int64_t g) const { return static_cast<std::size_t>(stage) * G_ + g; }

  TimeNs Cost(int d, const Action& a) {
    const StageCost& sc = c_.stages[a.stage];
    double ns = 0;
    switch (a.kind) {
      case ActionKind::kForward:
        ns = static_cast<double>(sc.forward_ns);
        break;
      case ActionKind::kBackward:
        ns = static_cast<double>(sc.backward_ns);
        break;
      case ActionKind::kBackwardInput: {  // zero-bubble split: half of B each, in whole ns (documented)
        const TimeNs input_ns = sc.backward_ns / 2;
        ns = static_cast<double>(input_ns);
        break;
      }
      case ActionKind::kBackwardWeight: {
        const TimeNs weight_ns = sc.backward_ns - sc.backward_ns / 2;
        ns = static_cast<double>(weight_ns);
        break;
      }
      default:
        return 0;
    }
    if (exact_costs_) return static_cast<TimeNs>(ns);  // speed 1, no jitter: integers stay exact
    ns /= c_.cluster.Speed(d);
    if (c_.jitter > 0) ns *= 1.0 + c_.jitter * std::uniform_real_distribution<double>(-1.0, 1.0)(rng_);
    return static_cast<TimeNs>(std::llround(ns));
  }

  // Starts device d's next actions while they can run. An input that is on
  // its way (published with a future arrival time) lets the action start at
  // that arrival: the device's next action is fixed by the schedule, so
  // nothing that happens meanwhile can change it.
  void TryStart(int d) {
    Device& dev = dev_[d];
    const auto& row = Row(d);
    while (!dev.busy && dev.pending_sends == 0 && dev.next < row.size()) {
      const Action& a = row[dev.next];
      if (IsComm(a.kind)) {  // transfers are modelled, not run
        ++dev.next;
        continue;
      }
      const std::int64_t g = GlobalMicroBatch(a, s_.micro_batches);
      TimeNs start = q_.Now();
      if (a.kind == ActionKind::kForward && a.stage > 0) {
        const TimeNs at = fwd_avail_[Key(a.stage - 1, g)];
        if (at == kNotYet) return;  // the producer wakes us
        start = std::max(start, at);
      } else if (IsBackwardPass(a.kind) && a.stage < S_ - 1) {
        const TimeNs at = bwd_avail_[Key(a.stage + 1, g)];
        if (at == kNotYet) return;
        start = std::max(start, at);
      }
      ++r_.actions;
      if (a.kind == ActionKind::kUpdate) {
        if (a.stage == 0) stage0_updates_.push_back(start);
        ++dev.next;
        continue;
      }
      if (a.kind == ActionKind::kForward) ChangeInFlight(a.stage, +1, start);
      const TimeNs dur = Cost(d, a);
      dev.busy = true;
      r_.busy_ns[d] += dur;
      if (c_.record_trace) r_.trace.spans.push_back({d, start, start + dur, a, 0});
      q_.Schedule(start + dur, kComputeDone, static_cast<std::uint32_t>(d));
    }
  }

  void ChangeInFlight(int stage, int delta, TimeNs at) {
    in_flight_[stage] += delta;
    r_.peak_in_flight[stage] = std::max(r_.peak_in_flight[stage], in_flight_[stage]);
    if (c_.record_trace)
      r_.trace.memory.push_back({stage, at, static_bytes_[stage] + in_flight_[stage] * kept_bytes_[stage]});
  }

  void ComputeDone(int d) {
    Device& dev = dev_[d];
    const Action& a = Row(d)[dev.next];
    dev.busy = false;
    ++dev.next;
    if (a.kind == ActionKind::kBackward || a.kind == ActionKind::kBackwardWeight)
      ChangeInFlight(a.stage, -1, q_.Now());
    const std::int64_t g = GlobalMicroBatch(a, s_.micro_batches);
    if (a.kind == ActionKind::kForward && a.stage < S_ - 1)
      Send(d, a, a.stage + 1, g, /*forward=*/true, c_.stages[a.stage].output_bytes);
    if (IsBackwardPass(a.kind) && a.stage > 0)
      Send(d, a, a.stage - 1, g, /*forward=*/false, c_.stages[a.stage].input_bytes);
    TryStart(d);
  }

  int LinkOf(int from, int to) {
    // Chains send only to a neighbour: cache those two links per device and
    // keep the map for everything else.
    int* cached = nullptr;
    if (c_.cluster.topology == Topology::kChain && (to == from + 1 || to == from - 1))
      cached = &neighbour_link_[2 * static_cast<std::size_t>(from) + (to > from ? 1 : 0)];
    if (cached != nullptr && *cached >= 0) return *cached;
    if (c_.cluster.topology == Topology::kSharedBus) from = to = -1;
    const std::int64_t key = static_cast<std::int64_t>(from + 1) * (D_ + 1) + (to + 1);
    auto it = link_index_.find(key);
    if (it == link_index_.end()) {
      it = link_index_.emplace(key, static_cast<int>(links_.size())).first;
      links_.emplace_back();
      r_.trace.link_names.push_back(from < 0 ? "bus"
                                             : "d" + std::to_string(from) + "->d" + std::to_string(to));
    }
    if (cached != nullptr) *cached = it->second;
    return it->second;
  }

  // The output of `producer_stage` for micro-batch g is (or will be) at its
  // consumer at time `at`.
  void Publish(bool forward, int consumer_stage, std::int64_t g, TimeNs at) {
    auto& avail = forward ? fwd_avail_ : bwd_avail_;
    const int producer_stage = forward ? consumer_stage - 1 : consumer_stage + 1;
    avail[Key(producer_stage, g)] = at;
    TryStart(s_.stage_device[consumer_stage]);
  }

  void Send(int d, const Action& a, int consumer_stage, std::int64_t g, bool forward, Bytes bytes) {
    const int to = s_.stage_device[consumer_stage];
    if (to == d || bytes == 0) {  // a hand-off in memory: no link involved
      Publish(forward, consumer_stage, g, q_.Now());
      return;
    }
    Transfer t{static_cast<double>(bytes), g, -1, d, consumer_stage, forward};
    t.link = LinkOf(d, to);
    Link& link = links_[t.link];
    Advance(link);
    std::size_t id;
    if (free_slots_.empty()) {
      id = transfers_.size();
      transfers_.push_back(t);
      if (c_.record_trace) traced_.emplace_back();
    } else {
      id = free_slots_.back();
      free_slots_.pop_back();
      transfers_[id] = t;
    }
    if (c_.record_trace) traced_[id] = {q_.Now(), a, bytes};
    link.active.push_back(id);
    link.total += bytes;
    if (!c_.cluster.overlap_compute) ++dev_[d].pending_sends;
    Reschedule(t.link);
  }

  // Processor sharing: every active transfer on a link gets bandwidth / n.
  void Advance(Link& link) {
    if (!link.active.empty()) {
      const double per = static_cast<double>(q_.Now() - link.last_ns) * c_.cluster.link_bytes_per_sec /
                         kNsPerSec / static_cast<double>(link.active.size());
      for (std::size_t id : link.active) transfers_[id].remaining -= per;
    }
    link.last_ns = q_.Now();
  }

  void Reschedule(int l) {
    Link& link = links_[l];
    ++link.generation;
    if (link.active.empty()) return;
    double least = std::numeric_limits<double>::max();
    for (std::size_t id : link.active) least = std::min(least, transfers_[id].remaining);
    const double share = c_.cluster.link_bytes_per_sec / static_cast<double>(link.active.size());
    const TimeNs wait = static_cast<TimeNs>(std::ceil(std::max(0.0, least) * kNsPerSec / share));
    q_.Schedule(q_.Now() + wait, kLinkDone, static_cast<std::uint32_t>(l), link.generation);
  }

  void LinkDone(int l, std::uint64_t generation) {
    Link& link = links_[l];
    if (generation != link.generation) return;  // superseded by a later start or finish
    Advance(link);
    std::size_t kept = 0;
    for (std::size_t id : link.active) {
      Transfer& t = transfers_[id];
      if (t.remaining > 1e-3) {
        link.active[kept++] = id;
        continue;
      }
      if (c_.record_trace)
        r_.trace.spans.push_back(
            {D_ + l, traced_[id].start_ns, q_.Now(), traced_[id].action, traced_[id].bytes});
      arrived_.push_back(id);
      if (!c_.cluster.overlap_compute && --dev_[t.sender].pending_sends == 0)
        pending_wake_.push_back(t.sender);
    }
    link.active.resize(kept);
    Reschedule(l);
    // The data reaches its consumer one latency after its last byte left.
    for (std::size_t id : arrived_) {
      const Transfer& t = transfers_[id];
      free_slots_.push_back(id);
      Publish(t.forward, t.consumer_stage, t.g, q_.Now() + c_.cluster.link_latency_ns);
    }
    arrived_.clear();
    for (int d : pending_wake_) TryStart(d);
    pending_wake_.clear();
  }

  void Finish() {
    r_.makespan_ns = q_.Now();
    const int M = s_.mini_batches;
    if (M >= 4 && static_cast<int>(stage0_updates_.size()) == M) {
      const int lo = M / 4, hi = (3 * M) / 4;
      r_.mini_batch_ns = (stage0_updates_[hi] - stage0_updates_[lo]) / (hi - lo);
    } else {
      r_.mini_batch_ns = r_.makespan_ns / M;
    }
    r_.samples_per_sec = r_.mini_batch_ns > 0 ? c_.samples_per_mini_batch / NsToSec(r_.mini_batch_ns) : 0;
    for (int d = 0; d < D_; ++d)
      r_.utilisation.push_back(r_.makespan_ns > 0 ? static_cast<double>(r_.busy_ns[d]) / r_.makespan_ns : 0);
    for (int k = 0; k < S_; ++k)
      r_.peak_memory_bytes.push_back(static_bytes_[k] + r_.peak_in_flight[k] * kept_bytes_[k]);
    for (const Link& l : links_) r_.link_bytes.push_back(l.total);
  }

  const Schedule& s_;
  const SimConfig& c_;
  const int S_, D_;
  const std::int64_t G_;
  EventQueue q_;
  std::mt19937_64 rng_;
  bool exact_costs_ = true;
  std::vector<TimeNs> fwd_avail_, bwd_avail_;
  std::vector<Device> dev_;
  std::vector<Transfer> transfers_;
  std::vector<TracedTransfer> traced_;   // parallel to transfers_, with record_trace
  std::vector<std::size_t> free_slots_;  // transfer records to reuse
  std::vector<Link> links_;
  std::unordered_map<std::int64_t, int> link_index_;
  std::vector<int> neighbour_link_;  // [2d]: d -> d-1, [2d+1]: d -> d+1; -1 until used
  std::vector<int> in_flight_, pending_wake_;
  std::vector<std::size_t> arrived_;  // transfers finished in the current LinkDone
  std::vector<Bytes> static_bytes_, kept_bytes_;
  std::vector<TimeNs> stage0_updates_;
  SimResult r_;
};

}  // namespace

SimResult Simulate(const Schedule& s, const SimConfig& config) { return Engine(s, config).Run(); }

}  // namespace xpipe
