// EventQueue: the simulator's clock. Events are ordered by (time, sequence
// number), so simultaneous events run in the order they were scheduled and
// every run is bit-for-bit reproducible (as ns-3's EventKey). Owned by one
// Simulator; not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "common/error.h"
#include "common/units.h"

namespace xpipe {

struct Event {
  TimeNs time_ns = 0;
  std::uint64_t seq = 0;
  std::uint32_t type = 0;  // meaning chosen by the owner
  std::uint32_t target = 0;
  std::uint64_t payload = 0;
};

// A 4-ary min-heap: half the depth of a binary heap and its children share
// cache lines, which matters with a thousand devices' events in flight.
class EventQueue {
 public:
  // REQUIRES: time_ns >= Now().
  void Schedule(TimeNs time_ns, std::uint32_t type, std::uint32_t target, std::uint64_t payload = 0) {
    XPIPE_CHECK(time_ns >= now_ns_, "event scheduled in the past");
    heap_.push_back(Event{time_ns, next_seq_++, type, target, payload});
    std::size_t i = heap_.size() - 1;
    const Event e = heap_[i];
    while (i > 0) {
      const std::size_t parent = (i - 1) / 4;
      if (!Before(e, heap_[parent])) break;
      heap_[i] = heap_[parent];
      i = parent;
    }
    heap_[i] = e;
  }
  bool Empty() const { return heap_.empty(); }
  // Removes the earliest event and advances the clock to it.
  Event Pop() {
    const Event top = heap_.front();
    const Event last = heap_.back();
    heap_.pop_back();
    const std::size_t n = heap_.size();
    if (n > 0) {
      std::size_t i = 0;
      for (;;) {
        const std::size_t first = 4 * i + 1;
        if (first >= n) break;
        std::size_t best = first;
        const std::size_t end = first + 4 < n ? first + 4 : n;
        for (std::size_t c = first + 1; c < end; ++c)
          if (Before(heap_[c], heap_[best])) best = c;
        if (!Before(heap_[best], last)) break;
        heap_[i] = heap_[best];
        i = best;
      }
      heap_[i] = last;
    }
    XPIPE_CHECK(top.time_ns >= now_ns_, "time ran backwards");
    now_ns_ = top.time_ns;
    return top;
  }
  TimeNs Now() const { return now_ns_; }

 private:
  static bool Before(const Event& a, const Event& b) {
    return a.time_ns != b.time_ns ? a.time_ns < b.time_ns : a.seq < b.seq;
  }
  std::vector<Event> heap_;
  TimeNs now_ns_ = 0;
  std::uint64_t next_seq_ = 0;
};

}  // namespace xpipe
