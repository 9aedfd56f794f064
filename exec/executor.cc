#include "exec/executor.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <malloc.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "common/error.h"
#include "common/lowering.h"
#include "common/versioning.h"

namespace xpipe::exec {

using Key = std::pair<int64_t, int>;  // (absolute version, horizon)
using MsgKey = std::tuple<bool, int, int64_t>;

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
    double scale = 1;                            // the factor the weights were handed out with
    std::vector<torch::Tensor> predicted, base;  // predicted: W_hat at scale 1
  };
  std::vector<Pending> pending;
  PredictionScale scale;

  struct Context {                // one in-flight micro-batch
    torch::Tensor input, output;  // output: activation, or the loss on the last stage
    torch::Tensor label;          // last stage
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

// A pass's weights in absolute versions: the segment's first version of its
// stage plus the annotation's (WeightKey: same key, same numbers).
Key AbsoluteKey(const Action& a, const std::vector<int64_t>& base) {
  const auto [version, horizon] = WeightKey(a);
  return {base[a.stage] + version, horizon};
}

MsgKey KeyOf(const Message& m) { return {m.forward, m.producer_stage, m.g}; }

}  // namespace

// Runs one rank's action list. One instance per rank and Run; touches only
// the stages of its rank, so ranks need no locks between them.
class Executor::Interpreter {
 public:
  Interpreter(Executor& ex, const Schedule& s, int rank, Transport& transport, SegmentResult& result,
              const std::vector<int64_t>& base)
      : ex_(ex), s_(s), rank_(rank), transport_(transport), result_(result), base_(base) {}

  MicroBatchFn data;                                                      // training
  std::function<std::pair<torch::Tensor, torch::Tensor>(int64_t)> chunk;  // evaluation
  std::function<int64_t(int64_t)> batch_of;                               // samples of micro-batch g
  int64_t first = 0;
  std::atomic<int64_t>* done = nullptr;
  EvalResult eval;
  std::vector<std::vector<PredictionError>>* errors = nullptr;
  std::vector<ActionSpan> spans;
  std::function<int64_t()> now_ns;

  void Run() {
    const auto& row = s_.device_actions[rank_];
    std::vector<std::size_t> next_compute(row.size() + 1, row.size());
    for (std::size_t i = row.size(); i-- > 0;)
      next_compute[i] = IsCompute(row[i].kind) ? i : next_compute[i + 1];
    for (std::size_t i = 0; i < row.size(); ++i) {
      const Action& a = row[i];
      const int64_t start = now_ns();
      waited_ns_ = 0;
      try {
        // Receives ahead of the compute actions: those of the next pass (or
        // the transport's ReceivesAhead passes) are posted before this one
        // runs, so their transfers overlap it.
        const bool pass = IsCompute(a.kind) && i + 1 < row.size();
        std::size_t limit = pass ? next_compute[i + 1] : i + 1;
        for (int k = 1; pass && k < receives_ahead_ && limit < row.size(); ++k)
          limit = next_compute[limit + 1];
        PostUpTo(limit);
        Execute(a);
        while (!sends_.empty() && sends_.front()->Done()) sends_.pop_front();
      } catch (const CommError& e) {
        throw Failure(a, i, e.what(), e.peer());
      } catch (const TrainingError& e) {
        throw Failure(a, i, e.what(), e.lost_rank());
      } catch (const c10::Error& e) {
        throw Failure(a, i, e.what_without_backtrace(), std::nullopt);
      } catch (const std::exception& e) {
        throw Failure(a, i, e.what(), std::nullopt);
      }
      // A pass's span starts when its message has arrived: the time it
      // waited is idle, not work.
      if (ex_.config_.record_trace && (IsCompute(a.kind) || a.kind == ActionKind::kUpdate))
        spans.push_back({rank_, start + waited_ns_, now_ns(), a, 0});
    }
    try {
      for (auto& p : sends_) p->Wait();
    } catch (const CommError& e) {
      throw TrainingError("rank " + std::to_string(rank_) + ": " + e.what(), e.peer());
    }
  }

 private:
  TrainingError Failure(const Action& a, std::size_t i, const std::string& what,
                        std::optional<int> peer) const {
    return TrainingError("stage " + std::to_string(a.stage) + " action " + ToText(a, s_.micro_batches) +
                             " (step " + std::to_string(i) + " of rank " + std::to_string(rank_) +
                             "): " + what,
                         peer);
  }

  Stage& stage(int k) { return *ex_.stages_[k]; }
  bool evaluating() const { return static_cast<bool>(chunk); }

  Key key_of(const Action& a) const { return AbsoluteKey(a, base_); }

  void PostUpTo(std::size_t limit) {
    const auto& row = s_.device_actions[rank_];
    for (; next_post_ < limit && next_post_ < row.size(); ++next_post_) {
      const Action& a = row[next_post_];
      if (a.kind != ActionKind::kRecvF && a.kind != ActionKind::kRecvB) continue;
      const Message m = MessageOf(a, s_.micro_batches);
      std::vector<int64_t> shape = {batch_of(m.g)};
      // An activation has its producer's output shape, a gradient its producer's input shape.
      const auto& sample = ex_.config_.sample_output_shapes.at(std::min(m.producer_stage, ReceiverStage(m)));
      shape.insert(shape.end(), sample.begin(), sample.end());
      recvs_[KeyOf(m)] = transport_.Recv(shape, stage(a.stage).device, s_.stage_device[m.producer_stage]);
    }
  }

  torch::Tensor Receive(const Message& m) {
    auto it = recvs_.find(KeyOf(m));
    XPIPE_CHECK(it != recvs_.end(), "a pass consumes a message whose RECV was not posted before it");
    const int64_t before = now_ns();
    torch::Tensor t = it->second->Wait();
    waited_ns_ += now_ns() - before;
    recvs_.erase(it);
    return t;
  }

  // Weights for a pass: a kept version or a prediction made earlier, the live
  // weights themselves when the pass reads the live version, else a
  // prediction made now from the live weights.
  const std::vector<torch::Tensor>& weights(Stage& st, const Action& a) {
    const Key k = key_of(a);
    auto it = st.store.find(k);
    if (it != st.store.end()) return it->second;
    if (k.first != st.version)
      throw TrainingError("weights of version " + std::to_string(k.first) +
                          " are no longer held (live version " + std::to_string(st.version) + ")");
    if (k.second == 0) return st.w;
    torch::NoGradGuard no_grad;
    const auto& c = ex_.config_;
    const double lr = LearningRate(c.optimizer.lr, c.lr_schedule, st.opt->steps(), c.total_steps);
    std::vector<torch::Tensor> made = Predict(*st.opt, st.w, lr, k.second);
    const double scale = c.adaptive_prediction ? st.scale.value() : 1.0;
    // Kept with W_v to measure the prediction's error once its target exists.
    if (c.adaptive_prediction || c.measure_prediction_errors) {
      Stage::Pending p{k.first + k.second, k.first, k.second, scale, made, {}};
      for (const auto& t : st.w) p.base.push_back(t.detach().clone());
      st.pending.push_back(std::move(p));
    }
    ++result_.weight_copies[st.index];
    if (scale != 1.0)
      for (std::size_t i = 0; i < made.size(); ++i) made[i] = torch::lerp(st.w[i], made[i], scale);
    return st.store[k] = std::move(made);
  }
  void release(Stage& st, const Key& k) {
    if (--st.uses[k] <= 0) st.store.erase(k);
  }
  void record_versions(Stage& st) {
    int held = 1;
    for (const auto& [k, ws] : st.store)
      if (k.second == 0 && k.first != st.version) ++held;
    result_.versions_held[st.index] = std::max(result_.versions_held[st.index], held);
  }

  void Execute(const Action& a) {
    switch (a.kind) {
      case ActionKind::kRecvF:
      case ActionKind::kRecvB:
        return;  // posted by PostUpTo, waited on by the pass that consumes it
      case ActionKind::kSendF:
      case ActionKind::kSendB: {
        const Message m = MessageOf(a, s_.micro_batches);
        auto it = outbox_.find(KeyOf(m));
        XPIPE_CHECK(it != outbox_.end(), "a SEND before the pass that produces its message");
        sends_.push_back(transport_.Send(it->second, s_.stage_device[ReceiverStage(m)]));
        outbox_.erase(it);
        return;
      }
      case ActionKind::kForward:
        return evaluating() ? EvalForward(a) : Forward(a);
      case ActionKind::kBackward:
      case ActionKind::kBackwardInput:
        return Backward(a);
      case ActionKind::kBackwardWeight:
        return BackwardWeight(a);
      case ActionKind::kUpdate:
        return Update(a);
    }
  }

  torch::Tensor Input(const Action& a) {
    if (const auto m = Consumes(a, s_.num_stages, s_.micro_batches)) return Receive(*m);
    return data(first + a.mini_batch, a.micro_batch).first.to(stage(a.stage).device);
  }
  torch::Tensor Label(const Action& a) {
    return data(first + a.mini_batch, a.micro_batch).second.to(stage(a.stage).device);
  }
  torch::Tensor Loss(const Action& a, const torch::Tensor& out, const torch::Tensor& y) {
    torch::Tensor loss = torch::cross_entropy_loss(out, y);
    const double value = loss.item<double>();
    if (!std::isfinite(value))
      throw TrainingError("loss is " + std::string(std::isnan(value) ? "NaN" : "Inf") + " at mini-batch " +
                          std::to_string(first + a.mini_batch) + " micro-batch " +
                          std::to_string(a.micro_batch));
    const int T = s_.micro_batches;
    result_.loss[a.mini_batch] += value / T;
    result_.correct[a.mini_batch] += CorrectSamples(out, y) / static_cast<double>(y.size(0) * T);
    return loss;
  }

  void Forward(const Action& a) {
    Stage& st = stage(a.stage);
    const int k = a.stage;
    const bool last = k == s_.num_stages - 1;
    const int64_t g = GlobalMicroBatch(a, s_.micro_batches);
    Stage::Context c;
    c.key = key_of(a);
    const std::vector<torch::Tensor>& ws = weights(st, a);
    torch::Tensor out;
    if (a.weight_switch == WeightSwitch::kRecompute) {
      // Its backward runs the forward again: keep only the input.
      torch::NoGradGuard no_grad;
      c.input = Input(a);
      out = ForwardStage(st.model, c.input, ws);
    } else {
      if (a.weight_switch == WeightSwitch::kSwap) {
        // A private copy, so the backward can load its weights into it.
        torch::NoGradGuard no_grad;
        for (const auto& t : ws) c.leaves.push_back(t.clone().requires_grad_(true));
        ++result_.weight_copies[k];
      } else {
        c.leaves = Leaves(ws);
      }
      c.input = Input(a).detach().requires_grad_(k > 0);
      out = ForwardStage(st.model, c.input, c.leaves);
    }
    ++result_.forwards_run[k];
    if (last) {
      c.label = Label(a);
      c.output = Loss(a, out, c.label);
    } else {
      c.output = out;
      outbox_[KeyOf(*Produces(a, s_.num_stages, s_.micro_batches))] = out.detach();
    }
    result_.passes[k].push_back({a, c.key.first, c.key.second, false});
    release(st, c.key);
    st.ctx[g] = std::move(c);
    record_versions(st);
  }

  void EvalForward(const Action& a) {
    Stage& st = stage(a.stage);
    const int k = a.stage;
    const int64_t g = a.mini_batch;
    torch::NoGradGuard no_grad;
    const auto m = Consumes(a, s_.num_stages, s_.micro_batches);
    const torch::Tensor x = m ? Receive(*m) : chunk(g).first.to(st.device);
    const torch::Tensor out = ForwardStage(st.model, x, st.w);
    if (k + 1 < s_.num_stages) {
      outbox_[KeyOf(*Produces(a, s_.num_stages, s_.micro_batches))] = out;
      return;
    }
    const torch::Tensor y = chunk(g).second.to(st.device);
    eval.loss_sum += torch::cross_entropy_loss(out, y).item<double>() * static_cast<double>(y.size(0));
    eval.correct += CorrectSamples(out, y);
  }

  void Backward(const Action& a) {
    Stage& st = stage(a.stage);
    const int k = a.stage;
    const bool last = k == s_.num_stages - 1;
    const int64_t g = GlobalMicroBatch(a, s_.micro_batches);
    Stage::Context& c = st.ctx.at(g);
    const Key kb = key_of(a);
    PassRecord rec{a, kb.first, kb.second, false};
    torch::Tensor grad_out;
    if (const auto m = Consumes(a, s_.num_stages, s_.micro_batches)) grad_out = Receive(*m);
    switch (a.weight_switch) {
      case WeightSwitch::kNone:
        if (kb != c.key)
          throw TrainingError(
              "the backward's weights differ from its forward's but the schedule names no switch");
        break;
      case WeightSwitch::kSwap: {
        torch::NoGradGuard no_grad;
        const std::vector<torch::Tensor>& wb = weights(st, a);
        // variable_data: the same storage under a fresh version counter, so
        // the graph's saved weights (and views of them) read the new values.
        for (std::size_t i = 0; i < wb.size(); ++i) c.leaves[i].variable_data().copy_(wb[i]);
        ++result_.weight_copies[k];
        break;
      }
      case WeightSwitch::kRecompute: {
        rec.recomputed = true;
        c.leaves = Leaves(weights(st, a));
        c.input = c.input.detach().requires_grad_(k > 0);
        torch::Tensor out = ForwardStage(st.model, c.input, c.leaves);
        c.output = last ? torch::cross_entropy_loss(out, c.label) : out;
        ++result_.forwards_run[k];
        break;
      }
    }
    c.key = kb;
    release(st, kb);
    const bool split = a.kind == ActionKind::kBackwardInput;
    std::vector<torch::Tensor> inputs;
    if (k > 0) inputs.push_back(c.input);
    if (!split) inputs.insert(inputs.end(), c.leaves.begin(), c.leaves.end());
    std::vector<torch::Tensor> grads;
    if (!inputs.empty())
      grads = torch::autograd::grad({c.output}, inputs, {grad_out}, /*retain_graph=*/split,
                                    /*create_graph=*/false, /*allow_unused=*/true);
    if (const auto m = Produces(a, s_.num_stages, s_.micro_batches)) outbox_[KeyOf(*m)] = grads[0].detach();
    if (split) {
      c.grad_out = grad_out;
    } else {
      Accumulate(st, grads, k > 0 ? 1 : 0);
      st.ctx.erase(g);
    }
    result_.passes[k].push_back(rec);
    record_versions(st);
  }

  void BackwardWeight(const Action& a) {
    Stage& st = stage(a.stage);
    const int64_t g = GlobalMicroBatch(a, s_.micro_batches);
    Stage::Context& c = st.ctx.at(g);
    if (!c.leaves.empty()) {  // a stage without parameters has no weight gradient
      const auto grads = torch::autograd::grad({c.output}, c.leaves, {c.grad_out}, /*retain_graph=*/false,
                                               /*create_graph=*/false, /*allow_unused=*/true);
      Accumulate(st, grads, 0);
    }
    release(st, key_of(a));
    st.ctx.erase(g);
    result_.passes[a.stage].push_back({a, key_of(a).first, key_of(a).second, false});
  }

  static void Accumulate(Stage& st, const std::vector<torch::Tensor>& grads, std::size_t offset) {
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < st.accum.size(); ++i)
      if (grads[offset + i].defined()) st.accum[i].add_(grads[offset + i]);
  }

  void Update(const Action& a) {
    Stage& st = stage(a.stage);
    const auto& c = ex_.config_;
    const double lr = LearningRate(c.optimizer.lr, c.lr_schedule, st.opt->steps(), c.total_steps);
    std::vector<torch::Tensor> mean;
    for (auto& t : st.accum) mean.push_back(t / s_.micro_batches);
    // Copy on write: a later pass (or a graph a later backward uses) still
    // reads the version being replaced, so it keeps these tensors and the
    // update goes to a copy.
    if (auto it = st.uses.find({st.version, 0}); it != st.uses.end() && it->second > 0) {
      st.store[{st.version, 0}] = st.w;
      for (auto& t : st.w) t = t.detach().clone();
      ++result_.weight_copies[st.index];
    }
    st.opt->Step(st.w, mean, lr);
    ++st.version;
    for (auto& t : st.accum) t.zero_();
    torch::NoGradGuard no_grad;
    for (auto it = st.pending.begin(); it != st.pending.end();) {
      if (it->target != st.version) {
        ++it;
        continue;
      }
      const double denom = Distance(it->base, st.w);
      double r_dot_p = 0, p_dot_p = 0;  // realised and predicted steps (scale 1)
      for (std::size_t i = 0; i < st.w.size(); ++i) {
        const torch::Tensor p = (it->predicted[i] - it->base[i]).to(torch::kFloat64);
        r_dot_p += (st.w[i] - it->base[i]).to(torch::kFloat64).mul(p).sum().item<double>();
        p_dot_p += p.mul(p).sum().item<double>();
      }
      if (denom > 0) {
        double used = Distance(it->predicted, st.w);
        if (it->scale != 1.0) {
          std::vector<torch::Tensor> w_hat;
          for (std::size_t i = 0; i < st.w.size(); ++i)
            w_hat.push_back(torch::lerp(it->base[i], it->predicted[i], it->scale));
          used = Distance(w_hat, st.w);
        }
        (*errors)[a.stage].push_back({a.stage, it->version, it->horizon, used / denom, it->scale});
      }
      st.scale.Add(r_dot_p, p_dot_p);
      it = st.pending.erase(it);
    }
    if (done != nullptr && a.stage == s_.num_stages - 1) ++*done;
    record_versions(st);
  }

 private:
  Executor& ex_;
  const Schedule& s_;
  const int rank_;
  Transport& transport_;
  SegmentResult& result_;
  const std::vector<int64_t>& base_;
  std::size_t next_post_ = 0;
  const int receives_ahead_ = std::max(1, transport_.ReceivesAhead());
  int64_t waited_ns_ = 0;  // by the current action, for its message
  std::map<MsgKey, std::unique_ptr<Transport::Pending>> recvs_;
  std::map<MsgKey, torch::Tensor> outbox_;
  std::deque<std::unique_ptr<Transport::Pending>> sends_;
};

Executor::Executor(ExecConfig config, std::vector<std::vector<torch::Tensor>> params)
    : config_(std::move(config)) {
  const std::size_t S = config_.stages.size();
  XPIPE_CHECK(params.size() == S, "one parameter list per stage");
  XPIPE_CHECK(config_.devices.size() == S, "one device per stage");
  XPIPE_CHECK(config_.sample_output_shapes.size() == S, "one output shape per stage");
  stages_.resize(S);
  for (std::size_t k = 0; k < S; ++k) {
    if (!config_.local_ranks.empty() && std::find(config_.local_ranks.begin(), config_.local_ranks.end(),
                                                  config_.stage_rank.at(k)) == config_.local_ranks.end())
      continue;  // another rank's stage
    auto st = std::make_unique<Stage>();
    st->index = static_cast<int>(k);
    st->model = config_.stages[k];
    st->device = config_.devices[k];
    for (auto& p : params[k]) st->w.push_back(p.to(st->device).clone());
    for (auto& p : st->w) st->accum.push_back(torch::zeros_like(p));
    st->opt = std::make_unique<Optimizer>(config_.optimizer, st->w);
    stages_[k] = std::move(st);
  }
}

Executor::~Executor() = default;

int Executor::num_stages() const { return static_cast<int>(stages_.size()); }
bool Executor::is_local(int k) const { return stages_[k] != nullptr; }
std::vector<torch::Tensor>& Executor::params(int k) { return stages_.at(k)->w; }
Optimizer& Executor::optimizer(int k) { return *stages_.at(k)->opt; }
int64_t Executor::version(int k) const { return stages_.at(k)->version; }
void Executor::set_version(int k, int64_t v) { stages_.at(k)->version = v; }
PredictionScale& Executor::prediction_scale(int k) { return stages_.at(k)->scale; }

namespace {

// Runs `body(rank, transport)` for every local rank: one thread each, with
// LibTorch's per-thread settings made there. Rethrows the first failure.
void RunRanks(const Schedule& s, const std::vector<int>& local, Transport* transport,
              const std::vector<torch::Device>& stage_devices,
              const std::function<void(int, Transport&)>& body) {
  std::vector<int> ranks = local;
  if (ranks.empty())
    for (int d = 0; d < s.num_devices; ++d) ranks.push_back(d);
  std::unique_ptr<InProcessHub> hub;
  std::vector<std::unique_ptr<Transport>> endpoints;
  if (transport == nullptr) {
    XPIPE_CHECK(static_cast<int>(ranks.size()) == s.num_devices, "in-process runs hold every rank");
    hub = MakeInProcessHub(s.num_devices);
    for (int d = 0; d < s.num_devices; ++d) endpoints.push_back(hub->Endpoint(d));
  }
  std::mutex mu;
  std::optional<TrainingError> error;
  const auto worker = [&](int d) {
    torch::set_num_threads(1);
    torch::AutoGradMode grad_mode(true);
    std::optional<c10::cuda::CUDAStreamGuard> stream;
    for (int k = 0; k < s.num_stages; ++k)
      if (s.stage_device[k] == d && stage_devices[k].is_cuda()) {
        stream.emplace(c10::cuda::getStreamFromPool(false, stage_devices[k].index()));
        break;
      }
    try {
      body(d, transport != nullptr ? *transport : *endpoints[d]);
    } catch (const TrainingError& e) {
      std::lock_guard<std::mutex> lock(mu);
      // The first failure is the cause; the others were stopped by it.
      if (!error) error = e;
      if (hub) hub->Close();
    }
  };
  if (ranks.size() == 1) {
    worker(ranks[0]);
  } else {
    std::vector<std::thread> threads;
    threads.reserve(ranks.size());
    for (int d : ranks) threads.emplace_back(worker, d);
    for (auto& t : threads) t.join();
  }
  if (error) throw *error;
}

}  // namespace

SegmentResult Executor::Run(const Schedule& schedule, const MicroBatchFn& data, int64_t first,
                            Transport* transport, std::atomic<int64_t>* done) {
  XPIPE_CHECK(schedule.num_stages == num_stages(), "schedule and executor disagree on the number of stages");
  const Schedule s = IsLowered(schedule) ? schedule : LowerCommunication(schedule);
  const int S = s.num_stages;
  SegmentResult result;
  result.loss.assign(s.mini_batches, 0.0);
  result.correct.assign(s.mini_batches, 0.0);
  result.passes.resize(S);
  result.versions_held.assign(S, 1);
  result.forwards_run.assign(S, 0);
  result.weight_copies.assign(S, 0);
  std::vector<std::vector<PredictionError>> errors(S);

  std::vector<int64_t> base(S, 0);
  for (int k = 0; k < S; ++k)
    if (stages_[k]) base[k] = stages_[k]->version;
  for (auto& st : stages_) {
    if (!st) continue;
    st->uses.clear();
    st->store.clear();
    st->pending.clear();
    st->ctx.clear();
  }
  for (const auto& row : s.device_actions)
    for (const Action& a : row)
      if (IsCompute(a.kind) && stages_[a.stage]) ++stages_[a.stage]->uses[AbsoluteKey(a, base)];

  std::vector<std::vector<ActionSpan>> spans(s.num_devices);
  const auto t0 = std::chrono::steady_clock::now();
  result.origin_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t0.time_since_epoch()).count();
  const auto now_ns = [t0] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
        .count();
  };
  const int64_t micro = config_.micro_batch_size;
  RunRanks(s, config_.local_ranks, transport, config_.devices, [&](int d, Transport& t) {
    Interpreter in(*this, s, d, t, result, base);
    in.data = data;
    in.batch_of = [micro](int64_t) { return micro; };
    in.first = first;
    in.done = done;
    in.errors = &errors;
    in.now_ns = now_ns;
    in.Run();
    spans[d] = std::move(in.spans);
  });
  result.seconds = static_cast<double>(now_ns()) / 1e9;
  for (auto& e : errors) result.prediction_errors.insert(result.prediction_errors.end(), e.begin(), e.end());
  for (auto& sp : spans) result.trace.spans.insert(result.trace.spans.end(), sp.begin(), sp.end());
  return result;
}

EvalResult Executor::Evaluate(const Schedule& layout, int64_t chunks,
                              const std::function<std::pair<torch::Tensor, torch::Tensor>(int64_t)>& chunk,
                              const std::function<int64_t(int64_t)>& sizes, Transport* transport) {
  // A forward-only schedule: each rank runs its stages in order, chunk by chunk.
  Schedule e;
  e.kind = ScheduleKind::kCustom;
  e.num_devices = layout.num_devices;
  e.num_stages = layout.num_stages;
  e.stage_device = layout.stage_device;
  e.micro_batches = 1;
  e.mini_batches = static_cast<int>(chunks);
  e.device_actions.resize(e.num_devices);
  for (int64_t g = 0; g < chunks; ++g)
    for (int k = 0; k < e.num_stages; ++k) {
      Action f;
      f.stage = k;
      f.mini_batch = static_cast<int>(g);
      e.device_actions[e.stage_device[k]].push_back(f);
    }
  const Schedule lowered = LowerCommunication(e);
  SegmentResult unused;
  unused.weight_copies.assign(e.num_stages, 0);
  std::vector<int64_t> base(e.num_stages, 0);
  std::mutex mu;
  EvalResult total;
  RunRanks(lowered, config_.local_ranks, transport, config_.devices, [&](int d, Transport& t) {
    torch::NoGradGuard no_grad;
    Interpreter in(*this, lowered, d, t, unused, base);
    in.chunk = chunk;
    in.batch_of = sizes;
    in.now_ns = [] { return int64_t{0}; };
    in.Run();
    std::lock_guard<std::mutex> lock(mu);
    total.loss_sum += in.eval.loss_sum;
    total.correct += in.eval.correct;
  });
  return total;
}

void RetainHostMemory() {
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  mallopt(M_TOP_PAD, 64 << 20);
#endif
}

std::vector<std::vector<int64_t>> SampleOutputShapes(const std::vector<Model>& stages,
                                                     const std::vector<int64_t>& input_shape,
                                                     torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> shape = {1};
  shape.insert(shape.end(), input_shape.begin(), input_shape.end());
  torch::Tensor h = torch::zeros(shape, dtype);
  std::vector<std::vector<int64_t>> out;
  torch::Generator gen = at::detail::createCPUGenerator(0);
  for (const Model& stage : stages) {
    std::vector<torch::Tensor> params;
    for (const auto& layer : stage)
      for (auto& t : layer->Init(gen)) params.push_back(t);
    h = ForwardStage(stage, h, params);
    out.emplace_back(h.sizes().begin() + 1, h.sizes().end());
  }
  return out;
}

}  // namespace xpipe::exec
