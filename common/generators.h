// Schedule generators: pure functions from parameters to a Schedule.
//
// The orders follow ../shared/docs/schedules.md exactly. Generate() produces
// only the action order; AnnotateWeights() (common/versioning.h) fills in the
// weight source, version and horizon of every pass. MakeSchedule() does both.
#pragma once

#include "common/schedule.h"

namespace xpipe {

struct ScheduleParams {
  ScheduleKind kind = ScheduleKind::kGPipe;
  int devices = 1;        // N: pipeline devices (= stages unless interleaved)
  int micro_batches = 1;  // T: micro-batches per mini-batch
  int mini_batches = 1;   // number of mini-batches (optimizer steps)
  int chunks = 1;         // V: model chunks per device, interleaved 1F1B only
  PredictionTarget target = PredictionTarget::kRoundTrip;  // predicting schedules only
  PredictionBase prediction_base = PredictionBase::kLive;  // XPipe only
  // How a backward whose weights differ from its forward's gets them.
  WeightSwitch backward_weights = WeightSwitch::kSwap;
  // GPipe only: backwards in reverse micro-batch order T-1..0 (the spec's,
  // GPipe's paper) or in forward order 0..T-1 (PyTorch's ScheduleGPipe).
  bool gpipe_backward_forward_order = false;
};

// Throws InputError (naming the parameter) when the schedule cannot be built
// with these parameters, e.g. interleaved 1F1B with T % N != 0.
Schedule Generate(const ScheduleParams& params);

// Generate() followed by AnnotateWeights(schedule, params.target,
// params.backward_weights, params.prediction_base).
Schedule MakeSchedule(const ScheduleParams& params);

}  // namespace xpipe
