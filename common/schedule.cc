#include "common/schedule.h"

#include <array>

#include "common/error.h"

namespace xpipe {
namespace {

using T = MicroBatchRule;
constexpr std::array<ScheduleTraits, 11> kInfo = {{
    // kind, name, asynchronous, policy, bellwether, micro-batches
    {ScheduleKind::kGPipe, "gpipe", false, WeightPolicy::kSynchronous, false, T::kAny},
    {ScheduleKind::kOneFOneBFlush, "1f1b-flush", false, WeightPolicy::kSynchronous, false, T::kAny},
    {ScheduleKind::kInterleaved1F1B, "interleaved-1f1b", false, WeightPolicy::kSynchronous, false,
     T::kMultipleOfN},
    {ScheduleKind::kZeroBubbleH1, "zb-h1", false, WeightPolicy::kSynchronous, false, T::kAny},
    {ScheduleKind::kStale, "stale", true, WeightPolicy::kStale, false, T::kAny},
    {ScheduleKind::kPipeDream, "pipedream", true, WeightPolicy::kStashing, false, T::kOne},
    {ScheduleKind::kPipeDream2BW, "pipedream-2bw", true, WeightPolicy::kDoubleBuffer, false,
     T::kAtLeastNMinus1},
    {ScheduleKind::kSpecTrain, "spectrain", true, WeightPolicy::kPredictRoundTrip, false, T::kOne},
    {ScheduleKind::kPipeOptim, "pipeoptim", true, WeightPolicy::kPredictOwnBackward, false, T::kAny},
    {ScheduleKind::kXPipe, "xpipe", true, WeightPolicy::kPredictRoundTrip, true, T::kAny},
    {ScheduleKind::kCustom, "custom", false, WeightPolicy::kSynchronous, false, T::kAny},
}};

const ScheduleTraits& Info(ScheduleKind kind) {
  for (const auto& i : kInfo)
    if (i.kind == kind) return i;
  XPIPE_CHECK(false, "unknown schedule kind");
}

constexpr std::array<std::string_view, 4> kTargets = {"round-trip", "closed-form", "synchronous",
                                                      "own-backward"};

}  // namespace

const ScheduleTraits& TraitsOf(ScheduleKind kind) { return Info(kind); }
std::string_view ScheduleName(ScheduleKind kind) { return Info(kind).name; }
bool IsAsynchronous(ScheduleKind kind) { return Info(kind).asynchronous; }
WeightPolicy PolicyOf(ScheduleKind kind) { return Info(kind).policy; }

ScheduleKind ParseScheduleKind(std::string_view name, const std::string& where) {
  for (const auto& i : kInfo)
    if (i.name == name && i.kind != ScheduleKind::kCustom) return i.kind;
  throw InputError(where,
                   "unknown schedule '" + std::string(name) + "' (expected one of " + ScheduleNames() + ")");
}

std::string ScheduleNames() {
  std::string out;
  for (const auto& i : kInfo) {
    if (i.kind == ScheduleKind::kCustom) continue;
    if (!out.empty()) out += ", ";
    out += i.name;
  }
  return out;
}

PredictionTarget ParsePredictionTarget(std::string_view name, const std::string& where) {
  for (std::size_t i = 0; i < kTargets.size(); ++i)
    if (kTargets[i] == name) return static_cast<PredictionTarget>(i);
  throw InputError(where, "unknown prediction target '" + std::string(name) +
                              "' (expected round-trip, closed-form, synchronous, own-backward)");
}

PredictionBase ParsePredictionBase(std::string_view name, const std::string& where) {
  if (name == "live") return PredictionBase::kLive;
  if (name == "bellwether") return PredictionBase::kBellwether;
  throw InputError(where, "unknown prediction base '" + std::string(name) + "' (expected live, bellwether)");
}

std::string_view PredictionBaseName(PredictionBase base) {
  return base == PredictionBase::kLive ? "live" : "bellwether";
}

std::int64_t Schedule::NumActions() const {
  std::int64_t n = 0;
  for (const auto& row : device_actions) n += static_cast<std::int64_t>(row.size());
  return n;
}

}  // namespace xpipe
