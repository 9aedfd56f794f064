// Executor: runs a Schedule on real devices with LibTorch.
//
// The schedule is lowered (common/lowering.h) and each rank (one per schedule
// device) interprets its own action list in order: F, B, I, W call the model
// with the weights the annotation names; SEND and RECV post on a Transport
// (receives one compute action ahead, or Transport::ReceivesAhead, so
// transfers overlap compute) and a pass
// waits only for the message it consumes; U steps the optimizer. The same
// interpreter runs every rank as a thread of one process over the in-process
// transport, or one rank per process over c10d (exec/rank.h).
//
// Weights: each pass uses the live version, a stashed or buffered version, or
// a prediction W_v - lr * s * D. Live weights are read in place; an update
// whose replaced version a later pass still reads keeps those tensors and
// updates a copy (copy on write). Kept versions and predictions are shared by
// the passes that use them and dropped after their last use. A backward whose
// weights differ from its forward's does what its weight_switch says:
//   swap:      its forward ran on a private copy of its weights; the
//              backward's weights are copied into it under the saved graph, so
//              the input gradient uses them and the weight gradient the
//              forward's activations (two weight copies, no extra compute);
//   recompute: its forward ran without a graph (only the input is kept); the
//              backward runs the forward again with its own weights first.
//
// Stage state (weights, optimizer, version count) persists across Run()
// calls, so training is a sequence of schedules ("segments") with a drained
// pipeline between them, where checkpoints are taken.
#pragma once

#include <torch/types.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/schedule.h"
#include "common/trace.h"
#include "exec/model.h"
#include "exec/optimizer.h"
#include "exec/transport.h"

namespace xpipe::exec {

// Training fails at run time (NaN loss, a LibTorch error, a lost peer): names
// stage, action and step; lost_rank is the peer whose loss stopped it.
class TrainingError : public std::runtime_error {
 public:
  explicit TrainingError(const std::string& what, std::optional<int> lost_rank = std::nullopt)
      : std::runtime_error(what), lost_rank_(lost_rank) {}
  std::optional<int> lost_rank() const { return lost_rank_; }

 private:
  std::optional<int> lost_rank_;
};

struct ExecConfig {
  std::vector<Model> stages;  // every stage of the model
  // Output shape of one sample of each stage (no batch dimension): receive
  // buffers are sized from it, so no shapes travel with the messages.
  std::vector<std::vector<int64_t>> sample_output_shapes;
  std::vector<torch::Device> devices;  // per stage (only local stages' are used)
  std::vector<int> local_ranks;        // schedule devices (ranks) this process runs; empty = all
  std::vector<int> stage_rank;         // per stage, the rank that holds it (with local_ranks)
  int64_t micro_batch_size = 1;        // samples per training micro-batch
  OptimizerConfig optimizer;
  LrSchedule lr_schedule = LrSchedule::kConstant;
  int64_t total_steps = 0;  // optimizer steps in the whole run, for the lr schedule
  bool record_trace = false;
  // Prediction that checks itself: each stage scales its predicted step
  // W - lr * s * D by a factor c in [0, 1] fitted to its own earlier
  // predictions (PredictionScale); false = c = 1 always (the papers').
  bool adaptive_prediction = false;
  // Measure each prediction's error once its target version exists
  // (SegmentResult::prediction_errors): a copy of W_v kept per prediction and
  // a few passes over the weights at the update, work the simulator does not
  // bill, so `xpipe validate` turns it off. Adaptive prediction needs the
  // measurement and makes it either way.
  bool measure_prediction_errors = true;
};

// The least-squares scale of a stage's predicted steps: for each measured
// prediction, p = W_hat - W_v (the step predicted with c = 1) and r =
// W_target - W_v (the step that happened); c = sum <r, p> / sum <p, p> over
// them, older ones weighing `decay` less per prediction, clamped to [0, 1]:
// a prediction that does not help fades to none.
struct PredictionScale {
  double decay = 0.9;
  double rp = 0, pp = 0;  // discounted sums of <r, p> and <p, p>
  double value() const { return pp > 0 ? std::clamp(rp / pp, 0.0, 1.0) : 1.0; }
  void Add(double r_dot_p, double p_dot_p) {
    rp = decay * rp + r_dot_p;
    pp = decay * pp + p_dot_p;
  }
};

// Input and label of micro-batch j of mini-batch b (b counted from the start
// of training). Called from the threads of the first and last stages; must be
// thread-safe.
using MicroBatchFn = std::function<std::pair<torch::Tensor, torch::Tensor>(int64_t b, int j)>;

// Which weights one pass used: absolute version and horizon (0 = no prediction).
struct PassRecord {
  Action action;
  int64_t version = 0;
  int horizon = 0;
  bool recomputed = false;  // the pass ran its forward a second time
};

// ||W_hat - W_target|| / ||W_v - W_target|| for a prediction W_hat made at
// version v with horizon s, once version v + s exists.
struct PredictionError {
  int stage = 0;
  int64_t version = 0;
  int horizon = 0;
  double ratio = 0;
  double scale = 1;  // the factor the prediction was made with (adaptive prediction)
};

// What this process saw. loss and correct are filled where the last stage is
// local; passes and versions_held for local stages.
struct SegmentResult {
  std::vector<double> loss;                     // per mini-batch: mean of its micro-batch losses
  std::vector<double> correct;                  // per mini-batch: fraction classified right
  std::vector<std::vector<PassRecord>> passes;  // per stage
  std::vector<PredictionError> prediction_errors;
  std::vector<int> versions_held;      // per stage, most weight versions alive at once
  std::vector<int64_t> forwards_run;   // per stage: forward computations, recomputes included
  std::vector<int64_t> weight_copies;  // per stage: weight sets copied or predicted
  // With record_trace: each compute pass's and update's span on its rank's
  // track, from the arrival of its message (waiting is not work) to its end;
  // times from the start of Run.
  Trace trace;
  int64_t origin_ns = 0;  // the start of Run on the steady clock (the same in every process of a machine)
  double seconds = 0;
};

// Evaluation through the pipeline: summed loss and correct count over the
// samples, known where the last stage is local.
struct EvalResult {
  double loss_sum = 0, correct = 0;
};

class Executor {
 public:
  // REQUIRES: params[k] matches stages[k]'s layers for every local stage k
  // (entries of other stages are ignored and may be empty).
  Executor(ExecConfig config, std::vector<std::vector<torch::Tensor>> params);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Runs schedule `s` (its mini-batch b is training mini-batch first + b).
  // `transport`: this process's rank; null = every rank as a thread over the
  // in-process transport. `done` (optional) counts finished mini-batches.
  // REQUIRES: Validate(s).ok, s.num_stages == stages. Throws TrainingError.
  SegmentResult Run(const Schedule& s, const MicroBatchFn& data, int64_t first_mini_batch,
                    Transport* transport = nullptr, std::atomic<int64_t>* done = nullptr);

  // Forward-only pipeline over `chunks` batches: chunk(i) gives images (read
  // on the first stage's rank) and labels (on the last's); sizes(i) its size.
  // `layout`: any schedule of this run (for its stage-to-rank map).
  EvalResult Evaluate(const Schedule& layout, int64_t chunks,
                      const std::function<std::pair<torch::Tensor, torch::Tensor>(int64_t)>& chunk,
                      const std::function<int64_t(int64_t)>& sizes, Transport* transport = nullptr);

  int num_stages() const;
  bool is_local(int k) const;
  // Live weights of local stage k (on its device) and its optimizer; not while Run is active.
  std::vector<torch::Tensor>& params(int k);
  Optimizer& optimizer(int k);
  int64_t version(int k) const;
  void set_version(int k, int64_t v);
  // Local stage k's adaptive-prediction state (checkpointed with its weights).
  PredictionScale& prediction_scale(int k);

 private:
  struct Stage;
  class Interpreter;
  ExecConfig config_;
  std::vector<std::unique_ptr<Stage>> stages_;  // null for stages of other ranks
};

// Makes the C library keep freed host memory for reuse instead of returning
// it to the system (glibc: blocks up to 32 MiB come from the heap, which is
// never trimmed). Otherwise every activation of more than 128 KiB is a fresh
// mapping whose pages fault in zeroed: measured here, a third of a small
// CNN's backward, and unevenly, so profiles and runs disagree. Process-wide;
// the front end calls it once for train, profile and validate.
void RetainHostMemory();

// The output shape of one sample after each stage, from a forward of one
// sample of `input_shape` ({C, H, W}, or {s} token ids) of `dtype` on the CPU.
std::vector<std::vector<int64_t>> SampleOutputShapes(const std::vector<Model>& stages,
                                                     const std::vector<int64_t>& input_shape,
                                                     torch::ScalarType dtype = torch::kFloat32);

}  // namespace xpipe::exec
