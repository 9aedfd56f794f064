#include "common/schedule.h"

#include <array>

#include "common/error.h"

namespace xpipe {
namespace {

struct KindInfo {
  ScheduleKind kind;
  std::string_view name;
  bool asynchronous;
  WeightPolicy policy;
};
constexpr std::array<KindInfo, 11> kInfo = {{
    {ScheduleKind::kGPipe, "gpipe", false, WeightPolicy::kSynchronous},
    {ScheduleKind::kOneFOneBFlush, "1f1b-flush", false, WeightPolicy::kSynchronous},
    {ScheduleKind::kInterleaved1F1B, "interleaved-1f1b", false, WeightPolicy::kSynchronous},
    {ScheduleKind::kZeroBubbleH1, "zb-h1", false, WeightPolicy::kSynchronous},
    {ScheduleKind::kStale, "stale", true, WeightPolicy::kStale},
    {ScheduleKind::kPipeDream, "pipedream", true, WeightPolicy::kStashing},
    {ScheduleKind::kPipeDream2BW, "pipedream-2bw", true, WeightPolicy::kDoubleBuffer},
    {ScheduleKind::kSpecTrain, "spectrain", true, WeightPolicy::kPredictRoundTrip},
    {ScheduleKind::kPipeOptim, "pipeoptim", true, WeightPolicy::kPredictOwnBackward},
    {ScheduleKind::kXPipe, "xpipe", true, WeightPolicy::kPredictRoundTrip},
    {ScheduleKind::kCustom, "custom", false, WeightPolicy::kSynchronous},
}};

const KindInfo& Info(ScheduleKind kind) {
  for (const auto& i : kInfo)
    if (i.kind == kind) return i;
  XPIPE_CHECK(false, "unknown schedule kind");
}

constexpr std::array<std::string_view, 4> kTargets = {"round-trip", "closed-form", "synchronous",
                                                      "own-backward"};

}  // namespace

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

std::int64_t Schedule::NumActions() const {
  std::int64_t n = 0;
  for (const auto& row : device_actions) n += static_cast<std::int64_t>(row.size());
  return n;
}

}  // namespace xpipe
