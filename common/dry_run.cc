#include "common/dry_run.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <optional>

#include "common/lowering.h"
#include "common/message.h"

namespace xpipe {
namespace {

constexpr TimeNs kNotYet = std::numeric_limits<TimeNs>::min();

}  // namespace

TimeNs UnitCost(int /*device*/, const Action& a) { return IsCompute(a.kind) ? 1 : 0; }

DryRunResult DryRun(const Schedule& s, const CostFn& cost, const TransferFn& transfer, bool record_times) {
  const int S = s.num_stages, D = s.num_devices;
  const std::int64_t G = static_cast<std::int64_t>(s.mini_batches) * s.micro_batches;
  const bool lowered = IsLowered(s);
  // fwd_out[st*G+g]: time stage st's forward output for g is available
  // (lowered: time SEND_F ran). bwd_out likewise for the backward output.
  std::vector<TimeNs> fwd_out(static_cast<std::size_t>(S) * G, kNotYet);
  std::vector<TimeNs> bwd_out(static_cast<std::size_t>(S) * G, kNotYet);
  // The producer action of each output, for the transfer cost.
  std::vector<const Action*> fwd_src(transfer ? fwd_out.size() : 0, nullptr);
  std::vector<const Action*> bwd_src(transfer ? bwd_out.size() : 0, nullptr);

  DryRunResult r;
  r.start.resize(D);
  r.end.resize(D);
  for (int d = 0; d < D && record_times; ++d) {
    r.start[d].assign(s.device_actions[d].size(), 0);
    r.end[d].assign(s.device_actions[d].size(), 0);
  }
  std::vector<std::size_t> next(D, 0);
  std::vector<TimeNs> free_at(D, 0);
  std::deque<int> ready;
  for (int d = 0; d < D; ++d) ready.push_back(d);
  std::vector<char> queued(D, 1);

  const auto index = [&](int st, std::int64_t g) { return static_cast<std::size_t>(st) * G + g; };
  const auto in_range = [&](const Action& a) {
    const std::int64_t g = GlobalMicroBatch(a, s.micro_batches);
    return a.stage >= 0 && a.stage < S && a.micro_batch >= 0 && a.micro_batch < s.micro_batches && g >= 0 &&
           g < G;
  };
  const auto wake = [&](int st) {
    if (st < 0 || st >= S) return;
    const int d = s.stage_device[st];
    if (!queued[d]) {
      queued[d] = 1;
      ready.push_back(d);
    }
  };

  while (!ready.empty()) {
    const int d = ready.front();
    ready.pop_front();
    queued[d] = 0;
    auto& row = s.device_actions[d];
    while (next[d] < row.size()) {
      const Action& a = row[next[d]];
      if (!in_range(a)) break;
      const std::int64_t g = GlobalMicroBatch(a, s.micro_batches);
      // Which remote output this action waits for, if any.
      const std::vector<TimeNs>* dep = nullptr;
      const std::vector<const Action*>* dep_src = nullptr;
      int dep_stage = -1;
      // A compute pass waits for the message it consumes; in a lowered
      // schedule its RECV waits instead.
      std::optional<Message> waits;
      if (!lowered) waits = Consumes(a, S, s.micro_batches);
      if ((a.kind == ActionKind::kRecvF && a.stage > 0) || (a.kind == ActionKind::kRecvB && a.stage < S - 1))
        waits = MessageOf(a, s.micro_batches);
      if (waits) {
        dep = waits->forward ? &fwd_out : &bwd_out;
        dep_src = waits->forward ? &fwd_src : &bwd_src;
        dep_stage = waits->producer_stage;
      }
      TimeNs start = free_at[d];
      if (dep != nullptr) {
        const TimeNs avail = (*dep)[index(dep_stage, g)];
        if (avail == kNotYet) break;  // blocked; the producer wakes us
        TimeNs t = avail;
        const int from = s.stage_device[dep_stage];
        if (transfer && from != d) t += transfer(*(*dep_src)[index(dep_stage, g)], from, d);
        start = std::max(start, t);
      }
      const TimeNs end = start + cost(d, a);
      if (record_times) {
        r.start[d][next[d]] = start;
        r.end[d][next[d]] = end;
      }
      free_at[d] = end;
      r.makespan_ns = std::max(r.makespan_ns, end);
      // Publish outputs.
      const auto publish = [&](std::vector<TimeNs>& out, std::vector<const Action*>& src, int wake_stage) {
        out[index(a.stage, g)] = end;
        if (transfer) src[index(a.stage, g)] = &a;
        wake(wake_stage);
      };
      std::optional<Message> out;
      if (!lowered) out = Produces(a, S, s.micro_batches);
      if (a.kind == ActionKind::kSendF || a.kind == ActionKind::kSendB) out = MessageOf(a, s.micro_batches);
      if (out)
        publish(out->forward ? fwd_out : bwd_out, out->forward ? fwd_src : bwd_src, ReceiverStage(*out));
      ++next[d];
    }
  }
  for (int d = 0; d < D; ++d)
    if (next[d] < s.device_actions[d].size()) r.stuck.emplace_back(d, next[d]);
  return r;
}

}  // namespace xpipe
