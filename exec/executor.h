// Executor: runs a Schedule on real devices with LibTorch.
//
// One worker thread per schedule device runs that device's action list in
// order: the same IR the simulator runs, no second copy of the schedule
// logic. Activations and gradients move between stages through bounded
// channels. Each pass uses the weights its annotation names (common/
// versioning.h): the live version, a stashed or buffered version, or a
// predicted one W_v - lr * s * D from the stage's optimizer. Weight sets are
// immutable snapshots shared by the passes that use them and dropped after
// their last use; a backward whose weights differ from its forward's
// recomputes the forward with them first.
//
// Stage state (weights, optimizer, version count) persists across Run()
// calls, so training is a sequence of schedules ("segments") with a drained
// pipeline between them, where checkpoints are taken.
#pragma once

#include <torch/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/schedule.h"
#include "common/trace.h"
#include "exec/model.h"
#include "exec/optimizer.h"

namespace xpipe::exec {

// Training fails at run time (NaN loss, a LibTorch error): names stage,
// action and step.
class TrainingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ExecConfig {
  std::vector<Model> stages;
  std::vector<torch::Device> devices;  // per stage
  OptimizerConfig optimizer;
  LrSchedule lr_schedule = LrSchedule::kConstant;
  int64_t total_steps = 0;  // optimizer steps in the whole run, for the lr schedule
  bool record_trace = false;
};

// Input and label of micro-batch j of mini-batch b (b counted from the start
// of training). Called from stage threads; must be thread-safe.
using MicroBatchFn = std::function<std::pair<torch::Tensor, torch::Tensor>(int64_t b, int j)>;

// Which weights one pass used: absolute version and horizon (0 = no prediction).
struct PassRecord {
  Action action;
  int64_t version = 0;
  int horizon = 0;
  bool recomputed = false;  // backward re-ran the forward with its own weights
};

// ||W_hat - W_target|| / ||W_v - W_target|| for a prediction W_hat made at
// version v with horizon s, once version v + s exists.
struct PredictionError {
  int stage = 0;
  int64_t version = 0;
  int horizon = 0;
  double ratio = 0;
};

struct SegmentResult {
  std::vector<double> loss;                     // per mini-batch: mean of its micro-batch losses
  std::vector<double> correct;                  // per mini-batch: fraction classified right
  std::vector<std::vector<PassRecord>> passes;  // per stage
  std::vector<PredictionError> prediction_errors;
  std::vector<int> versions_held;  // per stage, most weight versions alive at once
  Trace trace;                     // with record_trace: real start/end of every action
  double seconds = 0;
};

class Executor {
 public:
  // REQUIRES: params[k] matches stages[k]'s layers.
  Executor(ExecConfig config, std::vector<std::vector<torch::Tensor>> params);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Runs schedule `s` (its mini-batch b is training mini-batch first + b).
  // `done` (optional) counts finished mini-batches for progress reports.
  // REQUIRES: Validate(s).ok, s.num_stages == stages. Throws TrainingError.
  SegmentResult Run(const Schedule& s, const MicroBatchFn& data, int64_t first_mini_batch,
                    std::atomic<int64_t>* done = nullptr);

  int num_stages() const;
  // Live weights of stage k (on its device) and its optimizer; not while Run is active.
  std::vector<torch::Tensor>& params(int k);
  Optimizer& optimizer(int k);
  int64_t version(int k) const;
  void set_version(int k, int64_t v);
  // Forward through all stages with the live weights (evaluation).
  torch::Tensor Predict(const torch::Tensor& x);

 private:
  struct Stage;
  ExecConfig config_;
  std::vector<std::unique_ptr<Stage>> stages_;
};

}  // namespace xpipe::exec
