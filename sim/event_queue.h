// EventQueue: the simulator's clock. Events are ordered by (time, sequence
// number), so simultaneous events run in the order they were scheduled and
// every run is bit-for-bit reproducible (as ns-3's EventKey). Owned by one
// Simulator; not thread-safe.
//
// A radix heap (Ahuja, Mehlhorn, Orlin and Tarjan 1990): a simulation's clock
// never runs backwards, so an event's bucket is the highest bit in which its
// time differs from the last time popped. Scheduling is an append; popping
// takes the lowest non-empty bucket and, when that is not the bucket of "now",
// spreads it over the lower ones (each event moves down at most 64 times,
// usually a few). Events of equal time are always in one bucket, appended in
// the order they were scheduled, so ties keep that order with no sequence
// comparisons.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <vector>

#include "common/error.h"
#include "common/units.h"

namespace xpipe {

struct Event {
  TimeNs time_ns = 0;
  std::uint32_t type = 0;  // meaning chosen by the owner
  std::uint32_t target = 0;
  std::uint64_t payload = 0;
};

class EventQueue {
 public:
  // REQUIRES: time_ns >= Now().
  void Schedule(TimeNs time_ns, std::uint32_t type, std::uint32_t target, std::uint64_t payload = 0) {
    XPIPE_CHECK(time_ns >= now_ns_, "event scheduled in the past");
    if (size_ == 0) {  // alone: no bucket needed (a clock of one pending event is common)
      lone_time_ns_ = time_ns;
      lone_type_ = type;
      lone_target_ = target;
      lone_payload_ = payload;
      has_lone_ = true;
      size_ = 1;
      return;
    }
    if (has_lone_) {  // a second event: the first goes into its bucket
      has_lone_ = false;
      Put(Event{lone_time_ns_, lone_type_, lone_target_, lone_payload_});
    }
    Put(Event{time_ns, type, target, payload});
    ++size_;
  }
  bool Empty() const { return size_ == 0; }
  // Removes the earliest event (the first scheduled of the earliest time)
  // and advances the clock to it. REQUIRES: !Empty().
  Event Pop() {
    if (has_lone_) {
      has_lone_ = false;
      size_ = 0;
      now_ns_ = lone_time_ns_;
      return Event{lone_time_ns_, lone_type_, lone_target_, lone_payload_};
    }
    if (head_ == buckets_[0].size()) {
      buckets_[0].clear();
      head_ = 0;
      nonempty_ &= ~1ULL;
      // The lowest non-empty bucket holds the next time: make it "now" and
      // spread the bucket below it.
      const int i = std::countr_zero(nonempty_);
      std::vector<Event>& b = buckets_[i];
      nonempty_ &= ~(1ULL << i);
      if (b.size() == 1) {  // alone in its bucket: the next event, nothing to spread
        const Event e = b.front();
        b.clear();
        now_ns_ = e.time_ns;
        --size_;
        return e;
      }
      TimeNs least = b.front().time_ns;
      for (const Event& e : b) least = e.time_ns < least ? e.time_ns : least;
      now_ns_ = least;
      for (const Event& e : b) Put(e);
      b.clear();
    }
    --size_;
    return buckets_[0][head_++];
  }
  TimeNs Now() const { return now_ns_; }
  // Moves the clock to time_ns with no event: for an owner whose next event
  // would be the only one pending, so that it need not queue and pop it.
  // REQUIRES: Empty(), time_ns >= Now().
  void AdvanceTo(TimeNs time_ns) {
    XPIPE_CHECK(size_ == 0 && time_ns >= now_ns_, "clock advanced past pending events or backwards");
    now_ns_ = time_ns;
  }
  // Whether events at Now() are still to be popped.
  bool MoreAtNow() const {
    if (has_lone_) return lone_time_ns_ == now_ns_;
    return size_ > 0 && head_ < buckets_[0].size();
  }

 private:
  void Put(const Event& e) {
    const auto diff = static_cast<std::uint64_t>(e.time_ns ^ now_ns_);
    const int i = diff == 0 ? 0 : 64 - std::countl_zero(diff);
    buckets_[i].push_back(e);
    nonempty_ |= 1ULL << i;
  }
  std::array<std::vector<Event>, 65> buckets_;
  std::uint64_t nonempty_ = 0;  // bit i: bucket i holds events (bucket 64 is never used: times are >= 0)
  std::size_t head_ = 0;        // bucket 0 is read from here (its events are all at Now())
  std::size_t size_ = 0;
  TimeNs now_ns_ = 0;
  // The only pending event, outside the buckets, when has_lone_: kept field
  // by field, so that each is read back as it was written (a wider read of
  // narrower writes just made waits for them to reach the cache).
  TimeNs lone_time_ns_ = 0;
  std::uint32_t lone_type_ = 0, lone_target_ = 0;
  std::uint64_t lone_payload_ = 0;
  bool has_lone_ = false;
};

}  // namespace xpipe
