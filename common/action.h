// Action: one entry of a pipeline schedule (cf. torch.distributed.pipelining's
// _Action). A plain value: which stage, what kind of work, which micro-batch of
// which mini-batch, and which weights a pass must use.
//
// Weight fields are filled by the versioning pass (common/versioning.h) and
// read by the executor; generators leave them at their defaults.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace xpipe {

enum class ActionKind : std::uint8_t {
  kForward,         // F
  kBackward,        // B: full backward (input and weight gradients)
  kBackwardInput,   // I: input gradient only (zero-bubble split)
  kBackwardWeight,  // W: weight gradient only (zero-bubble split)
  kUpdate,          // U: optimizer step for a whole mini-batch
  kSendF,           // SEND_F: send forward activation to stage + 1
  kRecvF,           // RECV_F: receive forward activation from stage - 1
  kSendB,           // SEND_B: send input gradient to stage - 1
  kRecvB,           // RECV_B: receive output gradient from stage + 1
};

// Which weights a compute pass starts from.
enum class WeightSource : std::uint8_t {
  kCurrent,      // W_v, the stage's live weights
  kStashed,      // the version its own forward used (PipeDream weight stashing)
  kOlderBuffer,  // PipeDream-2BW: the older of two buffers
  kNewerBuffer,  // PipeDream-2BW: the newer of two buffers
  kPredicted,    // W_v - lr * horizon * D (XPipe, SpecTrain, PipeOptim)
};

// How a backward pass whose weights differ from its forward's gets them
// (../shared/docs/schedules.md, "Running a backward whose weights differ from
// its forward's"). The versioning pass sets it on the forward and on its
// backward pass(es) alike, so each side knows what to keep and what to do.
enum class WeightSwitch : std::uint8_t {
  kNone,       // the backward uses its forward's weights: back-propagate the saved graph
  kSwap,       // load the backward's weights under the activations the forward saved
  kRecompute,  // run the forward again with the backward's weights, then back-propagate
};

// Fields are ordered for a 24-byte layout: millions of actions are common.
struct Action {
  std::int32_t stage = 0;
  std::int32_t mini_batch = 0;
  std::int32_t micro_batch = 0;  // index within the mini-batch; 0 for U
  // The weight version the pass starts from: the version a stashed or buffered
  // pass reads, or the live version v_k a current or predicted pass reads.
  std::int32_t version = 0;
  // Prediction horizon s (number of optimizer steps to look ahead); 0 unless
  // weights == kPredicted.
  std::int32_t horizon = 0;
  ActionKind kind = ActionKind::kForward;
  WeightSource weights = WeightSource::kCurrent;
  // XPipe: this pass reuses the weights its mini-batch's first micro-batch
  // (the bellwether) predicted for the same direction, instead of predicting.
  bool reuse_prediction = false;
  WeightSwitch weight_switch = WeightSwitch::kNone;

  bool operator==(const Action&) const = default;
};
static_assert(sizeof(Action) == 24, "Action should stay compact");

// F, B, I, W.
inline bool IsCompute(ActionKind kind) {
  return kind == ActionKind::kForward || kind == ActionKind::kBackward ||
         kind == ActionKind::kBackwardInput || kind == ActionKind::kBackwardWeight;
}
// B or I: the pass that sends a gradient upstream.
inline bool IsBackwardPass(ActionKind kind) {
  return kind == ActionKind::kBackward || kind == ActionKind::kBackwardInput;
}
// SEND_F, RECV_F, SEND_B, RECV_B.
inline bool IsComm(ActionKind kind) {
  return kind == ActionKind::kSendF || kind == ActionKind::kRecvF || kind == ActionKind::kSendB ||
         kind == ActionKind::kRecvB;
}

// For SEND/RECV: the stage at the other end (a send goes to the next stage
// forward and the previous one backward; a receive comes from there).
inline int PeerStage(const Action& a) {
  const bool forward = a.kind == ActionKind::kSendF || a.kind == ActionKind::kRecvF;
  const bool send = a.kind == ActionKind::kSendF || a.kind == ActionKind::kSendB;
  return a.stage + (forward == send ? 1 : -1);
}

// Global micro-batch index g = b * T + j used by the text form.
inline std::int64_t GlobalMicroBatch(const Action& a, int micro_batches) {
  return static_cast<std::int64_t>(a.mini_batch) * micro_batches + a.micro_batch;
}

std::string_view KindName(ActionKind kind);  // "F", "B", "SEND_F", ...
std::string_view WeightSourceName(WeightSource source);
WeightSource ParseWeightSource(std::string_view name, const std::string& where);
std::string_view WeightSwitchName(WeightSwitch w);  // "none", "swap", "recompute"
WeightSwitch ParseWeightSwitch(std::string_view name, const std::string& where);

// PyTorch pipelining text form: "<stage><KIND><global micro-batch>", e.g. "0F3",
// "2SEND_B1". U is an xpipe extension: "<stage>U<mini-batch>".
std::string ToText(const Action& a, int micro_batches);
// Parses the text form. `where` names the file/field for error messages.
// REQUIRES: micro_batches >= 1. Throws InputError.
Action ParseAction(std::string_view text, int micro_batches, const std::string& where);

}  // namespace xpipe
