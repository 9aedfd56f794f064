#include "common/validate.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "common/dry_run.h"
#include "common/lowering.h"

namespace xpipe {
namespace {

constexpr std::uint8_t kSeenF = 1, kSeenB = 2, kSeenI = 4, kSeenW = 8;

struct Where {
  int device;
  std::size_t step;
};

ValidationResult Fail(const Schedule& s, int device, std::size_t step, const std::string& what) {
  ValidationResult r;
  r.ok = false;
  r.device = device;
  r.step = step;
  std::ostringstream msg;
  if (device >= 0)
    msg << "device " << device << " step " << step;
  else
    msg << "schedule";
  if (device >= 0 && device < static_cast<int>(s.device_actions.size()) &&
      step < s.device_actions[device].size())
    msg << " (" << ToText(s.device_actions[device][step], s.micro_batches) << ")";
  msg << ": " << what;
  r.error = msg.str();
  const std::size_t first = step > 6 ? step - 6 : 0;
  r.grid = RenderGrid(s, first, 14, device, step);
  return r;
}

}  // namespace

std::string RenderGrid(const Schedule& s, std::size_t first_step, std::size_t num_steps, int mark_device,
                       std::size_t mark_step) {
  std::ostringstream out;
  const std::size_t width = 9;
  out << "        ";
  for (std::size_t c = first_step; c < first_step + num_steps; ++c) {
    std::string h = std::to_string(c);
    out << std::string(width - std::min(width, h.size()), ' ') << h;
  }
  out << '\n';
  for (std::size_t d = 0; d < s.device_actions.size(); ++d) {
    std::string label = "dev " + std::to_string(d);
    out << label << std::string(8 - std::min<std::size_t>(8, label.size()), ' ');
    const auto& row = s.device_actions[d];
    for (std::size_t c = first_step; c < first_step + num_steps; ++c) {
      std::string cell = c < row.size() ? ToText(row[c], s.micro_batches) : ".";
      if (static_cast<int>(d) == mark_device && c == mark_step) cell.insert(0, 1, '[').push_back(']');
      out << std::string(width - std::min(width, cell.size()), ' ') << cell;
    }
    out << '\n';
  }
  return out.str();
}

ValidationResult Validate(const Schedule& s) {
  const int S = s.num_stages, D = s.num_devices, T = s.micro_batches, M = s.mini_batches;
  if (D < 1 || S < 1 || T < 1 || M < 1 || static_cast<int>(s.device_actions.size()) != D ||
      static_cast<int>(s.stage_device.size()) != S)
    return Fail(s, -1, 0,
                "schedule header inconsistent (devices, stages, micro-batches, "
                "mini-batches, stage_device)");
  for (int st = 0; st < S; ++st)
    if (s.stage_device[st] < 0 || s.stage_device[st] >= D)
      return Fail(s, -1, 0, "stage " + std::to_string(st) + " mapped to a device that does not exist");
  const std::int64_t G = static_cast<std::int64_t>(M) * T;
  std::vector<std::uint8_t> seen(static_cast<std::size_t>(S) * G, 0);
  std::vector<std::int32_t> backs_done(static_cast<std::size_t>(S) * M, 0);
  std::vector<std::uint8_t> updated(static_cast<std::size_t>(S) * M, 0);
  // Per ordered device pair (one channel, matched by posting order), the
  // messages in the order they are sent / received.
  std::map<std::pair<int, int>, std::vector<Message>> sent;
  std::map<std::pair<int, int>, std::vector<std::pair<Message, Where>>> received;
  bool lowered = false;
  bool has_updates = false;

  for (int d = 0; d < D; ++d) {
    const auto& row = s.device_actions[d];
    for (std::size_t i = 0; i < row.size(); ++i) {
      const Action& a = row[i];
      if (a.stage < 0 || a.stage >= S) return Fail(s, d, i, "stage out of range");
      if (s.stage_device[a.stage] != d)
        return Fail(s, d, i,
                    "stage " + std::to_string(a.stage) + " belongs to device " +
                        std::to_string(s.stage_device[a.stage]));
      if (a.mini_batch < 0 || a.mini_batch >= M) return Fail(s, d, i, "mini-batch out of range");
      if (a.micro_batch < 0 || a.micro_batch >= T) return Fail(s, d, i, "micro-batch out of range");
      const std::int64_t g = GlobalMicroBatch(a, T);
      const std::size_t key = static_cast<std::size_t>(a.stage) * G + g;
      const std::size_t bkey = static_cast<std::size_t>(a.stage) * M + a.mini_batch;
      std::uint8_t& f = seen[key];
      switch (a.kind) {
        case ActionKind::kForward:
          if (f & kSeenF) return Fail(s, d, i, "second forward of this micro-batch");
          f |= kSeenF;
          break;
        case ActionKind::kBackward:
        case ActionKind::kBackwardInput:
          if (!(f & kSeenF)) return Fail(s, d, i, "backward before its forward");
          if (f & (kSeenB | kSeenI)) return Fail(s, d, i, "second backward of this micro-batch");
          if (updated[bkey]) return Fail(s, d, i, "backward after the update of its mini-batch");
          f |= a.kind == ActionKind::kBackward ? kSeenB : kSeenI;
          if (a.kind == ActionKind::kBackward) ++backs_done[bkey];
          break;
        case ActionKind::kBackwardWeight:
          if (!(f & kSeenI)) return Fail(s, d, i, "weight gradient before its input gradient");
          if (f & kSeenW) return Fail(s, d, i, "second weight gradient of this micro-batch");
          if (updated[bkey]) return Fail(s, d, i, "weight gradient after the update of its mini-batch");
          f |= kSeenW;
          ++backs_done[bkey];
          break;
        case ActionKind::kUpdate:
          if (updated[bkey]) return Fail(s, d, i, "second update of this mini-batch");
          if (backs_done[bkey] != T)
            return Fail(s, d, i,
                        "update before all " + std::to_string(T) + " backward passes of its mini-batch (" +
                            std::to_string(backs_done[bkey]) + " done)");
          updated[bkey] = 1;
          has_updates = true;
          break;
        case ActionKind::kSendF:
          lowered = true;
          if (!(f & kSeenF)) return Fail(s, d, i, "sends an activation before computing it");
          if (a.stage == S - 1) return Fail(s, d, i, "the last stage has no successor to send to");
          sent[{d, s.stage_device[a.stage + 1]}].push_back(MessageOf(a, T));
          break;
        case ActionKind::kSendB:
          lowered = true;
          if (!(f & (kSeenB | kSeenI))) return Fail(s, d, i, "sends a gradient before computing it");
          if (a.stage == 0) return Fail(s, d, i, "the first stage has no predecessor to send to");
          sent[{d, s.stage_device[a.stage - 1]}].push_back(MessageOf(a, T));
          break;
        case ActionKind::kRecvF:
          lowered = true;
          if (a.stage == 0) return Fail(s, d, i, "the first stage has no predecessor to receive from");
          if (f & kSeenF) return Fail(s, d, i, "receives an activation after its forward ran");
          received[{s.stage_device[a.stage - 1], d}].push_back({MessageOf(a, T), {d, i}});
          break;
        case ActionKind::kRecvB:
          lowered = true;
          if (a.stage == S - 1) return Fail(s, d, i, "the last stage has no successor to receive from");
          if (f & (kSeenB | kSeenI)) return Fail(s, d, i, "receives a gradient after its backward ran");
          received[{s.stage_device[a.stage + 1], d}].push_back({MessageOf(a, T), {d, i}});
          break;
      }
    }
  }
  // Completeness: first missing piece, pointed at the stage's last action.
  for (int st = 0; st < S; ++st) {
    const int d = s.stage_device[st];
    const std::size_t last = s.device_actions[d].empty() ? 0 : s.device_actions[d].size() - 1;
    for (std::int64_t g = 0; g < G; ++g) {
      const std::uint8_t f = seen[static_cast<std::size_t>(st) * G + g];
      std::string what;
      if (!(f & kSeenF))
        what = "F";
      else if (!(f & (kSeenB | kSeenI)))
        what = "B";
      else if ((f & kSeenI) && !(f & kSeenW))
        what = "W";
      if (!what.empty()) {
        // Point at the forward if it exists, else at the end of the row.
        std::size_t at = last;
        const auto& row = s.device_actions[d];
        for (std::size_t i = 0; i < row.size(); ++i)
          if (row[i].stage == st && row[i].kind == ActionKind::kForward && GlobalMicroBatch(row[i], T) == g)
            at = i;
        return Fail(s, d, at,
                    "stage " + std::to_string(st) + " has no " + what + " for micro-batch " +
                        std::to_string(g % T) + " of mini-batch " + std::to_string(g / T));
      }
    }
    // A schedule without any U (PyTorch's format has none) is one mini-batch
    // whose optimizer step follows the schedule.
    if (!has_updates && M == 1) continue;
    for (int b = 0; b < M; ++b)
      if (!updated[static_cast<std::size_t>(st) * M + b])
        return Fail(s, d, last,
                    "stage " + std::to_string(st) + " has no U for mini-batch " + std::to_string(b));
  }
  if (lowered) {
    const auto name = [](const Message& m) {
      return std::string(m.forward ? "the activation of stage " : "the gradient of stage ") +
             std::to_string(m.producer_stage) + " micro-batch " + std::to_string(m.g);
    };
    std::set<std::pair<int, int>> channels;
    for (const auto& [c, v] : sent) channels.insert(c);
    for (const auto& [c, v] : received) channels.insert(c);
    for (const auto& c : channels) {
      const auto& out = sent[c];
      const auto& in = received[c];
      const std::string pair =
          " on channel device " + std::to_string(c.first) + " -> " + std::to_string(c.second);
      const std::size_t n = std::min(out.size(), in.size());
      for (std::size_t i = 0; i < n; ++i)
        if (!(out[i] == in[i].first))
          return Fail(s, in[i].second.device, in[i].second.step,
                      "receives " + name(in[i].first) + " where the sender's next message" + pair + " is " +
                          name(out[i]) + " (messages match in posting order)");
      if (in.size() > out.size())
        return Fail(s, in[n].second.device, in[n].second.step,
                    "receives " + name(in[n].first) + " that is never sent");
      if (out.size() > in.size()) return Fail(s, -1, 0, name(out[n]) + " is sent but never received" + pair);
    }
  }
  const DryRunResult run = DryRun(s, UnitCost, nullptr, /*record_times=*/false);
  if (!run.ok()) {
    const auto [d, i] = run.stuck.front();
    std::string others;
    for (const auto& [d2, i2] : run.stuck)
      others += " " + std::to_string(d2) + ":" + ToText(s.device_actions[d2][i2], T);
    return Fail(s, d, i, "deadlock: no device can proceed (waiting:" + others + ")");
  }
  return {};
}

}  // namespace xpipe
