#include "common/lowering.h"

#include <map>
#include <optional>

#include "common/error.h"

namespace xpipe {
namespace {

Action Comm(int stage, ActionKind kind, std::int64_t g, int T) {
  Action c;
  c.stage = stage;
  c.kind = kind;
  c.mini_batch = static_cast<std::int32_t>(g / T);
  c.micro_batch = static_cast<std::int32_t>(g % T);
  return c;
}

}  // namespace

Message MessageOf(const Action& a, int micro_batches) {
  const std::int64_t g = GlobalMicroBatch(a, micro_batches);
  switch (a.kind) {
    case ActionKind::kSendF:
      return {true, a.stage, g};
    case ActionKind::kRecvF:
      return {true, a.stage - 1, g};
    case ActionKind::kSendB:
      return {false, a.stage, g};
    case ActionKind::kRecvB:
      return {false, a.stage + 1, g};
    default:
      XPIPE_CHECK(false, "MessageOf needs a SEND or RECV action");
  }
  return {};
}

Schedule LowerCommunication(const Schedule& s) {
  Schedule out = s;
  const int T = s.micro_batches;
  const auto key = [](const Message& m) { return std::make_tuple(m.forward, m.producer_stage, m.g); };
  // Pass 1: sends right after their producing pass; each channel's sequence.
  std::map<std::pair<int, int>, std::vector<Message>> channel;  // (from, to) device -> messages in send order
  std::map<std::tuple<bool, int, std::int64_t>, std::size_t> position;  // message -> index in its channel
  for (std::size_t d = 0; d < s.device_actions.size(); ++d) {
    auto& row = out.device_actions[d];
    row.clear();
    row.reserve(s.device_actions[d].size() * 2);
    for (const Action& a : s.device_actions[d]) {
      XPIPE_CHECK(!IsComm(a.kind), "schedule is already lowered");
      row.push_back(a);
      const std::optional<Message> sent = Produces(a, s.num_stages, T);
      if (!sent) continue;
      row.push_back(Comm(a.stage, sent->forward ? ActionKind::kSendF : ActionKind::kSendB, sent->g, T));
      auto& seq = channel[{static_cast<int>(d), s.stage_device[ReceiverStage(*sent)]}];
      position[key(*sent)] = seq.size();
      seq.push_back(*sent);
    }
  }
  // Pass 2: receives in channel order, each channel's prefix up to the
  // message the next pass consumes.
  std::map<std::pair<int, int>, std::size_t> posted;
  for (std::size_t d = 0; d < out.device_actions.size(); ++d) {
    std::vector<Action> row;
    row.reserve(out.device_actions[d].size() * 3 / 2);
    for (const Action& a : out.device_actions[d]) {
      if (const auto m = Consumes(a, s.num_stages, T)) {
        const std::pair<int, int> c{s.stage_device[m->producer_stage], static_cast<int>(d)};
        const auto at = position.find(key(*m));
        XPIPE_CHECK(at != position.end(), "a pass consumes a message no pass produces");
        const auto& seq = channel[c];
        for (std::size_t& next = posted[c]; next <= at->second; ++next) {
          const Message& r = seq[next];
          row.push_back(Comm(ReceiverStage(r), r.forward ? ActionKind::kRecvF : ActionKind::kRecvB, r.g, T));
        }
      }
      row.push_back(a);
    }
    out.device_actions[d] = std::move(row);
  }
  return out;
}

bool IsLowered(const Schedule& s) {
  for (const auto& row : s.device_actions)
    for (const Action& a : row)
      if (IsComm(a.kind)) return true;
  return false;
}

Schedule StripCommunication(const Schedule& s) {
  Schedule out = s;
  for (auto& row : out.device_actions) std::erase_if(row, [](const Action& a) { return IsComm(a.kind); });
  return out;
}

}  // namespace xpipe
