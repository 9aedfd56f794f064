#include "common/action.h"

#include <array>
#include <charconv>

#include "common/error.h"

namespace xpipe {
namespace {

struct KindText {
  ActionKind kind;
  std::string_view text;
};
// Longer names first so that prefix matching picks SEND_F before F.
constexpr std::array<KindText, 9> kKinds = {{
    {ActionKind::kSendF, "SEND_F"},
    {ActionKind::kRecvF, "RECV_F"},
    {ActionKind::kSendB, "SEND_B"},
    {ActionKind::kRecvB, "RECV_B"},
    {ActionKind::kForward, "F"},
    {ActionKind::kBackward, "B"},
    {ActionKind::kBackwardInput, "I"},
    {ActionKind::kBackwardWeight, "W"},
    {ActionKind::kUpdate, "U"},
}};

constexpr std::array<std::string_view, 5> kSources = {"current", "stashed", "older_buffer", "newer_buffer",
                                                      "predicted"};

bool ParseInt(std::string_view s, std::int64_t& out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && out >= 0;
}

}  // namespace

std::string_view KindName(ActionKind kind) {
  for (const auto& k : kKinds)
    if (k.kind == kind) return k.text;
  return "?";
}

std::string_view WeightSourceName(WeightSource source) { return kSources[static_cast<std::size_t>(source)]; }

WeightSource ParseWeightSource(std::string_view name, const std::string& where) {
  for (std::size_t i = 0; i < kSources.size(); ++i)
    if (kSources[i] == name) return static_cast<WeightSource>(i);
  throw InputError(where, "unknown weight source '" + std::string(name) +
                              "' (expected current, stashed, older_buffer, newer_buffer, predicted)");
}

std::string_view WeightSwitchName(WeightSwitch w) {
  switch (w) {
    case WeightSwitch::kNone:
      return "none";
    case WeightSwitch::kSwap:
      return "swap";
    case WeightSwitch::kRecompute:
      return "recompute";
  }
  return "none";
}

WeightSwitch ParseWeightSwitch(std::string_view name, const std::string& where) {
  for (WeightSwitch w : {WeightSwitch::kNone, WeightSwitch::kSwap, WeightSwitch::kRecompute})
    if (WeightSwitchName(w) == name) return w;
  throw InputError(where, "unknown weight switch '" + std::string(name) + "' (expected swap or recompute)");
}

std::string ToText(const Action& a, int micro_batches) {
  std::string s = std::to_string(a.stage);
  s += KindName(a.kind);
  if (a.kind == ActionKind::kUpdate)
    s += std::to_string(a.mini_batch);
  else
    s += std::to_string(GlobalMicroBatch(a, micro_batches));
  return s;
}

Action ParseAction(std::string_view text, int micro_batches, const std::string& where) {
  XPIPE_CHECK(micro_batches >= 1, "micro_batches must be positive");
  const auto bad = [&](const std::string& why) {
    return InputError(where, "bad action '" + std::string(text) + "': " + why);
  };
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  std::int64_t stage = 0;
  if (!ParseInt(text.substr(0, i), stage)) throw bad("expected a stage number first");
  const std::string_view rest = text.substr(i);
  for (const auto& k : kKinds) {
    if (rest.substr(0, k.text.size()) != k.text) continue;
    std::int64_t index = 0;
    if (!ParseInt(rest.substr(k.text.size()), index))
      throw bad("expected a micro-batch number after " + std::string(k.text));
    if (stage > INT32_MAX || index / micro_batches > INT32_MAX) throw bad("number out of range");
    Action a;
    a.stage = static_cast<std::int32_t>(stage);
    a.kind = k.kind;
    if (k.kind == ActionKind::kUpdate) {
      a.mini_batch = static_cast<std::int32_t>(index);
    } else {
      a.mini_batch = static_cast<std::int32_t>(index / micro_batches);
      a.micro_batch = static_cast<std::int32_t>(index % micro_batches);
    }
    return a;
  }
  throw bad("unknown kind (expected F, B, I, W, U, SEND_F, RECV_F, SEND_B, RECV_B)");
}

}  // namespace xpipe
