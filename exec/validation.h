// Validation: how far the simulator's prediction is from the executor, in
// three separate steps that share nothing but files' worth of numbers:
//   1. profile: ProfileModel and the runtime measurements (exec/profiler.h)
//      give a Profile and a Cluster, measured on their own (never on the run
//      being predicted);
//   2. predict: the simulator runs each schedule from those alone;
//   3. run: the executor runs each schedule (threads of one process over the
//      in-process transport, or one rank per process over Gloo), timed.
// Both timelines are reduced by one rule: time per mini-batch in steady state
// (common/trace.h, SteadyMiniBatchNs) and each stage's busy time per
// mini-batch (passes and updates, waiting excluded).
#pragma once

#include <string>
#include <vector>

#include "common/cluster.h"
#include "common/profile.h"
#include "common/schedule.h"
#include "common/trace.h"
#include "exec/optimizer.h"
#include "exec/profiler.h"
#include "exec/rank.h"

namespace xpipe::exec {

struct ValidationSetup {
  std::string model = "cnn";
  std::vector<int64_t> input_shape = {1, 28, 28};  // Fashion-MNIST's; data are synthetic
  int64_t classes = 10;
  int stages = 2;
  int micro_batches = 4;
  int64_t micro_batch_size = 32;
  int mini_batches = 16;  // per measured run (and per prediction)
  int runs = 7;           // rounds of profile-then-run per schedule: the median round is reported
  OptimizerConfig optimizer;
  WeightSwitch backward_weights = WeightSwitch::kSwap;
  uint64_t seed = 1;
  ProfileOptions profiling;
};

// Step 1. Every rank calls it (rank = null: one process); rank 0 gets the
// profile (with the executor's partition) and the cluster, the others empty
// ones. The link is measured between ranks 0 and 1 (threads in one process,
// processes over Gloo) and stands for every link.
struct RuntimeProfile {
  Profile profile;
  Cluster cluster;
  LinkFit link;
  LinkFit receive;           // the receiver's cost (MeasureReceiveCost)
  TimeNs delivery_ns = 0;    // one boundary message while its sender computes (MeasureDelivery)
  TimeNs send_ns = 0;        // that message's send call
  Bytes delivery_bytes = 0;  // that message's size
};
RuntimeProfile ProfileRuntime(const ValidationSetup& setup, Rank* rank);

struct StageFigures {
  TimeNs predicted_busy_ns = 0, measured_busy_ns = 0;  // per mini-batch
};
struct ScheduleValidation {
  Schedule schedule;
  // Per mini-batch in steady state, of the round whose error (its prediction
  // against its own run) is the median of the rounds'.
  TimeNs predicted_ns = 0, measured_ns = 0;
  std::vector<TimeNs> round_predicted_ns, round_measured_ns;  // each round's
  std::vector<StageFigures> stages;                           // medians over the rounds
  Trace predicted, measured;  // that round's; measured spans on the devices' tracks
  double error_pct() const {
    return measured_ns > 0
               ? 100.0 * static_cast<double>(predicted_ns - measured_ns) / static_cast<double>(measured_ns)
               : 0;
  }
};

// Steps 2 and 3 for one schedule kind. Every rank calls it; rank 0 gets the
// figures. `profile` is rank 0's result of ProfileRuntime (or files).
ScheduleValidation ValidateSchedule(const ValidationSetup& setup, const RuntimeProfile& profile,
                                    ScheduleKind kind, Rank* rank);

}  // namespace xpipe::exec
