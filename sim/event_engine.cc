#include <algorithm>
#include <cmath>
#include <functional>
#include <queue>

#include "common/error.h"
#include "common/message.h"
#include "sim/engines.h"
#include "sim/event_queue.h"
#include "sim/sim_model.h"

namespace xpipe::sim {
namespace {

// kComputeDone and kWake only where every completion is an event (compute
// contention, or SimConfig::run_ahead off); kJoin only where devices run ahead.
enum EventType : std::uint32_t { kComputeDone, kLinkDone, kWake, kJoin };

// A FIFO in one growing power-of-two buffer: what std::deque does for a
// queue, without its blocks and map (a channel's waiting transfers and a
// link's run of finish tags are pushed and popped once per transfer).
template <typename T>
class Ring {
 public:
  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  T& front() { return buf_[head_]; }
  const T& front() const { return buf_[head_]; }
  const T& back() const { return buf_[(head_ + size_ - 1) & mask_]; }
  // The i-th from the front. REQUIRES: i < size().
  const T& at(std::size_t i) const { return buf_[(head_ + i) & mask_]; }
  void push_back(const T& v) {
    if (size_ == mask_ + 1) Grow();
    buf_[(head_ + size_) & mask_] = v;
    ++size_;
  }
  void pop_front() {
    head_ = (head_ + 1) & mask_;
    --size_;
  }

 private:
  [[gnu::noinline, gnu::cold]] void Grow() {  // out of line: the hot push stays small
    std::vector<T> bigger(buf_.empty() ? 8 : 2 * buf_.size());
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = buf_[(head_ + i) & mask_];
    buf_.swap(bigger);
    head_ = 0;
    mask_ = buf_.size() - 1;
  }
  std::vector<T> buf_;
  std::size_t head_ = 0, size_ = 0;
  std::size_t mask_ = ~std::size_t{0};  // capacity - 1: a new ring is full at size 0
};

// ceil for the non-negative times here, without a call into libm.
TimeNs CeilNs(double ns) {
  const auto whole = static_cast<TimeNs>(ns);
  return static_cast<double>(whole) < ns ? whole + 1 : whole;
}

class EventEngine : EngineBase {
 public:
  EventEngine(const Schedule& s, const SimConfig& c, Wiring w) : EngineBase(s, c, std::move(w)) {
    dev_.resize(D_);
    channels_.resize(wiring_.channel_sender.size());
    links_.resize(wiring_.link_names.size());
    for (std::size_t l = 0; l < links_.size(); ++l) {
      links_[l].bytes_per_ns = wiring_.link_bytes_per_sec[l] / kNsPerSec;
      links_[l].ns_per_byte = kNsPerSec / wiring_.link_bytes_per_sec[l];
      links_[l].latency_ns = wiring_.link_latency_ns[l];
    }
    std::vector<int> channels_on(links_.size(), 0);
    for (int l : wiring_.channel_link) ++channels_on[l];
    for (std::size_t ch = 0; ch < channels_.size(); ++ch) {
      const int l = wiring_.channel_link[ch];
      channels_[ch].bytes_per_sec = wiring_.link_bytes_per_sec[l];
      channels_[ch].latency_ns = links_[l].latency_ns;
      channels_[ch].own_link = channels_on[l] == 1;
      channels_[ch].link = l;
    }
  }

  SimResult Run() {
    if (run_ahead_) {
      for (int d = D_ - 1; d >= 0; --d) ready_.push_back(d);
      RunReady();
    } else {
      for (int d = 0; d < D_; ++d) TryStart(d);
    }
    for (;;) {
      if (!touched_.empty() && !q_.MoreAtNow()) FlushJoins();  // the instant's last event is done
      if (q_.Empty()) break;
      const Event e = q_.Pop();
      ++events_;
      switch (e.type) {
        case kComputeDone:
          if (contention_ > 0 && e.payload != dev_[e.target].generation) break;  // superseded
          ComputeDone(static_cast<int>(e.target));
          break;
        case kWake:
          TryStart(static_cast<int>(e.target));
          break;
        case kLinkDone:
          if (!FinishAlone(static_cast<int>(e.target))) LinkDone(static_cast<int>(e.target));
          break;
        case kJoin:
          Join(static_cast<int>(e.target));
          break;
      }
      RunReady();
    }
    // Devices that ran ahead may end after the last event.
    TimeNs makespan_ns = q_.Now();
    for (int d = 0; d < D_; ++d) {
      XPIPE_CHECK(dev_[d].next == Row(d).size(),
                  "simulation stalled: the schedule deadlocks (validate it first)");
      makespan_ns = std::max(makespan_ns, dev_[d].free_ns);
    }
    SimResult r = Finish(makespan_ns);
    r.events = events_;
    r.event_engine = true;
    return r;
  }

 private:
  struct Device {
    std::size_t next = 0;
    TimeNs free_ns = 0;    // running ahead: its last action's end (or a held send's last byte)
    bool waiting = false;  // running ahead: blocked on an input nobody has produced yet
    bool busy = false;
    int pending_sends = 0;  // transfers holding the device (overlap_compute off)
    // With contention: the running action's work left (ns at full speed),
    // its start, and the generation of its latest completion event.
    double remaining_ns = 0;
    TimeNs start_ns = 0;
    std::uint64_t generation = 0;
    TimeNs wake_ns = -1;  // a kWake is queued for then
    Action running;       // a copy of the action computing: its row is long out of cache when it ends
  };
  struct Transfer {
    std::int64_t g;
    TimeNs start_ns;  // when it was sent; once on the wire, when its first byte left
    Bytes bytes;
    const Action* action;  // the sender's, in its row, for the trace
    std::int32_t consumer_stage;
    bool forward;
  };
  struct Channel {             // what an exclusive send reads first, in one cache line
    TimeNs free_ns = 0;        // exclusive links: when its last transfer's last byte leaves
    double bytes_per_sec = 0;  // its link's
    TimeNs latency_ns = 0;
    int link = 0;
    bool own_link = false;
    // Shared links: what it has sent (running ahead: or will send), in
    // order; the first is on the wire or waits for its turn to join it.
    Ring<Transfer> queue;
  };
  // What a finished transfer's consumer needs.
  struct Arrived {
    std::int64_t g;
    std::int32_t consumer_stage;
    bool forward;
  };
  // Processor sharing in virtual time, as fair-queueing schedulers keep it:
  // `virtual_bytes` is what each transfer on the wire has been sent since the
  // link was last idle, so a transfer put on with b bytes finishes when it
  // reaches tag = virtual_bytes + b. Transfers wait in a heap by (tag, order
  // put on): a start, a finish or the next finish time is O(log n), however
  // many senders share the link.
  struct OnWire {
    double tag;
    std::uint64_t order;
    int channel;
    bool operator>(const OnWire& o) const { return tag != o.tag ? tag > o.tag : order > o.order; }
  };
  // The transfers on a link by (tag, order): a heap, plus a run of tags in
  // rising order beside it, which takes the common case (transfers of equal
  // size put on one after another) in O(1) and leaves the rest O(log n).
  class OnWireQueue {
   public:
    bool empty() const { return size_ == 0; }
    std::size_t size() const { return size_; }
    void push(const OnWire& w) {
      ++size_;
      if (run_.empty() || !(run_.back() > w))
        run_.push_back(w);
      else
        HeapPush(w);
    }
    // REQUIRES: !empty().
    const OnWire& top() const { return RunFirst() ? run_.front() : heap_.top(); }
    void pop() {
      --size_;
      if (RunFirst())
        run_.pop_front();
      else
        HeapPop();
    }

    // The run, whose transfers finish in its order while the heap is empty.
    const Ring<OnWire>* OnlyRun() const { return heap_.empty() ? &run_ : nullptr; }

   private:
    // Out of line, as the rarer case: what calls them stays small.
    [[gnu::noinline]] void HeapPush(const OnWire& w) { heap_.push(w); }
    [[gnu::noinline]] void HeapPop() { heap_.pop(); }
    bool RunFirst() const { return heap_.empty() || (!run_.empty() && heap_.top() > run_.front()); }
    Ring<OnWire> run_;
    std::priority_queue<OnWire, std::vector<OnWire>, std::greater<>> heap_;
    std::size_t size_ = 0;
  };
  struct Link {
    OnWireQueue active;  // one transfer per channel
    double virtual_bytes = 0;
    TimeNs last_ns = 0;
    std::uint64_t put_on = 0;
    bool event_queued = false;                 // a kLinkDone at or before the next finish
    bool touched = false;                      // in touched_
    double bytes_per_ns = 0, ns_per_byte = 0;  // the wiring's bandwidth, beside the clock that reads it
    // Each transfer's share while n are on the wire, bandwidth / n, and its
    // inverse: set at the end of an instant in which n changed (a finish and
    // the join it lets in usually leave it as it was), so that the clock's
    // chain from one finish to the next (advance, next finish time) has no
    // division in it.
    double share_bytes_per_ns = 0, ns_per_share_byte = 0;
    std::size_t shared_n = 0;  // the n they are for
    TimeNs latency_ns = 0;
    void Shared() {
      if (active.size() == shared_n) return;
      shared_n = active.size();
      const auto n = static_cast<double>(shared_n);
      share_bytes_per_ns = n > 0 ? bytes_per_ns / n : 0;
      ns_per_share_byte = ns_per_byte * n;
    }
  };

  const std::vector<Action>& Row(int d) const { return s_.device_actions[d]; }

  // Running ahead (no compute contention): runs device d's actions in order
  // until one needs an input nobody has produced yet (its producer puts d
  // back on the ready list) or, without a copy engine, until a send on a
  // shared link holds it. Nothing another device does can change when d's
  // actions run, only when its inputs arrive, and an arrival is known once
  // published; so no event is needed for a completion. What goes on a link
  // that other channels share joins it by an event at its send time.
  void RunDevice(int d) {
    Device& dev = dev_[d];
    dev.waiting = !RunActions(
        d, dev.next, dev.free_ns, [&] { return dev.pending_sends > 0; },
        [&](const Action& a, std::int64_t g, TimeNs end) { SendOutput(d, a, g, end); });
  }
  void RunReady() {
    while (!ready_.empty()) {
      const int d = ready_.back();
      ready_.pop_back();
      RunDevice(d);
    }
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
      const std::int64_t g = GlobalMicroBatch(a);
      TimeNs start = q_.Now();
      if (const auto m = Consumes(a, S_, T_)) {
        PrefetchStream(*m, g);
        const TimeNs at = Arrival(*m, g);
        if (at == kNotYet) return;  // the producer wakes us
        start = std::max(start, at);
        // With contention the devices' rates depend on who computes when:
        // start when the input is here, not before.
        if (contention_ > 0 && start > q_.Now()) {
          if (dev.wake_ns != start) q_.Schedule(start, kWake, static_cast<std::uint32_t>(d));
          dev.wake_ns = start;
          return;
        }
      }
      rec_.CountAction();
      if (a.kind == ActionKind::kUpdate) {
        rec_.Update(a, start);
        if (cost_(d, dev.next, a) == 0) {  // an instant
          ++dev.next;
          continue;
        }
      }
      if (a.kind == ActionKind::kForward) rec_.ChangeInFlight(a, +1, start);
      dev.busy = true;
      dev.running = a;
      PrefetchAfter(row.data(), dev.next);
      if (contention_ > 0) {
        AdvanceCompute();
        dev.remaining_ns = static_cast<double>(cost_(d, dev.next, a));
        dev.start_ns = start;
        busy_.push_back(d);
        RescheduleCompute();
        return;
      }
      const TimeNs end = start + cost_(d, dev.next, a);
      rec_.Compute(d, start, end, a);
      q_.Schedule(end, kComputeDone, static_cast<std::uint32_t>(d));
    }
  }

  // Contention: the slowdown while `busy` devices compute at once.
  double Slowdown(std::size_t busy) const {
    return 1.0 + contention_ * static_cast<double>(busy > 0 ? busy - 1 : 0);
  }
  // Takes the work done since the last change off every running action.
  void AdvanceCompute() {
    const double done = static_cast<double>(q_.Now() - compute_last_ns_) / Slowdown(busy_.size());
    for (int d : busy_) dev_[d].remaining_ns -= done;
    compute_last_ns_ = q_.Now();
  }
  // New completion times for every running action at the current rate.
  void RescheduleCompute() {
    const double slowdown = Slowdown(busy_.size());
    for (int d : busy_) {
      Device& dev = dev_[d];
      const TimeNs wait = CeilNs(std::max(0.0, dev.remaining_ns) * slowdown);
      q_.Schedule(q_.Now() + wait, kComputeDone, static_cast<std::uint32_t>(d), ++dev.generation);
    }
  }

  void ComputeDone(int d) {
    Device& dev = dev_[d];
    const Action a = dev.running;
    dev.busy = false;
    if (contention_ > 0) {
      AdvanceCompute();
      busy_.erase(std::find(busy_.begin(), busy_.end(), d));
      ++dev.generation;  // nothing else of this action is pending
      RescheduleCompute();
      rec_.Compute(d, dev.start_ns, q_.Now(), a);
    }
    ++dev.next;
    if (a.kind == ActionKind::kBackward || a.kind == ActionKind::kBackwardWeight)
      rec_.ChangeInFlight(a, -1, q_.Now());
    SendOutput(d, Row(d)[dev.next - 1], GlobalMicroBatch(a), q_.Now());
    TryStart(d);
  }

  // Pass a of device d (an element of its row: a queued transfer points at
  // it), for global micro-batch g, has ended at `end`.
  void SendOutput(int d, const Action& a, std::int64_t g, TimeNs end) {
    const auto out = Produces(a, S_, T_);
    if (out && out->forward)
      Send(d, a, wiring_.forward_channel[a.stage], a.stage + 1, g, c_.stages[a.stage].output_bytes, end);
    if (out && !out->forward)
      Send(d, a, wiring_.backward_channel[a.stage], a.stage - 1, g, c_.stages[a.stage].input_bytes, end);
  }

  // The output of a stage for micro-batch g is (or will be) at its consumer
  // at time `at`.
  void Publish(bool forward, int consumer_stage, std::int64_t g, TimeNs at) {
    const int producer_stage = forward ? consumer_stage - 1 : consumer_stage + 1;
    SetArrival(forward, producer_stage, g, at);
    __builtin_prefetch((forward ? fwd_avail_ : bwd_avail_).data() + Key(producer_stage, g) + 8, 1);
    const int d = s_.stage_device[consumer_stage];
    if (!run_ahead_) {
      TryStart(d);
    } else if (dev_[d].waiting) {
      dev_[d].waiting = false;
      ready_.push_back(d);
    }
  }

  // Sends a's output, ready at `end` (now, unless running ahead).
  // (Inlined where it is called: 1.5 % faster on the 256-sender bus.)
  [[gnu::always_inline]] void Send(int d, const Action& a, std::optional<int> channel, int consumer_stage,
                                   std::int64_t g, Bytes bytes, TimeNs end) {
    const bool forward = consumer_stage > a.stage;
    if (!channel) {  // a hand-off in memory
      Publish(forward, consumer_stage, g, end);
      return;
    }
    Channel& ch = channels_[*channel];
    if (run_ahead_ ? ch.own_link : exclusive_links_) {
      // A link only this channel uses: nothing can join it, so the transfer's
      // times are known now (as a link event would find them) and its
      // arrival is published ahead.
      const TimeNs start = std::max(end, ch.free_ns);
      const TimeNs last = start + CeilNs(static_cast<double>(bytes) * kNsPerSec / ch.bytes_per_sec);
      ch.free_ns = last;
      rec_.Transfer(*channel, start, last, a, bytes);
      // Without a copy engine the sender is busy until its last byte.
      if (!c_.cluster.overlap_compute) dev_[d].free_ns = std::max(dev_[d].free_ns, last);
      Publish(forward, consumer_stage, g, last + ch.latency_ns);
      return;
    }
    ch.queue.push_back(Transfer{g, end, bytes, &a, consumer_stage, forward});
    if (!c_.cluster.overlap_compute) ++dev_[d].pending_sends;
    // Behind the channel's earlier transfers (a channel's sends come from
    // one device, in time order), its turn comes when the one before it has
    // left, so a busy channel needs no event for it.
    if (ch.queue.size() > 1) return;
    if (run_ahead_ && end > q_.Now())
      ScheduleJoin(*channel);
    else
      Join(*channel);
  }

  // Running ahead: the channel's first waiting transfer goes on the wire at
  // its send time, still to come.
  void ScheduleJoin(int channel) {
    q_.Schedule(channels_[channel].queue.front().start_ns, kJoin, static_cast<std::uint32_t>(channel));
  }

  // The idle channel's first transfer goes on the wire now: with every other
  // transfer that does at this instant, once the instant's events are done
  // (FlushJoins), so that the order of simultaneous events, which differs
  // between running ahead and not, cannot change how shares are rounded.
  void Join(int channel) {
    joining_.push_back(channel);
    Touch(channels_[channel].link);
  }
  void Touch(int l) {
    if (links_[l].touched) return;
    links_[l].touched = true;
    touched_.push_back(l);
  }
  void FlushJoins() {
    for (int channel : joining_) {
      Advance(links_[channels_[channel].link]);
      PutOnWire(channel);
    }
    joining_.clear();
    // A transfer joining only slows the others: a finish event already
    // queued comes early, finds nothing done and looks again.
    for (int l : touched_) {
      links_[l].touched = false;
      links_[l].Shared();
      if (!links_[l].event_queued) Reschedule(l);
    }
    touched_.clear();
  }

  // REQUIRES: the link is advanced to now.
  void PutOnWire(int channel) {
    Channel& ch = channels_[channel];
    Transfer& t = ch.queue.front();
    t.start_ns = q_.Now();
    Link& link = links_[ch.link];
    link.active.push({link.virtual_bytes + static_cast<double>(t.bytes), link.put_on++, channel});
  }

  // Processor sharing: every transfer on the wire gets bandwidth / n.
  void Advance(Link& link) {
    if (link.last_ns == q_.Now()) return;  // (an idle link's count was reset when it emptied)
    if (!link.active.empty())
      link.virtual_bytes += static_cast<double>(q_.Now() - link.last_ns) * link.share_bytes_per_ns;
    else
      link.virtual_bytes = 0;  // idle: tags start afresh, exact as long as the link is
    link.last_ns = q_.Now();
  }

  void Reschedule(int l) {
    Link& link = links_[l];
    if (link.active.empty()) return;
    q_.Schedule(q_.Now() + NextFinishNs(link), kLinkDone, static_cast<std::uint32_t>(l));
    link.event_queued = true;
  }
  // How long from now until the least tag is reached, its bytes leaving at
  // bandwidth / n. REQUIRES: the link is advanced to now and not idle.
  TimeNs NextFinishNs(const Link& link) const {
    const double least = link.active.top().tag - link.virtual_bytes;
    return CeilNs(std::max(0.0, least) * link.ns_per_share_byte);
  }

  // The common event on a busy shared link, running ahead with copy
  // engines: one transfer finishes, alone at this instant, and its channel's
  // next one, already sent, takes its place on the wire. What LinkDone, the
  // clock and FlushJoins would do for it, in one pass, with nothing left for
  // the instant's end unless the consumer it wakes puts a transfer on a link
  // now; and while the link's next finish is then the only event pending,
  // the clock is moved to it here and it is done the same way. Returns false,
  // having changed nothing but the link's clock, where the event is not that
  // one.
  bool FinishAlone(int l) {
    if (!fast_finish_ || !touched_.empty() || q_.MoreAtNow()) return false;
    Link& link = links_[l];
    if (!FinishOneAlone(link)) return false;
    for (;;) {
      if (!touched_.empty() || q_.MoreAtNow()) {
        Touch(l);  // joined by a consumer's send: rescheduled at the instant's end
        return true;
      }
      if (!q_.Empty()) {
        Reschedule(l);
        return true;
      }
      q_.AdvanceTo(q_.Now() + NextFinishNs(link));  // the event Reschedule would queue, taken at once
      ++events_;
      if (!FinishOneAlone(link)) {
        LinkDone(l);
        return true;
      }
    }
  }
  // FinishAlone's one finish, if the event is that one; its consumer runs.
  bool FinishOneAlone(Link& link) {
    const Ring<OnWire>* run = link.active.OnlyRun();
    if (run == nullptr || run->size() < 2) return false;
    Advance(link);
    const OnWire& head = run->front();
    if (head.tag - link.virtual_bytes > 1e-3 || run->at(1).tag - link.virtual_bytes <= 1e-3) return false;
    const int channel = head.channel;
    Channel& ch = channels_[channel];
    if (ch.queue.size() < 2 || ch.queue.at(1).start_ns > q_.Now()) return false;
    link.event_queued = false;
    link.active.pop();
    const Transfer& t = ch.queue.front();
    rec_.Transfer(channel, t.start_ns, q_.Now(), *t.action, t.bytes);
    const int producer_stage = t.forward ? t.consumer_stage - 1 : t.consumer_stage + 1;
    SetArrival(t.forward, producer_stage, t.g, q_.Now() + link.latency_ns);
    const int consumer = s_.stage_device[t.consumer_stage];
    ch.queue.pop_front();
    Transfer& next = ch.queue.front();  // on the wire now; n is as it was, and so is the share
    next.start_ns = q_.Now();
    link.active.push({link.virtual_bytes + static_cast<double>(next.bytes), link.put_on++, channel});
    if (dev_[consumer].waiting) {
      dev_[consumer].waiting = false;
      RunDevice(consumer);
    }
    RunReady();
    return true;
  }

  void LinkDone(int l) {
    Link& link = links_[l];
    link.event_queued = false;
    Advance(link);
    // A channel whose next transfer, already sent, goes on the wire now: put
    // on below, once this instant's finishes are off, as FlushJoins would
    // (only the order of equal tags can differ, which changes no time).
    int due = -1;
    while (!link.active.empty() && link.active.top().tag - link.virtual_bytes <= 1e-3) {
      const int channel = link.active.top().channel;
      link.active.pop();
      Channel& ch = channels_[channel];
      const Transfer& t = ch.queue.front();
      rec_.Transfer(channel, t.start_ns, q_.Now(), *t.action, t.bytes);
      // The data reaches its consumer one latency after its last byte left.
      // Running ahead, publishing only marks the consumer ready, so it is
      // done now; else the consumer may start and send, once the link is
      // left as this instant's finishes leave it.
      if (run_ahead_)
        Publish(t.forward, t.consumer_stage, t.g, q_.Now() + link.latency_ns);
      else
        arrived_.push_back({t.g, t.consumer_stage, t.forward});
      if (!c_.cluster.overlap_compute && --dev_[wiring_.channel_sender[channel]].pending_sends == 0)
        pending_wake_.push_back(wiring_.channel_sender[channel]);
      ch.queue.pop_front();
      // The channel's next transfer joins (once sent, running ahead).
      if (ch.queue.empty()) continue;
      if (ch.queue.front().start_ns > q_.Now())
        ScheduleJoin(channel);
      else if (due < 0)
        due = channel;
      else
        Join(channel);
    }
    if (link.active.empty()) link.virtual_bytes = 0;
    if (due >= 0) PutOnWire(due);
    Touch(l);  // shared and rescheduled once the instant's joins are on
    for (const Arrived& t : arrived_) Publish(t.forward, t.consumer_stage, t.g, q_.Now() + link.latency_ns);
    arrived_.clear();
    for (int d : pending_wake_) {
      if (!run_ahead_) {
        TryStart(d);
        continue;
      }
      dev_[d].free_ns = std::max(dev_[d].free_ns, q_.Now());  // its sends held it until now
      ready_.push_back(d);
    }
    pending_wake_.clear();
  }

  EventQueue q_;
  // Every link carries one channel and a send does not hold its device: a
  // transfer's times are known when it is sent, with no link events.
  const bool exclusive_links_ = wiring_.one_channel_per_link && c_.cluster.overlap_compute;
  const double contention_ = c_.cluster.compute_contention;
  // Devices run ahead between link events (RunDevice); with contention a
  // device's rate depends on who else computes, so every completion is an event.
  const bool run_ahead_ = c_.run_ahead && contention_ == 0;
  const bool fast_finish_ = run_ahead_ && c_.cluster.overlap_compute;  // FinishAlone may apply
  std::int64_t events_ = 0;   // events done, counting those FinishAlone takes without queueing them
  std::vector<int> ready_;    // running ahead: devices that can go on
  std::vector<int> joining_;  // channels whose first transfer goes on the wire at this instant
  std::vector<int> touched_;  // links whose transfers changed at this instant
  std::vector<int> busy_;     // devices computing (with contention)
  TimeNs compute_last_ns_ = 0;
  std::vector<Device> dev_;
  std::vector<Channel> channels_;
  std::vector<Link> links_;
  std::vector<int> pending_wake_;
  std::vector<Arrived> arrived_;  // transfers finished in the current LinkDone
};

}  // namespace

SimResult RunEventEngine(const Schedule& s, const SimConfig& c, Wiring w) {
  return EventEngine(s, c, std::move(w)).Run();
}

}  // namespace xpipe::sim
