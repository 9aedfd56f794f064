// The executor against single-device training with gradient accumulation
// (the oracle), and its weight semantics against the IR's annotations.
#include "exec/executor.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <thread>

#include "common/error.h"
#include "common/generators.h"
#include "common/lowering.h"
#include "common/versioning.h"
#include "exec/data.h"
#include "exec/model.h"
#include "exec/trainer.h"
#include "exec/transport.h"

namespace xpipe::exec {
namespace {

constexpr int kBatch = 32;

struct Fixture {
  Dataset data = Synthetic(kBatch * 12, {1, 8, 8}, 10, 3, 12345);
  Model model = MakeModel("mlp", {1, 8, 8}, 10);

  MicroBatchFn Fn(int T) const {
    return [this, T](int64_t b, int j) {
      const int64_t m = kBatch / T, start = b * kBatch + j * m;
      return std::make_pair(data.images.slice(0, start, start + m), data.labels.slice(0, start, start + m));
    };
  }
};

OptimizerConfig Opt(OptimizerKind kind) {
  OptimizerConfig c;
  c.kind = kind;
  c.lr = kind == OptimizerKind::kSgd || kind == OptimizerKind::kMomentum ? 0.05 : 1e-3;
  return c;
}

// The oracle: one device, T micro-batches' gradients summed, then averaged.
std::vector<torch::Tensor> Reference(const Fixture& su, int T, int steps, OptimizerKind kind) {
  const std::vector<Model> one = Partition(su.model, 1, {});
  std::vector<torch::Tensor> w = InitStages(one, 1)[0];
  Optimizer opt(Opt(kind), w);
  const MicroBatchFn fn = su.Fn(T);
  for (int b = 0; b < steps; ++b) {
    std::vector<torch::Tensor> sum;
    for (auto& t : w) sum.push_back(torch::zeros_like(t));
    for (int j = 0; j < T; ++j) {
      const auto [x, y] = fn(b, j);
      std::vector<torch::Tensor> leaves;
      for (auto& t : w) leaves.push_back(t.detach().requires_grad_(true));
      const torch::Tensor loss = torch::cross_entropy_loss(ForwardStage(one[0], x, leaves), y);
      const auto g = torch::autograd::grad({loss}, leaves);
      for (std::size_t i = 0; i < w.size(); ++i) sum[i] += g[i];
    }
    for (auto& t : sum) t /= T;
    opt.Step(w, sum, Opt(kind).lr);
  }
  return w;
}

std::vector<torch::Tensor> Pipelined(const Fixture& su, ScheduleKind kind, int N, int T, int steps,
                                     OptimizerKind opt, SegmentResult* out = nullptr,
                                     const std::vector<int>& partition = {}, bool adaptive = false,
                                     bool measure_errors = true) {
  ScheduleParams p;
  p.kind = kind;
  p.devices = N;
  p.micro_batches = T;
  p.mini_batches = steps;
  const Schedule s = MakeSchedule(p);
  ExecConfig c;
  c.stages = Partition(su.model, s.num_stages, partition);
  c.devices.assign(s.num_stages, torch::kCPU);
  c.sample_output_shapes = SampleOutputShapes(c.stages, {1, 8, 8});
  c.micro_batch_size = kBatch / T;
  c.optimizer = Opt(opt);
  c.adaptive_prediction = adaptive;
  c.measure_prediction_errors = measure_errors;
  Executor ex(c, InitStages(c.stages, 1));
  SegmentResult r = ex.Run(s, su.Fn(T), 0);
  if (out) *out = r;
  std::vector<torch::Tensor> all;
  for (int k = 0; k < ex.num_stages(); ++k)
    for (auto& t : ex.params(k)) all.push_back(t);
  return all;
}

double MaxDiff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, (a[i] - b[i]).abs().max().item<double>());
  return m;
}

class ExecTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::set_num_threads(1); }
  Fixture su;
};

// GPipe, 1F1B-flush and ZB-H1 (split backward) with N stages give the weights
// of single-device training with gradient accumulation.
TEST_F(ExecTest, SynchronousSchedulesMatchSingleDevice) {
  for (ScheduleKind kind : {ScheduleKind::kGPipe, ScheduleKind::kOneFOneBFlush, ScheduleKind::kZeroBubbleH1})
    for (int N : {2, 4})
      for (OptimizerKind opt : {OptimizerKind::kSgd, OptimizerKind::kAdam}) {
        const auto ref = Reference(su, 4, 10, opt);
        EXPECT_LE(MaxDiff(Pipelined(su, kind, N, 4, 10, opt), ref), 1e-5)
            << ScheduleName(kind) << " N=" << N << " " << OptimizerName(opt);
      }
}

// A stage without parameters (here: Flatten alone) has no weight gradient;
// ZB-H1's W pass on it is a no-op, not an error.
TEST_F(ExecTest, ZeroBubbleWithAParameterlessStage) {
  const auto ref = Reference(su, 4, 6, OptimizerKind::kAdam);
  EXPECT_LE(
      MaxDiff(Pipelined(su, ScheduleKind::kZeroBubbleH1, 2, 4, 6, OptimizerKind::kAdam, nullptr, {1, 7}),
              ref),
      1e-5);
}

// With one stage every policy is plain training: no staleness, horizons 0.
TEST_F(ExecTest, EveryPolicyWithOneStageMatchesSingleDevice) {
  for (ScheduleKind kind : {ScheduleKind::kStale, ScheduleKind::kPipeDream, ScheduleKind::kPipeDream2BW,
                            ScheduleKind::kSpecTrain, ScheduleKind::kPipeOptim, ScheduleKind::kXPipe})
    for (OptimizerKind opt :
         {OptimizerKind::kSgd, OptimizerKind::kMomentum, OptimizerKind::kAdam, OptimizerKind::kAdamW}) {
      const int T = kind == ScheduleKind::kPipeDream || kind == ScheduleKind::kSpecTrain ? 1 : 2;
      EXPECT_LE(MaxDiff(Pipelined(su, kind, 1, T, 10, opt), Reference(su, T, 10, opt)), 1e-5)
          << ScheduleName(kind) << " " << OptimizerName(opt);
    }
}

// PipeDream: each backward ran with exactly the version its forward used,
// which lags the live version by N-1-k, and stage k held N-k versions.
TEST_F(ExecTest, PipeDreamBackwardUsesItsForwardsVersion) {
  const int N = 3;
  SegmentResult r;
  Pipelined(su, ScheduleKind::kPipeDream, N, 1, 12, OptimizerKind::kAdam, &r);
  for (int k = 0; k < N; ++k) {
    std::map<int, int64_t> fwd;
    int stale = 0;
    for (const PassRecord& p : r.passes[k]) {
      if (p.action.kind == ActionKind::kForward) {
        fwd[p.action.mini_batch] = p.version;
        stale += p.action.mini_batch - p.version == N - 1 - k;
      } else {
        EXPECT_EQ(p.version, fwd.at(p.action.mini_batch)) << "stage " << k;
        EXPECT_FALSE(p.recomputed);
      }
    }
    EXPECT_GT(stale, 0);
    EXPECT_EQ(r.versions_held[k], N - k);
  }
}

// XPipe predicts with its optimizer's direction; the error of a prediction is
// measured once its target version exists.
TEST_F(ExecTest, XPipeRecordsPredictionError) {
  SegmentResult r;
  Pipelined(su, ScheduleKind::kXPipe, 4, 2, 12, OptimizerKind::kAdam, &r);
  ASSERT_FALSE(r.prediction_errors.empty());
  for (const auto& e : r.prediction_errors) {
    EXPECT_GT(e.horizon, 0);
    EXPECT_TRUE(std::isfinite(e.ratio));
  }
  for (const auto& stage : r.passes) {
    for (const PassRecord& p : stage) {
      if (p.action.micro_batch > 0 && p.action.kind == ActionKind::kForward) {
        EXPECT_FALSE(p.recomputed);  // reuses the bellwether's weights: same key
      }
    }
  }
}

// Measuring prediction errors is a diagnostic: off, XPipe trains to the same
// weights bit for bit and reports none; adaptive prediction measures anyway,
// since its scale is fitted to them.
TEST_F(ExecTest, PredictionErrorsAreOnlyMeasuredWhenAskedOrNeeded) {
  SegmentResult measured, unmeasured, adaptive;
  const auto with = Pipelined(su, ScheduleKind::kXPipe, 3, 2, 8, OptimizerKind::kAdam, &measured);
  const auto without =
      Pipelined(su, ScheduleKind::kXPipe, 3, 2, 8, OptimizerKind::kAdam, &unmeasured, {}, false, false);
  EXPECT_FALSE(measured.prediction_errors.empty());
  EXPECT_TRUE(unmeasured.prediction_errors.empty());
  EXPECT_EQ(MaxDiff(with, without), 0.0);
  EXPECT_EQ(measured.weight_copies, unmeasured.weight_copies);
  Pipelined(su, ScheduleKind::kXPipe, 3, 2, 8, OptimizerKind::kAdam, &adaptive, {}, true, false);
  EXPECT_FALSE(adaptive.prediction_errors.empty());
}

double MeanRatio(const SegmentResult& r) {
  double sum = 0;
  for (const auto& e : r.prediction_errors) sum += e.ratio;
  return r.prediction_errors.empty() ? 0 : sum / static_cast<double>(r.prediction_errors.size());
}

// With plain SGD the last mini-batch's gradient is a noisy guess of the next
// ones, and predicting with it lands farther from the target than not
// predicting (mean error ratio > 1; 1.37 here). Adaptive prediction fits each
// stage's scale to its own predictions: where the guess is noise the best
// scale is near 0, i.e. about as good as not predicting (ratio 1; 1.01 here,
// the first predictions being made at scale 1 before any evidence).
TEST_F(ExecTest, AdaptivePredictionFadesAPredictionThatDoesNotHelp) {
  Fixture more;
  more.data = Synthetic(kBatch * 48, {1, 8, 8}, 10, 3, 12345);
  SegmentResult fixed, adaptive;
  Pipelined(more, ScheduleKind::kXPipe, 3, 4, 48, OptimizerKind::kSgd, &fixed);
  Pipelined(more, ScheduleKind::kXPipe, 3, 4, 48, OptimizerKind::kSgd, &adaptive, {}, true);
  std::printf("mean prediction error ratio: fixed %.3f, adaptive %.3f\n", MeanRatio(fixed),
              MeanRatio(adaptive));
  EXPECT_GT(MeanRatio(fixed), 1.2);
  EXPECT_LT(MeanRatio(adaptive), 1.05);
  bool faded = false;
  for (const auto& e : adaptive.prediction_errors) {
    EXPECT_GE(e.scale, 0.0);
    EXPECT_LE(e.scale, 1.0);
    faded = faded || e.scale < 0.99;
  }
  EXPECT_TRUE(faded);
}

// The least-squares scale: sum <r, p> / sum <p, p>, discounted, clamped.
TEST(PredictionScaleTest, LeastSquaresClampedAndDiscounted) {
  PredictionScale s;
  EXPECT_EQ(s.value(), 1.0);  // the papers' prediction until there is evidence
  s.Add(2.0, 4.0);            // r = p / 2
  EXPECT_DOUBLE_EQ(s.value(), 0.5);
  s.Add(-10.0, 1.0);  // the realised step went the other way
  EXPECT_EQ(s.value(), 0.0);
  PredictionScale t;
  t.Add(3.0, 1.0);  // overshooting r = 3p is clamped to 1
  EXPECT_EQ(t.value(), 1.0);
  PredictionScale u;
  u.decay = 0.5;
  u.Add(1.0, 1.0);
  u.Add(0.0, 1.0);  // (0.5 * 1 + 0) / (0.5 * 1 + 1)
  EXPECT_DOUBLE_EQ(u.value(), 0.5 / 1.5);
}

// Every model of the zoo splits into stages and trains a step to a finite loss
// with the same result however it is split.
TEST_F(ExecTest, ModelZooSplitsAndTrains) {
  const Dataset d = Synthetic(64, {1, 16, 16}, 10, 5, 12345);
  for (const std::string name : {"mlp", "cnn", "vgg", "resnet"}) {
    const Model m = MakeModel(name, d.shape, d.classes);
    torch::Tensor whole;
    for (int N : {1, 2, 4}) {
      const std::vector<Model> stages = Partition(m, N, {});
      const auto params = InitStages(stages, 9);
      torch::Tensor h = d.images.slice(0, 0, 16);
      for (int k = 0; k < N; ++k) h = ForwardStage(stages[k], h, params[k]);
      ASSERT_EQ(h.sizes(), (std::vector<int64_t>{16, 10})) << name;
      if (N == 1) whole = h;
      EXPECT_LE((h - whole).abs().max().item<double>(), 1e-5) << name << " N=" << N;
    }
  }
  EXPECT_THROW(MakeModel("transformer", {1, 16, 16}, 10), InputError);
  EXPECT_THROW(Partition(MakeModel("mlp", {1, 8, 8}, 10), 20, {}), InputError);
}

TEST(LearningRate, Schedules) {
  EXPECT_DOUBLE_EQ(LearningRate(0.1, LrSchedule::kConstant, 70, 100), 0.1);
  EXPECT_DOUBLE_EQ(LearningRate(0.1, LrSchedule::kStep, 49, 100), 0.1);
  EXPECT_DOUBLE_EQ(LearningRate(0.1, LrSchedule::kStep, 50, 100), 0.1 * 0.1);
  EXPECT_DOUBLE_EQ(LearningRate(0.1, LrSchedule::kStep, 80, 100), 0.1 * 0.01);
  EXPECT_DOUBLE_EQ(LearningRate(0.1, LrSchedule::kCosine, 0, 100), 0.1);
  EXPECT_NEAR(LearningRate(0.1, LrSchedule::kCosine, 50, 100), 0.05, 1e-12);
  EXPECT_NEAR(LearningRate(0.1, LrSchedule::kCosine, 100, 100), 0.0, 1e-12);
}

TEST_F(ExecTest, NanLossStopsWithStageAndStep) {
  TrainConfig c;
  c.model = "mlp";
  c.data = "synthetic";
  c.schedule = ScheduleKind::kGPipe;
  c.stages = 2;
  c.micro_batches = 2;
  c.batch_size = 32;
  c.synthetic_samples = 512;
  c.optimizer.kind = OptimizerKind::kSgd;
  c.optimizer.lr = 1e30;
  c.evaluate = false;
  try {
    Train(c);
    FAIL() << "expected TrainingError";
  } catch (const TrainingError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("stage 1 action 1F"), std::string::npos) << what;
    EXPECT_TRUE(what.find("loss is NaN") != std::string::npos ||
                what.find("loss is Inf") != std::string::npos)
        << what;
  }
}

// A transport that posts its receives K passes ahead (as Gloo's does) gets,
// when a pass waits for its input, the receives of that pass and of the next
// K-1 passes posted, and no more: counted from the lowered schedule's rows.
class AheadTransport : public Transport {
 public:
  AheadTransport(std::unique_ptr<Transport> inner, int ahead) : inner_(std::move(inner)), ahead_(ahead) {}
  int rank() const override { return inner_->rank(); }
  std::unique_ptr<Pending> Send(const torch::Tensor& t, int dst) override { return inner_->Send(t, dst); }
  std::unique_ptr<Pending> Recv(const std::vector<int64_t>& shape, torch::Device device, int src) override {
    return std::make_unique<Counted>(inner_->Recv(shape, device, src), *this);
  }
  int ReceivesAhead() const override { return ahead_; }
  int posted = 0;
  std::vector<int> posted_at_wait;  // per receive, in posting order

 private:
  class Counted : public Pending {
   public:
    Counted(std::unique_ptr<Pending> p, AheadTransport& t) : p_(std::move(p)), t_(t), index_(t.posted++) {}
    torch::Tensor Wait() override {
      if (t_.posted_at_wait.size() <= static_cast<std::size_t>(index_))
        t_.posted_at_wait.resize(index_ + 1, -1);
      t_.posted_at_wait[index_] = t_.posted;
      return p_->Wait();
    }
    bool Done() override { return p_->Done(); }

   private:
    std::unique_ptr<Pending> p_;
    AheadTransport& t_;
    int index_;
  };
  std::unique_ptr<Transport> inner_;
  int ahead_;
};

TEST_F(ExecTest, ReceivesArePostedAsManyPassesAheadAsTheTransportAsks) {
  for (ScheduleKind kind : {ScheduleKind::kGPipe, ScheduleKind::kOneFOneBFlush, ScheduleKind::kXPipe})
    for (int ahead : {1, 3}) {
      ScheduleParams p;
      p.kind = kind;
      p.devices = 3;
      p.micro_batches = 4;
      p.mini_batches = 2;
      const Schedule s = MakeSchedule(p);
      const auto hub = MakeInProcessHub(s.num_devices);
      std::vector<std::unique_ptr<AheadTransport>> transports;
      for (int d = 0; d < s.num_devices; ++d)
        transports.push_back(std::make_unique<AheadTransport>(hub->Endpoint(d), ahead));
      std::vector<std::thread> ranks;
      for (int d = 0; d < s.num_devices; ++d)
        ranks.emplace_back([&, d] {
          torch::set_num_threads(1);
          ExecConfig c;
          c.stages = Partition(su.model, s.num_stages, {});
          c.devices.assign(s.num_stages, torch::kCPU);
          c.sample_output_shapes = SampleOutputShapes(c.stages, {1, 8, 8});
          c.micro_batch_size = kBatch / 4;
          c.optimizer = Opt(OptimizerKind::kAdam);
          c.local_ranks = {d};
          c.stage_rank = s.stage_device;
          Executor ex(c, InitStages(c.stages, 1));
          ex.Run(s, su.Fn(4), 0, transports[d].get());
        });
      for (auto& t : ranks) t.join();
      // The oracle: in each lowered row, a RECV belongs to the pass after it;
      // while pass q waits, those of passes up to q + ahead - 1 are posted.
      const Schedule lowered = LowerCommunication(s);
      for (int d = 0; d < s.num_devices; ++d) {
        std::vector<int> recvs_before;  // per pass: RECVs in the row before it
        int recvs = 0;
        std::vector<int> pass_of_recv;
        for (const Action& a : lowered.device_actions[d]) {
          if (a.kind == ActionKind::kRecvF || a.kind == ActionKind::kRecvB) {
            ++recvs;
            pass_of_recv.push_back(static_cast<int>(recvs_before.size()));
          }
          if (IsCompute(a.kind)) recvs_before.push_back(recvs);
        }
        const auto& seen = transports[d]->posted_at_wait;
        ASSERT_EQ(static_cast<int>(seen.size()), recvs) << ScheduleName(kind) << " device " << d;
        for (int j = 0; j < recvs; ++j) {
          const int last = pass_of_recv[j] + ahead - 1;
          const int expected =
              last + 1 < static_cast<int>(recvs_before.size()) ? recvs_before[last + 1] : recvs;
          EXPECT_EQ(seen[j], expected)
              << ScheduleName(kind) << " ahead " << ahead << " device " << d << " receive " << j;
        }
      }
    }
}

}  // namespace
}  // namespace xpipe::exec
