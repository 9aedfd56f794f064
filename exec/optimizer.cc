#include "exec/optimizer.h"

#include <torch/torch.h>

#include <cmath>

#include "common/error.h"

namespace xpipe::exec {

LrSchedule ParseLrSchedule(const std::string& name, const std::string& where) {
  if (name == "constant") return LrSchedule::kConstant;
  if (name == "step") return LrSchedule::kStep;
  if (name == "cosine") return LrSchedule::kCosine;
  throw InputError(where, "unknown learning-rate schedule '" + name + "' (expected constant, step, cosine)");
}

double LearningRate(double base, LrSchedule schedule, int64_t step, int64_t total) {
  if (total <= 0) return base;
  const double t = static_cast<double>(step) / static_cast<double>(total);
  switch (schedule) {
    case LrSchedule::kConstant:
      return base;
    case LrSchedule::kStep:
      return base * (t >= 0.75 ? 0.01 : t >= 0.5 ? 0.1 : 1.0);
    case LrSchedule::kCosine:
      return base * 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, t)));
  }
  return base;
}

Optimizer::Optimizer(const OptimizerConfig& config, const std::vector<torch::Tensor>& params) : c_(config) {
  for (const auto& p : params) {
    a_.push_back(torch::zeros_like(p));
    b_.push_back(torch::zeros_like(p));
  }
}

void Optimizer::Step(std::vector<torch::Tensor>& params, const std::vector<torch::Tensor>& grads, double lr) {
  torch::NoGradGuard no_grad;
  ++steps_;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const torch::Tensor& g = grads[i];
    switch (c_.kind) {
      case OptimizerKind::kSgd:
        a_[i].copy_(g);
        params[i].sub_(g, lr);
        break;
      case OptimizerKind::kMomentum:
        a_[i].mul_(c_.momentum).add_(g);
        params[i].sub_(a_[i], lr);
        break;
      case OptimizerKind::kAdam:
      case OptimizerKind::kAdamW: {
        if (c_.kind == OptimizerKind::kAdamW) params[i].mul_(1.0 - lr * c_.weight_decay);
        a_[i].mul_(c_.beta1).add_(g, 1.0 - c_.beta1);
        b_[i].mul_(c_.beta2).addcmul_(g, g, 1.0 - c_.beta2);
        const double bc1 = 1.0 - std::pow(c_.beta1, static_cast<double>(steps_));
        const double bc2 = 1.0 - std::pow(c_.beta2, static_cast<double>(steps_));
        const torch::Tensor denom = (b_[i] / bc2).sqrt_().add_(c_.eps);
        params[i].addcdiv_(a_[i], denom, -lr / bc1);
        break;
      }
    }
  }
}

std::vector<torch::Tensor> Optimizer::Direction(const std::vector<torch::Tensor>& params) const {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> d;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (steps_ == 0) {
      d.push_back(torch::zeros_like(params[i]));
      continue;
    }
    switch (c_.kind) {
      case OptimizerKind::kSgd:
      case OptimizerKind::kMomentum:
        d.push_back(a_[i].clone());
        break;
      case OptimizerKind::kAdam:
      case OptimizerKind::kAdamW: {
        const double bc1 = 1.0 - std::pow(c_.beta1, static_cast<double>(steps_));
        const double bc2 = 1.0 - std::pow(c_.beta2, static_cast<double>(steps_));
        // The same operations as (m / bc1) / (sqrt(v / bc2) + eps), in place
        // where they can be: two new tensors instead of five.
        const torch::Tensor denom = b_[i].div(bc2).sqrt_().add_(c_.eps);
        torch::Tensor di = a_[i].div(bc1).div_(denom);
        if (c_.kind == OptimizerKind::kAdamW) di.add_(params[i], c_.weight_decay);
        d.push_back(di);
        break;
      }
    }
  }
  return d;
}

std::vector<torch::Tensor> Optimizer::State() const {
  std::vector<torch::Tensor> s = {torch::tensor(steps_, torch::kInt64)};
  s.insert(s.end(), a_.begin(), a_.end());
  s.insert(s.end(), b_.begin(), b_.end());
  return s;
}

void Optimizer::LoadState(const std::vector<torch::Tensor>& s) {
  XPIPE_CHECK(s.size() == 1 + a_.size() + b_.size(), "optimizer state of the wrong size");
  steps_ = s[0].item<int64_t>();
  for (std::size_t i = 0; i < a_.size(); ++i) {
    a_[i].copy_(s[1 + i]);
    b_[i].copy_(s[1 + a_.size() + i]);
  }
}

std::vector<torch::Tensor> Predict(const Optimizer& opt, const std::vector<torch::Tensor>& w, double lr,
                                   int horizon) {
  torch::NoGradGuard no_grad;
  const std::vector<torch::Tensor> d = opt.Direction(w);
  std::vector<torch::Tensor> made;
  made.reserve(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) made.push_back(torch::add(w[i], d[i], -lr * horizon));
  return made;
}

double Distance(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  torch::NoGradGuard no_grad;
  double sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += (a[i] - b[i]).pow(2).sum().item<double>();
  return std::sqrt(sum);
}

}  // namespace xpipe::exec
