// EventQueue: the simulator's clock. Events are ordered by (time, sequence
// number), so simultaneous events run in the order they were scheduled and
// every run is bit-for-bit reproducible (as ns-3's EventKey). Owned by one
// Simulator; not thread-safe.
#pragma once

#include <cstdint>
#include <queue>
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

class EventQueue {
 public:
  // REQUIRES: time_ns >= Now().
  void Schedule(TimeNs time_ns, std::uint32_t type, std::uint32_t target, std::uint64_t payload = 0) {
    XPIPE_CHECK(time_ns >= now_ns_, "event scheduled in the past");
    heap_.push(Event{time_ns, next_seq_++, type, target, payload});
  }
  bool Empty() const { return heap_.empty(); }
  // Removes the earliest event and advances the clock to it.
  Event Pop() {
    Event e = heap_.top();
    heap_.pop();
    XPIPE_CHECK(e.time_ns >= now_ns_, "time ran backwards");
    now_ns_ = e.time_ns;
    return e;
  }
  TimeNs Now() const { return now_ns_; }
  std::uint64_t Scheduled() const { return next_seq_; }

 private:
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.time_ns != b.time_ns ? a.time_ns > b.time_ns : a.seq > b.seq;
    }
  };
  std::priority_queue<Event, std::vector<Event>, Later> heap_;
  TimeNs now_ns_ = 0;
  std::uint64_t next_seq_ = 0;
};

}  // namespace xpipe
