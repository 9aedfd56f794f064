#include <algorithm>

#include "common/error.h"
#include "common/message.h"
#include "sim/engines.h"
#include "sim/sim_model.h"

namespace xpipe::sim {
namespace {

class DataflowEngine : EngineBase {
 public:
  DataflowEngine(const Schedule& s, const SimConfig& c, Wiring w) : EngineBase(s, c, std::move(w)) {
    XPIPE_CHECK(wiring_.one_channel_per_link, "the dataflow engine needs a channel per link");
    dev_.resize(D_);
    channel_free_ns_.assign(wiring_.channel_sender.size(), 0);
    for (int k = 0; k < S_; ++k) {
      forward_hop_.push_back(Hop(wiring_.forward_channel[k], k + 1 < S_ ? c.stages[k].output_bytes : 0));
      backward_hop_.push_back(Hop(wiring_.backward_channel[k], k > 0 ? c.stages[k].input_bytes : 0));
    }
  }

  SimResult Run() {
    for (int d = D_ - 1; d >= 0; --d) ready_.push_back(d);
    while (!ready_.empty()) {
      const int d = ready_.back();
      ready_.pop_back();
      RunDevice(d);
    }
    // Every transfer ends before its consumer does, so the last action's
    // end is the makespan.
    TimeNs makespan_ns = 0;
    for (int d = 0; d < D_; ++d) {
      XPIPE_CHECK(dev_[d].next == s_.device_actions[d].size(),
                  "simulation stalled: the schedule deadlocks (validate it first)");
      makespan_ns = std::max(makespan_ns, dev_[d].free_ns);
    }
    return Finish(makespan_ns);
  }

 private:
  struct Device {
    std::size_t next = 0;
    TimeNs free_ns = 0;    // its last action's end (or its last send's last byte, without overlap)
    bool waiting = false;  // blocked on an input nobody has produced yet
  };
  struct HopCost {  // one stage's output in one direction
    std::optional<int> channel;
    Bytes bytes = 0;
    TimeNs wire_ns = 0;  // bytes / bandwidth, rounded up
    TimeNs latency_ns = 0;
  };

  HopCost Hop(std::optional<int> channel, Bytes bytes) const {
    HopCost h;
    h.channel = channel;
    h.bytes = bytes;
    if (channel) {
      const int l = wiring_.channel_link[*channel];
      h.wire_ns = TransferNs(bytes, wiring_.link_bytes_per_sec[l]);
      h.latency_ns = wiring_.link_latency_ns[l];
    }
    return h;
  }

  // Runs device d's actions in order until one needs an input that does not
  // exist yet; the producer of that input puts d back on the ready list.
  void RunDevice(int d) {
    Device& dev = dev_[d];
    dev.waiting = !RunActions(
        d, dev.next, dev.free_ns, [] { return false; },
        [&](const Action& a, std::int64_t g, TimeNs end) {
          const auto out = Produces(a, S_, T_);
          if (out && out->forward)
            Send(dev, a, forward_hop_[a.stage], a.stage + 1, fwd_avail_[Key(a.stage, g)], end);
          else if (out)
            Send(dev, a, backward_hop_[a.stage], a.stage - 1, bwd_avail_[Key(a.stage, g)], end);
        });
  }

  // The sender's output leaves when both it and its channel are ready, takes
  // the wire time, and arrives one latency after its last byte; without a
  // copy engine the sender is busy until that last byte.
  void Send(Device& sender, const Action& a, const HopCost& hop, int consumer_stage, TimeNs& avail,
            TimeNs end) {
    TimeNs arrival = end;
    if (hop.channel) {
      TimeNs& channel_free = channel_free_ns_[*hop.channel];
      const TimeNs first_byte = std::max(end, channel_free);
      const TimeNs last_byte = first_byte + hop.wire_ns;
      channel_free = last_byte;
      rec_.Transfer(*hop.channel, first_byte, last_byte, a, hop.bytes);
      if (!c_.cluster.overlap_compute) sender.free_ns = std::max(sender.free_ns, last_byte);
      arrival = last_byte + hop.latency_ns;
    }
    avail = arrival;
    Device& consumer = dev_[s_.stage_device[consumer_stage]];
    if (consumer.waiting) {
      consumer.waiting = false;
      ready_.push_back(s_.stage_device[consumer_stage]);
    }
  }

  std::vector<Device> dev_;
  std::vector<HopCost> forward_hop_, backward_hop_;  // per stage
  std::vector<TimeNs> channel_free_ns_;
  std::vector<int> ready_;
};

}  // namespace

SimResult RunDataflowEngine(const Schedule& s, const SimConfig& c, Wiring w) {
  return DataflowEngine(s, c, std::move(w)).Run();
}

}  // namespace xpipe::sim
