#include "exec/executor.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "common/error.h"
#include "exec/channel.h"

namespace xpipe::exec {

using Key = std::pair<int64_t, int>;  // (absolute version, horizon)

struct Executor::Stage {
  int index = 0;
  Model model;
  torch::Device device = torch::kCPU;
  std::vector<torch::Tensor> w;  // live weights W_v
  std::unique_ptr<Optimizer> opt;
  int64_t version = 0;
  std::vector<torch::Tensor> accum;  // gradient sum over the mini-batch's micro-batches

  std::map<Key, std::vector<torch::Tensor>> store;  // weight sets, immutable once made
  std::map<Key, int64_t> uses;  // passes of this segment still to use each key; a set goes at 0

  struct Pending {
    int64_t target = 0, version = 0;
    int horizon = 0;
    std::vector<torch::Tensor> predicted, base;
  };
  std::vector<Pending> pending;

  struct Context {                // one in-flight micro-batch
    torch::Tensor input, output;  // output: activation, or the loss on the last stage
    std::vector<torch::Tensor> leaves;
    Key key;
    torch::Tensor grad_out;  // kept from I for W
  };
  std::map<int64_t, Context> ctx;
};

namespace {

std::vector<torch::Tensor> Leaves(const std::vector<torch::Tensor>& ws) {
  std::vector<torch::Tensor> out;
  out.reserve(ws.size());
  for (const auto& t : ws) out.push_back(t.detach().requires_grad_(true));
  return out;
}

double Norm(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += (a[i] - b[i]).pow(2).sum().item<double>();
  return std::sqrt(sum);
}

void SyncIfCuda(const torch::Device& d) {
  if (d.is_cuda()) c10::cuda::getCurrentCUDAStream(d.index()).synchronize();
}

}  // namespace

Executor::Executor(ExecConfig config, std::vector<std::vector<torch::Tensor>> params)
    : config_(std::move(config)) {
  XPIPE_CHECK(params.size() == config_.stages.size(), "one parameter list per stage");
  XPIPE_CHECK(config_.devices.size() == config_.stages.size(), "one device per stage");
  for (std::size_t k = 0; k < params.size(); ++k) {
    auto st = std::make_unique<Stage>();
    st->index = static_cast<int>(k);
    st->model = config_.stages[k];
    st->device = config_.devices[k];
    for (auto& p : params[k]) st->w.push_back(p.to(st->device).clone());
    for (auto& p : st->w) st->accum.push_back(torch::zeros_like(p));
    st->opt = std::make_unique<Optimizer>(config_.optimizer, st->w);
    stages_.push_back(std::move(st));
  }
}

Executor::~Executor() = default;

int Executor::num_stages() const { return static_cast<int>(stages_.size()); }
std::vector<torch::Tensor>& Executor::params(int k) { return stages_[k]->w; }
Optimizer& Executor::optimizer(int k) { return *stages_[k]->opt; }
int64_t Executor::version(int k) const { return stages_[k]->version; }
void Executor::set_version(int k, int64_t v) { stages_[k]->version = v; }

torch::Tensor Executor::Predict(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  torch::Tensor h = x;
  for (auto& st : stages_) h = ForwardStage(st->model, h.to(st->device), st->w);
  return h.to(torch::kCPU);
}

SegmentResult Executor::Run(const Schedule& s, const MicroBatchFn& data, int64_t first,
                            std::atomic<int64_t>* done) {
  XPIPE_CHECK(s.num_stages == num_stages(), "schedule and executor disagree on the number of stages");
  const int S = s.num_stages, T = s.micro_batches;
  SegmentResult result;
  result.loss.assign(s.mini_batches, 0.0);
  result.correct.assign(s.mini_batches, 0.0);
  result.passes.resize(S);
  result.versions_held.assign(S, 1);
  std::vector<std::vector<PredictionError>> errors(S);

  // Absolute key of a pass, and how often each key is used in this segment.
  std::vector<int64_t> base(S);
  for (int k = 0; k < S; ++k) base[k] = stages_[k]->version;
  const auto key_of = [&](const Action& a) -> Key {
    return {base[a.stage] + a.version, a.weights == WeightSource::kPredicted ? a.horizon : 0};
  };
  for (auto& st : stages_) {
    st->uses.clear();
    st->store.clear();
    st->pending.clear();
    st->ctx.clear();
  }
  for (const auto& row : s.device_actions)
    for (const Action& a : row)
      if (IsCompute(a.kind)) ++stages_[a.stage]->uses[key_of(a)];
  const auto snapshot_if_needed = [&](Stage& st) {
    const Key k{st.version, 0};
    auto it = st.uses.find(k);
    if (it != st.uses.end() && it->second > 0 && !st.store.count(k)) {
      std::vector<torch::Tensor> copy;
      for (const auto& t : st.w) copy.push_back(t.detach().clone());
      st.store[k] = std::move(copy);
    }
  };
  for (auto& st : stages_) snapshot_if_needed(*st);

  std::vector<std::unique_ptr<Channel>> fwd, bwd;  // fwd[k]: k -> k+1; bwd[k]: k+1 -> k
  const std::size_t capacity = static_cast<std::size_t>(S) * T + 8;
  for (int k = 0; k + 1 < S; ++k) {
    fwd.push_back(std::make_unique<Channel>(capacity));
    bwd.push_back(std::make_unique<Channel>(capacity));
  }
  std::mutex error_mu;
  std::optional<std::string> error;
  std::vector<std::vector<ActionSpan>> spans(s.num_devices);
  const auto t0 = std::chrono::steady_clock::now();
  const auto now_ns = [&] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
        .count();
  };
  const auto fail = [&](const std::string& what) {
    {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = what;
    }
    for (auto& c : fwd) c->Close();
    for (auto& c : bwd) c->Close();
  };

  // Weights for a pass: an existing snapshot or prediction, else made now
  // from the live weights (which must be at the pass's version).
  const auto weights = [&](Stage& st, const Action& a) -> const std::vector<torch::Tensor>& {
    const Key k = key_of(a);
    auto it = st.store.find(k);
    if (it != st.store.end()) return it->second;
    if (k.first != st.version)
      throw TrainingError("weights of version " + std::to_string(k.first) +
                          " are no longer held (live version " + std::to_string(st.version) + ")");
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> made;
    if (k.second == 0) {
      for (const auto& t : st.w) made.push_back(t.detach().clone());
    } else {
      const double lr =
          LearningRate(config_.optimizer.lr, config_.lr_schedule, st.opt->steps(), config_.total_steps);
      const std::vector<torch::Tensor> d = st.opt->Direction(st.w);
      for (std::size_t i = 0; i < st.w.size(); ++i) made.push_back(st.w[i] - lr * k.second * d[i]);
      Stage::Pending p{k.first + k.second, k.first, k.second, made, {}};
      for (const auto& t : st.w) p.base.push_back(t.detach().clone());
      st.pending.push_back(std::move(p));
    }
    return st.store[k] = std::move(made);
  };
  const auto release = [&](Stage& st, const Key& k) {
    if (--st.uses[k] <= 0) st.store.erase(k);
  };
  const auto record_versions = [&](Stage& st) {
    std::vector<int64_t> held = {st.version};
    for (const auto& [k, ws] : st.store)
      if (k.second == 0 && k.first != st.version) held.push_back(k.first);
    result.versions_held[st.index] = std::max(result.versions_held[st.index], static_cast<int>(held.size()));
  };

  const auto run_action = [&](const Action& a) {
    Stage& st = *stages_[a.stage];
    const int k = a.stage;
    const bool last = k == S - 1;
    const int64_t g = GlobalMicroBatch(a, T);
    PassRecord rec{a, key_of(a).first, key_of(a).second, false};
    switch (a.kind) {
      case ActionKind::kForward: {
        torch::Tensor x;
        if (k == 0) {
          x = data(first + a.mini_batch, a.micro_batch).first.to(st.device);
        } else {
          auto got = fwd[k - 1]->Receive(g);
          if (!got) return false;
          x = got->to(st.device);
        }
        Stage::Context c;
        c.input = x.detach().requires_grad_(k > 0);
        c.key = key_of(a);
        c.leaves = Leaves(weights(st, a));
        torch::Tensor out = ForwardStage(st.model, c.input, c.leaves);
        if (last) {
          const torch::Tensor y = data(first + a.mini_batch, a.micro_batch).second.to(st.device);
          const torch::Tensor loss = torch::cross_entropy_loss(out, y);
          const double value = loss.item<double>();
          if (!std::isfinite(value))
            throw TrainingError("loss is " + std::string(std::isnan(value) ? "NaN" : "Inf") +
                                " at mini-batch " + std::to_string(first + a.mini_batch) + " micro-batch " +
                                std::to_string(a.micro_batch));
          result.loss[a.mini_batch] += value / T;
          result.correct[a.mini_batch] +=
              out.argmax(1).eq(y).sum().item<double>() / static_cast<double>(y.size(0) * T);
          c.output = loss;
        } else {
          c.output = out;
          const torch::Tensor send = out.detach();
          SyncIfCuda(st.device);
          if (!fwd[k]->Send(g, send)) return false;
        }
        release(st, c.key);
        st.ctx[g] = std::move(c);
        break;
      }
      case ActionKind::kBackward:
      case ActionKind::kBackwardInput: {
        Stage::Context& c = st.ctx.at(g);
        const Key kb = key_of(a);
        if (kb != c.key) {  // this pass's weights differ from its forward's: recompute
          rec.recomputed = true;
          c.leaves = Leaves(weights(st, a));
          c.input = c.input.detach().requires_grad_(k > 0);
          torch::Tensor out = ForwardStage(st.model, c.input, c.leaves);
          if (last)
            out = torch::cross_entropy_loss(out,
                                            data(first + a.mini_batch, a.micro_batch).second.to(st.device));
          c.output = out;
          c.key = kb;
        }
        release(st, kb);
        torch::Tensor grad_out;
        if (!last) {
          auto got = bwd[k]->Receive(g);
          if (!got) return false;
          grad_out = got->to(st.device);
        }
        const bool split = a.kind == ActionKind::kBackwardInput;
        std::vector<torch::Tensor> inputs;
        if (k > 0) inputs.push_back(c.input);
        if (!split) inputs.insert(inputs.end(), c.leaves.begin(), c.leaves.end());
        std::vector<torch::Tensor> grads;
        if (!inputs.empty())
          grads = torch::autograd::grad({c.output}, inputs, {grad_out}, /*retain_graph=*/split,
                                        /*create_graph=*/false, /*allow_unused=*/true);
        if (k > 0) {
          SyncIfCuda(st.device);
          if (!bwd[k - 1]->Send(g, grads[0].detach())) return false;
        }
        if (split) {
          c.grad_out = grad_out;
        } else {
          torch::NoGradGuard no_grad;
          for (std::size_t i = 0; i < st.accum.size(); ++i) {
            const torch::Tensor& gi = grads[(k > 0 ? 1 : 0) + i];
            if (gi.defined()) st.accum[i].add_(gi);
          }
          st.ctx.erase(g);
        }
        break;
      }
      case ActionKind::kBackwardWeight: {
        Stage::Context& c = st.ctx.at(g);
        const auto grads = torch::autograd::grad({c.output}, c.leaves, {c.grad_out}, /*retain_graph=*/false,
                                                 /*create_graph=*/false, /*allow_unused=*/true);
        {
          torch::NoGradGuard no_grad;
          for (std::size_t i = 0; i < st.accum.size(); ++i)
            if (grads[i].defined()) st.accum[i].add_(grads[i]);
        }
        release(st, key_of(a));
        st.ctx.erase(g);
        break;
      }
      case ActionKind::kUpdate: {
        const double lr =
            LearningRate(config_.optimizer.lr, config_.lr_schedule, st.opt->steps(), config_.total_steps);
        std::vector<torch::Tensor> mean;
        for (auto& t : st.accum) mean.push_back(t / T);
        st.opt->Step(st.w, mean, lr);
        ++st.version;
        for (auto& t : st.accum) t.zero_();
        torch::NoGradGuard no_grad;
        for (auto it = st.pending.begin(); it != st.pending.end();) {
          if (it->target != st.version) {
            ++it;
            continue;
          }
          const double denom = Norm(it->base, st.w);
          if (denom > 0)
            errors[k].push_back({k, it->version, it->horizon, Norm(it->predicted, st.w) / denom});
          it = st.pending.erase(it);
        }
        snapshot_if_needed(st);
        if (done != nullptr && last) ++*done;
        break;
      }
      default:  // SEND/RECV: channels carry the data; nothing to run
        return true;
    }
    if (IsCompute(a.kind)) result.passes[k].push_back(rec);
    record_versions(st);
    return true;
  };

  const auto worker = [&](int d) {
    torch::set_num_threads(1);
    torch::AutoGradMode grad_mode(true);
    std::optional<c10::cuda::CUDAStreamGuard> stream;
    const torch::Device dev = stages_[s.device_actions[d].empty() ? 0 : s.device_actions[d][0].stage]->device;
    if (dev.is_cuda()) stream.emplace(c10::cuda::getStreamFromPool(false, dev.index()));
    const auto& row = s.device_actions[d];
    for (std::size_t i = 0; i < row.size(); ++i) {
      const Action& a = row[i];
      const int64_t start = now_ns();
      try {
        if (!run_action(a)) return;  // another worker failed and closed the channels
      } catch (const c10::Error& e) {
        fail("stage " + std::to_string(a.stage) + " action " + ToText(a, T) + " (step " + std::to_string(i) +
             " of device " + std::to_string(d) + "): " + e.what_without_backtrace());
        return;
      } catch (const std::exception& e) {
        fail("stage " + std::to_string(a.stage) + " action " + ToText(a, T) + " (step " + std::to_string(i) +
             " of device " + std::to_string(d) + "): " + e.what());
        return;
      }
      if (config_.record_trace && IsCompute(a.kind)) spans[d].push_back({d, start, now_ns(), a, 0});
    }
  };
  std::vector<std::thread> threads;
  for (int d = 0; d < s.num_devices; ++d) threads.emplace_back(worker, d);
  for (auto& t : threads) t.join();
  result.seconds = static_cast<double>(now_ns()) / 1e9;
  if (error) throw TrainingError(*error);
  for (auto& e : errors) result.prediction_errors.insert(result.prediction_errors.end(), e.begin(), e.end());
  for (auto& sp : spans) result.trace.spans.insert(result.trace.spans.end(), sp.begin(), sp.end());
  return result;
}

}  // namespace xpipe::exec
