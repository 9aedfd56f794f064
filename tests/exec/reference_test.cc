// The asynchronous weight policies against an independent sequential
// reference, written without the executor's classes: one thread, mini-batch
// by mini-batch; every pass takes the weights its annotation names from a
// history of every version (a prediction W_v - lr * s * D from the optimizer
// state right after update v), runs forward and backward layer by layer, and
// the updates are applied in order. A swapping backward is computed layer by
// layer: each layer's input is the forward's activation, its weights are the
// backward's (for single-op layers that is the same mixed gradient); a
// recomputing backward runs the stage forward again with its own weights.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>

#include "common/generators.h"
#include "exec/data.h"
#include "exec/executor.h"

namespace xpipe::exec {
namespace {

constexpr int kBatch = 32;
using Weights = std::vector<torch::Tensor>;

struct Problem {
  Dataset data = Synthetic(kBatch * 12, {1, 8, 8}, 10, 3, 12345);
  Model model = MakeModel("mlp", {1, 8, 8}, 10);
};

OptimizerConfig Opt(OptimizerKind kind) {
  OptimizerConfig c;
  c.kind = kind;
  c.lr = kind == OptimizerKind::kSgd || kind == OptimizerKind::kMomentum ? 0.05 : 2e-3;
  return c;
}

// One stage's parameters split per layer.
std::vector<Weights> PerLayer(const Model& stage, const Weights& w) {
  std::vector<Weights> out;
  std::size_t at = 0;
  for (const auto& layer : stage) {
    out.emplace_back(w.begin() + at, w.begin() + at + layer->NumParams());
    at += layer->NumParams();
  }
  return out;
}

Weights Leaf(const Weights& w) {
  Weights out;
  for (const auto& t : w) out.push_back(t.detach().clone().requires_grad_(true));
  return out;
}

// Gradient of `upstream` through stage `stage` at input x: (input grad, weight grads).
std::pair<torch::Tensor, Weights> StageBackward(const Model& stage, const torch::Tensor& x, const Weights& wf,
                                                const Weights& wb, WeightSwitch sw, const torch::Tensor& y,
                                                const torch::Tensor& upstream) {
  const bool last = y.defined();
  if (sw != WeightSwitch::kSwap) {  // none (wf == wb) or recompute: the exact gradient at wb
    const torch::Tensor xi = x.detach().requires_grad_(true);
    const Weights leaves = Leaf(wb);
    torch::Tensor out = ForwardStage(stage, xi, leaves);
    if (last) out = torch::cross_entropy_loss(out, y);
    std::vector<torch::Tensor> inputs = {xi};
    inputs.insert(inputs.end(), leaves.begin(), leaves.end());
    auto g = torch::autograd::grad({out}, inputs, {upstream}, false, false, true);
    return {g[0], Weights(g.begin() + 1, g.end())};
  }
  // Swap: layer inputs from the forward's weights, each layer's gradient at wb.
  const auto lf = PerLayer(stage, wf), lb = PerLayer(stage, wb);
  std::vector<torch::Tensor> acts = {x.detach()};
  {
    torch::NoGradGuard no_grad;
    for (std::size_t l = 0; l < stage.size(); ++l) acts.push_back(stage[l]->Forward(acts.back(), lf[l]));
  }
  torch::Tensor g = upstream;
  std::vector<Weights> grads(stage.size());
  for (std::size_t l = stage.size(); l-- > 0;) {
    const torch::Tensor a = acts[l].clone().requires_grad_(true);
    const Weights leaves = Leaf(lb[l]);
    torch::Tensor out = stage[l]->Forward(a, leaves);
    if (last && l + 1 == stage.size()) out = torch::cross_entropy_loss(out, y);
    std::vector<torch::Tensor> inputs = {a};
    inputs.insert(inputs.end(), leaves.begin(), leaves.end());
    auto gs = torch::autograd::grad({out}, inputs, {g}, false, false, true);
    g = gs[0];
    grads[l].assign(gs.begin() + 1, gs.end());
  }
  Weights flat;
  for (auto& gl : grads) flat.insert(flat.end(), gl.begin(), gl.end());
  return {g, flat};
}

// The reference: final weights of every stage, flattened in stage order.
Weights Reference(const Problem& su, const Schedule& s, const OptimizerConfig& oc) {
  const int S = s.num_stages, T = s.micro_batches, M = s.mini_batches;
  const std::vector<Model> stages = Partition(su.model, S, {});
  std::vector<std::vector<Weights>> history(S);    // [stage][version]
  std::vector<std::vector<Weights>> direction(S);  // [stage][version]: D right after update v
  std::vector<Optimizer> opt;
  const auto init = InitStages(stages, 1);
  for (int k = 0; k < S; ++k) {
    history[k].push_back(init[k]);
    opt.emplace_back(oc, init[k]);
    direction[k].push_back(opt[k].Direction(init[k]));
  }
  // Each pass's annotation, and the order each stage runs its backwards in.
  std::map<std::tuple<ActionKind, int, int, int>, Action> pass;
  std::map<std::pair<int, int>, std::vector<int>> backward_order;  // (stage, b) -> j in run order
  for (const auto& row : s.device_actions)
    for (const Action& a : row) {
      if (!IsCompute(a.kind)) continue;
      pass[{a.kind, a.stage, a.mini_batch, a.micro_batch}] = a;
      if (IsBackwardPass(a.kind)) backward_order[{a.stage, a.mini_batch}].push_back(a.micro_batch);
    }
  const auto weights_of = [&](const Action& a) -> Weights {
    const Weights& w = history[a.stage].at(a.version);
    if (a.weights != WeightSource::kPredicted || a.horizon == 0) return w;
    const double lr = LearningRate(oc.lr, LrSchedule::kConstant, a.version, 0);
    Weights p;
    for (std::size_t i = 0; i < w.size(); ++i)
      p.push_back(w[i] - lr * a.horizon * direction[a.stage][a.version][i]);
    return p;
  };
  for (int b = 0; b < M; ++b) {
    std::vector<std::map<int, Weights>> grads(S);  // [stage][j]
    for (int j = 0; j < T; ++j) {
      const int64_t m = kBatch / T, start = b * kBatch + j * m;
      const torch::Tensor x0 = su.data.images.slice(0, start, start + m);
      const torch::Tensor y = su.data.labels.slice(0, start, start + m);
      std::vector<torch::Tensor> inputs = {x0};
      std::vector<Weights> wf(S);
      {
        torch::NoGradGuard no_grad;
        for (int k = 0; k < S; ++k) {
          wf[k] = weights_of(pass.at({ActionKind::kForward, k, b, j}));
          inputs.push_back(ForwardStage(stages[k], inputs.back(), wf[k]));
        }
      }
      torch::Tensor g;
      for (int k = S - 1; k >= 0; --k) {
        const Action& bk = pass.at({ActionKind::kBackward, k, b, j});
        auto [gi, gw] = StageBackward(stages[k], inputs[k], wf[k], weights_of(bk), bk.weight_switch,
                                      k == S - 1 ? y : torch::Tensor(), g);
        g = gi;
        grads[k][j] = gw;
      }
    }
    for (int k = 0; k < S; ++k) {
      Weights sum;
      for (const auto& t : history[k].back()) sum.push_back(torch::zeros_like(t));
      for (int j : backward_order.at({k, b}))
        for (std::size_t i = 0; i < sum.size(); ++i)
          if (grads[k][j][i].defined()) sum[i].add_(grads[k][j][i]);
      for (auto& t : sum) t = t / T;
      Weights w;
      for (const auto& t : history[k].back()) w.push_back(t.clone());
      opt[k].Step(w, sum, LearningRate(oc.lr, LrSchedule::kConstant, opt[k].steps(), 0));
      history[k].push_back(w);
      direction[k].push_back(opt[k].Direction(w));
    }
  }
  Weights all;
  for (int k = 0; k < S; ++k) all.insert(all.end(), history[k].back().begin(), history[k].back().end());
  return all;
}

TEST(SequentialReference, AsynchronousPoliciesMatchTheExecutor) {
  torch::set_num_threads(1);
  const Problem su;
  int cases = 0;
  for (ScheduleKind kind : {ScheduleKind::kStale, ScheduleKind::kPipeDream, ScheduleKind::kPipeDream2BW,
                            ScheduleKind::kSpecTrain, ScheduleKind::kPipeOptim, ScheduleKind::kXPipe})
    for (int N : {2, 4})
      for (OptimizerKind ok :
           {OptimizerKind::kSgd, OptimizerKind::kMomentum, OptimizerKind::kAdam, OptimizerKind::kAdamW})
        for (WeightSwitch sw : {WeightSwitch::kSwap, WeightSwitch::kRecompute}) {
          ScheduleParams p;
          p.kind = kind;
          p.devices = N;
          p.micro_batches = TraitsOf(kind).micro_batches == MicroBatchRule::kOne ? 1 : 4;
          p.mini_batches = 10;
          p.backward_weights = sw;
          const Schedule s = MakeSchedule(p);
          ExecConfig c;
          c.stages = Partition(su.model, s.num_stages, {});
          c.devices.assign(s.num_stages, torch::kCPU);
          c.sample_output_shapes = SampleOutputShapes(c.stages, {1, 8, 8});
          c.micro_batch_size = kBatch / p.micro_batches;
          c.optimizer = Opt(ok);
          Executor ex(c, InitStages(c.stages, 1));
          const int T = p.micro_batches;
          ex.Run(
              s,
              [&](int64_t b, int j) {
                const int64_t m = kBatch / T, start = b * kBatch + j * m;
                return std::make_pair(su.data.images.slice(0, start, start + m),
                                      su.data.labels.slice(0, start, start + m));
              },
              0);
          const Weights ref = Reference(su, s, c.optimizer);
          double diff = 0;
          std::size_t i = 0;
          for (int k = 0; k < ex.num_stages(); ++k)
            for (const auto& t : ex.params(k))
              diff = std::max(diff, (t - ref.at(i++)).abs().max().item<double>());
          EXPECT_LE(diff, 1e-6) << ScheduleName(kind) << " N=" << N << " " << OptimizerName(ok) << " "
                                << WeightSwitchName(sw);
          ++cases;
        }
  EXPECT_EQ(cases, 96);
}

// The hand-written optimizers take the steps torch::optim takes on the same
// gradients.
TEST(Optimizers, MatchTorchOptim) {
  torch::manual_seed(0);
  const std::vector<int64_t> shape = {5, 7};
  for (OptimizerKind ok :
       {OptimizerKind::kSgd, OptimizerKind::kMomentum, OptimizerKind::kAdam, OptimizerKind::kAdamW}) {
    OptimizerConfig c = Opt(ok);
    Weights ours = {torch::randn(shape)};
    torch::Tensor theirs = ours[0].clone().requires_grad_(true);
    std::unique_ptr<torch::optim::Optimizer> ref;
    switch (ok) {
      case OptimizerKind::kSgd:
        ref = std::make_unique<torch::optim::SGD>(std::vector<torch::Tensor>{theirs},
                                                  torch::optim::SGDOptions(c.lr));
        break;
      case OptimizerKind::kMomentum:
        ref = std::make_unique<torch::optim::SGD>(std::vector<torch::Tensor>{theirs},
                                                  torch::optim::SGDOptions(c.lr).momentum(c.momentum));
        break;
      case OptimizerKind::kAdam:
        ref = std::make_unique<torch::optim::Adam>(
            std::vector<torch::Tensor>{theirs},
            torch::optim::AdamOptions(c.lr).betas({c.beta1, c.beta2}).eps(c.eps));
        break;
      case OptimizerKind::kAdamW:
        ref = std::make_unique<torch::optim::AdamW>(std::vector<torch::Tensor>{theirs},
                                                    torch::optim::AdamWOptions(c.lr)
                                                        .betas({c.beta1, c.beta2})
                                                        .eps(c.eps)
                                                        .weight_decay(c.weight_decay));
        break;
    }
    Optimizer opt(c, ours);
    for (int step = 0; step < 20; ++step) {
      const torch::Tensor g = torch::randn(shape);
      opt.Step(ours, {g}, c.lr);
      theirs.mutable_grad() = g.clone();
      ref->step();
    }
    EXPECT_LE((ours[0] - theirs.detach()).abs().max().item<double>(), 1e-6) << OptimizerName(ok);
  }
}

}  // namespace
}  // namespace xpipe::exec
