// Schedule: the one description of a pipeline schedule that both the simulator
// (sim/) and the executor (exec/) run.
//
// A schedule is plain data: one ordered action list per device. For plain
// pipelines stage k lives on device k; for interleaved 1F1B device d holds
// stages d, d + D, d + 2D, ... (stage_device says which). Generators
// (common/generators.h) only produce this data; passes (versioning, lowering,
// validation) are pure functions over it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/action.h"

namespace xpipe {

enum class ScheduleKind {
  kGPipe,
  kOneFOneBFlush,
  kInterleaved1F1B,
  kZeroBubbleH1,
  kStale,
  kPipeDream,
  kPipeDream2BW,
  kSpecTrain,
  kPipeOptim,
  kXPipe,
  kCustom,  // read from a file; no generator
};

// How passes choose their weights (../shared/docs/schedules.md, table of
// asynchronous schedules).
enum class WeightPolicy {
  kSynchronous,         // flush after each mini-batch: one version, staleness 0
  kStale,               // current weights for every pass
  kStashing,            // PipeDream: backward uses its forward's version
  kDoubleBuffer,        // PipeDream-2BW
  kPredictRoundTrip,    // SpecTrain (per micro-batch) and XPipe (per mini-batch)
  kPredictOwnBackward,  // PipeOptim: forward predicts its own backward's version
};

// Which version a prediction aims at (schedules.md, "Horizon s").
enum class PredictionTarget {
  kRoundTrip,            // exact count on the unit-step grid (default)
  kRoundTripClosedForm,  // XPipe paper's closed form
  kSynchronous,          // s = b - v_k
  kOwnBackward,          // updates between a forward and its own backward
};

// What the passes of a mini-batch other than its first (the bellwether)
// predict from, in a schedule with one target per mini-batch (XPipe).
enum class PredictionBase {
  // From the live weights, toward the bellwether's target: fewer steps ahead
  // once updates have come in since, the target itself once it exists
  // (default; each new (version, horizon) is a new prediction).
  kLive,
  // The bellwether's prediction itself, made once per mini-batch and
  // direction from the weights live at the bellwether (XPipe's paper).
  kBellwether,
};

// Which micro-batch counts T a schedule is defined for (N devices).
enum class MicroBatchRule {
  kAny,
  kOne,             // PipeDream, SpecTrain: one micro-batch per mini-batch
  kAtLeastNMinus1,  // PipeDream-2BW: two buffers suffice only with T >= N-1
  kMultipleOfN,     // interleaved 1F1B: T % N == 0
};

// A schedule's behaviour as data: adding a schedule is one generator plus one
// of these records (common/schedule.cc), read by generators, versioning and
// reports instead of checks on the kind.
struct ScheduleTraits {
  ScheduleKind kind;
  std::string_view name;
  bool asynchronous;  // no flush: mini-batches overlap
  WeightPolicy policy;
  // One prediction per mini-batch and direction on each stage, made by the
  // first micro-batch (the bellwether) and reused by the others (XPipe).
  bool bellwether;
  MicroBatchRule micro_batches;
};
const ScheduleTraits& TraitsOf(ScheduleKind kind);

std::string_view ScheduleName(ScheduleKind kind);
// Throws InputError naming `where` for an unknown name.
ScheduleKind ParseScheduleKind(std::string_view name, const std::string& where);
// All names ParseScheduleKind accepts, comma separated (for --help).
std::string ScheduleNames();
bool IsAsynchronous(ScheduleKind kind);
WeightPolicy PolicyOf(ScheduleKind kind);
PredictionTarget ParsePredictionTarget(std::string_view name, const std::string& where);
PredictionBase ParsePredictionBase(std::string_view name, const std::string& where);
std::string_view PredictionBaseName(PredictionBase base);

struct Schedule {
  ScheduleKind kind = ScheduleKind::kCustom;
  int num_devices = 0;
  int num_stages = 0;
  int micro_batches = 1;                            // T
  int mini_batches = 1;                             // number of optimizer steps in the schedule
  std::vector<int> stage_device;                    // size num_stages
  std::vector<std::vector<Action>> device_actions;  // size num_devices, in run order

  std::int64_t NumActions() const;
  bool operator==(const Schedule&) const = default;
};

}  // namespace xpipe
