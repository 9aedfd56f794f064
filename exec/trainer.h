// Trainer: epochs of pipeline-parallel training with the Executor.
//
// Each epoch is cut into segments of `checkpoint_every` mini-batches (the
// whole epoch by default); a segment is one complete schedule, so the
// pipeline is drained between segments, and that is where checkpoints are
// written (weights, optimizer state, versions and the position in training,
// atomically). Stashed or buffered versions are empty at a drained point, so
// nothing else needs saving, and resuming continues bit for bit.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/profile.h"
#include "common/schedule.h"
#include "exec/executor.h"
#include "exec/rank.h"

namespace xpipe::exec {

struct TrainConfig {
  std::string model = "cnn";
  std::string data = "fashion-mnist";  // or "synthetic", or "text:FILE" (with model gpt)
  GptOptions gpt;                      // model gpt
  int64_t seq_len = 64;                // text: tokens per sample
  ScheduleKind schedule = ScheduleKind::kXPipe;
  // A schedule read from a file and annotated (common/schedule_file.h): run,
  // back to back, instead of generating one; stages, T and mini-batches per
  // run are its own, and `schedule_name` names it in logs and checkpoints.
  std::optional<Schedule> given;
  std::string schedule_name;
  PredictionTarget target = PredictionTarget::kRoundTrip;
  // XPipe: what the passes after a mini-batch's bellwether predict from.
  PredictionBase prediction_base = PredictionBase::kLive;
  WeightSwitch backward_weights = WeightSwitch::kSwap;
  // Predicting schedules scale each stage's predicted step by a factor fitted
  // to its own past predictions (ExecConfig::adaptive_prediction).
  bool adaptive_prediction = true;
  int stages = 4;
  int micro_batches = 4;
  int chunks = 1;
  int batch_size = 64;  // samples per mini-batch
  int epochs = 1;
  int64_t max_steps = 0;  // mini-batches per epoch; 0 = the whole training set
  int64_t synthetic_samples = 4096;
  std::vector<int> partition;   // layers per stage; empty = partition_mode decides
  bool even_partition = false;  // split by layer count instead of balancing counted cost
  std::string profile_out;      // write the model's measured profile (JSON) here
  OptimizerConfig optimizer;
  LrSchedule lr_schedule = LrSchedule::kConstant;
  uint64_t seed = 1;
  std::string device = "cpu";  // cpu, or cuda (stages spread over the visible GPUs)
  // One process per rank (set from the torchrun environment), else every
  // stage as a thread of this process.
  std::optional<LaunchEnv> launch;
  std::string transport = "auto";  // auto (nccl with cuda, else gloo), gloo, nccl
  int comm_timeout_s = 300;        // a receive waits this long for a live but silent peer
  std::string checkpoint;          // file; empty = none
  int64_t checkpoint_every = 0;
  bool resume = false;
  std::string log;           // JSONL of every metric; empty = none
  std::string trace;         // Chrome trace of the first segment; empty = none
  std::string save_weights;  // final weights: a JSON header line, then raw float32; empty = none
  bool evaluate = true;      // test-set accuracy after each epoch
  bool progress = false;     // a progress line on stderr
  std::function<void(const struct EpochStats&)> on_epoch;  // called after each epoch
};

struct EpochStats {
  int epoch = 0;
  double train_loss = 0, train_accuracy = 0;
  double test_loss = 0, test_accuracy = 0;
  double seconds = 0, samples_per_sec = 0;
  double prediction_error = 0;                 // mean ||W_hat - W_target|| / ||W_v - W_target||; 0 if none
  std::vector<double> stage_prediction_error;  // the same per stage
  std::vector<double> stage_prediction_scale;  // per stage, the mean factor predictions were made with
  int64_t recomputed_passes = 0;
  int64_t forwards_run = 0;   // forward computations, recomputes included
  int64_t weight_copies = 0;  // weight sets copied or predicted
};

// Throws InputError for bad settings, TrainingError when training fails
// (CommError is turned into a TrainingError naming the lost rank). In a
// distributed run every rank calls it; rank 0 gets the statistics, logs and
// files, the others an empty result.
std::vector<EpochStats> Train(const TrainConfig& config);

}  // namespace xpipe::exec
