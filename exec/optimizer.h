// Optimizers over a stage's weight tensors, written out so that their state
// and the step they would take next (the direction D of weight prediction,
// ../shared/docs/schedules.md) are first-class:
//   SGD:       W -= lr * g                         D = g (last gradient)
//   momentum:  buf = mu*buf + g; W -= lr * buf      D = buf
//   Adam:      m, v moments; W -= lr * m_hat / (sqrt(v_hat) + eps)
//                                                   D = m_hat / (sqrt(v_hat) + eps)
//   AdamW:     Adam plus decoupled decay lambda*W   D = Adam's D + lambda*W (choice)
// One instance per stage, touched by that stage's thread only.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "common/profile.h"

namespace xpipe::exec {

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::kAdam;
  double lr = 1e-3;
  double momentum = 0.9;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.01;  // AdamW only
};

enum class LrSchedule { kConstant, kStep, kCosine };
LrSchedule ParseLrSchedule(const std::string& name, const std::string& where);
// Learning rate at optimizer step `step` of `total`: step decays x0.1 at 50%
// and 75%; cosine anneals to 0.
double LearningRate(double base, LrSchedule schedule, int64_t step, int64_t total);

class Optimizer {
 public:
  Optimizer(const OptimizerConfig& config, const std::vector<torch::Tensor>& params);
  // Applies one step to `params` in place with gradient `grads` at rate lr.
  void Step(std::vector<torch::Tensor>& params, const std::vector<torch::Tensor>& grads, double lr);
  // D for the current state (see above); zeros before the first step.
  std::vector<torch::Tensor> Direction(const std::vector<torch::Tensor>& params) const;
  int64_t steps() const { return steps_; }
  // Flat state for checkpoints, in a fixed order.
  std::vector<torch::Tensor> State() const;
  void LoadState(const std::vector<torch::Tensor>& state);

 private:
  OptimizerConfig c_;
  int64_t steps_ = 0;
  std::vector<torch::Tensor> a_, b_;  // momentum buffer / last gradient, or Adam's m and v
};

// Weight prediction: W_hat = W - lr * horizon * D (../shared/docs/schedules.md).
std::vector<torch::Tensor> Predict(const Optimizer& opt, const std::vector<torch::Tensor>& w, double lr,
                                   int horizon);

// ||a - b|| over a weight set.
double Distance(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b);

}  // namespace xpipe::exec
