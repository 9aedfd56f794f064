// Messages: what one stage's pass hands to another, and the one statement of
// what a compute pass waits on beyond the previous action of its device:
//   F(s, g), s > 0        consumes the activation F(s-1, g) produced;
//   B/I(s, g), s < S-1    consumes the gradient B/I(s+1, g) produced;
//   W and U               consume nothing from other stages.
// DryRun, both simulator engines, the lowering and the executor all read it
// from here.
#pragma once

#include <cstdint>
#include <optional>

#include "common/action.h"

namespace xpipe {

// The output of `producer_stage`'s pass for global micro-batch g, forward
// (an activation, to stage + 1) or backward (a gradient, to stage - 1).
struct Message {
  bool forward = true;
  int producer_stage = 0;
  std::int64_t g = 0;
  bool operator==(const Message&) const = default;
};

inline int ReceiverStage(const Message& m) { return m.forward ? m.producer_stage + 1 : m.producer_stage - 1; }

// The message compute pass `a` must have before it starts, if any.
inline std::optional<Message> Consumes(const Action& a, int num_stages, int micro_batches) {
  if (a.kind == ActionKind::kForward && a.stage > 0)
    return Message{true, a.stage - 1, GlobalMicroBatch(a, micro_batches)};
  if (IsBackwardPass(a.kind) && a.stage < num_stages - 1)
    return Message{false, a.stage + 1, GlobalMicroBatch(a, micro_batches)};
  return std::nullopt;
}

// The message compute pass `a` hands to another stage when it ends, if any.
inline std::optional<Message> Produces(const Action& a, int num_stages, int micro_batches) {
  if (a.kind == ActionKind::kForward && a.stage < num_stages - 1)
    return Message{true, a.stage, GlobalMicroBatch(a, micro_batches)};
  if (IsBackwardPass(a.kind) && a.stage > 0)
    return Message{false, a.stage, GlobalMicroBatch(a, micro_batches)};
  return std::nullopt;
}

// The message a SEND or RECV action carries. REQUIRES: IsComm(a.kind).
Message MessageOf(const Action& a, int micro_batches);

}  // namespace xpipe
