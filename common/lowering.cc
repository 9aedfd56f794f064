#include "common/lowering.h"

#include "common/error.h"

namespace xpipe {
namespace {

Action Comm(const Action& a, ActionKind kind) {
  Action c;
  c.stage = a.stage;
  c.kind = kind;
  c.mini_batch = a.mini_batch;
  c.micro_batch = a.micro_batch;
  return c;
}

}  // namespace

Schedule LowerCommunication(const Schedule& s) {
  Schedule out = s;
  const int last = s.num_stages - 1;
  for (std::size_t d = 0; d < s.device_actions.size(); ++d) {
    auto& row = out.device_actions[d];
    row.clear();
    row.reserve(s.device_actions[d].size() * 2);
    for (const Action& a : s.device_actions[d]) {
      XPIPE_CHECK(!IsComm(a.kind), "schedule is already lowered");
      if (a.kind == ActionKind::kForward && a.stage > 0) row.push_back(Comm(a, ActionKind::kRecvF));
      if (IsBackwardPass(a.kind) && a.stage < last) row.push_back(Comm(a, ActionKind::kRecvB));
      row.push_back(a);
      if (a.kind == ActionKind::kForward && a.stage < last) row.push_back(Comm(a, ActionKind::kSendF));
      if (IsBackwardPass(a.kind) && a.stage > 0) row.push_back(Comm(a, ActionKind::kSendB));
    }
  }
  return out;
}

Schedule StripCommunication(const Schedule& s) {
  Schedule out = s;
  for (auto& row : out.device_actions) std::erase_if(row, [](const Action& a) { return IsComm(a.kind); });
  return out;
}

}  // namespace xpipe
