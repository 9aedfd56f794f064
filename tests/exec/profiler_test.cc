// The profiler's inputs: what each timed iteration computes on.
#include "exec/profiler.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <vector>

#include "exec/model.h"

namespace xpipe::exec {
namespace {

// y = x * w: one parameter, so the profiler times a backward too; notes the
// first element of every input its forward is given.
class NotingLayer : public Layer {
 public:
  explicit NotingLayer(std::shared_ptr<std::vector<float>> seen) : seen_(std::move(seen)) {}
  std::string Name() const override { return "Noting"; }
  std::vector<torch::Tensor> Init(torch::Generator& /*gen*/) const override { return {torch::ones({1})}; }
  std::size_t NumParams() const override { return 1; }
  torch::Tensor Forward(const torch::Tensor& x, const std::vector<torch::Tensor>& params) const override {
    seen_->push_back(x.flatten()[0].item<float>());
    return x * params[0];
  }

 private:
  std::shared_ptr<std::vector<float>> seen_;
};

TEST(ProfilerTest, EachIterationTakesTheNextInputInTurn) {
  // Three distinct micro-batches, filled with 1, 2 and 3; 2 warm-up and 5
  // timed iterations must see 1 2 3 1 2 3 1, as a pipeline's passes each
  // take the next micro-batch (the same one every time would stay cached).
  auto seen = std::make_shared<std::vector<float>>();
  const Model model = {std::make_shared<NotingLayer>(seen)};
  std::vector<torch::Tensor> inputs;
  for (int j = 1; j <= 3; ++j) inputs.push_back(torch::full({4, 10}, static_cast<float>(j)));
  ProfileOptions o;
  o.warmup = 2;
  o.repeats = 5;
  const Profile p = ProfileModel("noting", model, inputs, o);
  const std::vector<float> expected = {1, 2, 3, 1, 2, 3, 1};
  EXPECT_EQ(*seen, expected);
  ASSERT_EQ(p.layers.size(), 1U);
  EXPECT_EQ(p.batch_size, 4);
  EXPECT_EQ(p.layers[0].activation_bytes, 4 * 10 * static_cast<Bytes>(sizeof(float)));
}

// Spins for the next of a list of durations each forward (as a layer's pass
// that is sometimes slow), so the profile's figure can be told from them.
class ScriptedLayer : public Layer {
 public:
  explicit ScriptedLayer(std::vector<double> ms) : ms_(std::move(ms)) {}
  std::string Name() const override { return "Scripted"; }
  std::vector<torch::Tensor> Init(torch::Generator& /*gen*/) const override { return {torch::ones({1})}; }
  std::size_t NumParams() const override { return 1; }
  torch::Tensor Forward(const torch::Tensor& x, const std::vector<torch::Tensor>& params) const override {
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::microseconds(static_cast<int64_t>(1000 * ms_[calls_++ % ms_.size()]));
    while (std::chrono::steady_clock::now() < until) {
    }
    return x * params[0];
  }

 private:
  std::vector<double> ms_;
  mutable std::size_t calls_ = 0;
};

TEST(ProfilerTest, ALayersTimeIsTheMeanOfItsIterations) {
  // One warm-up of 1 ms, then 1, 1, 1, 1 and 41 ms: the mean is at least 9
  // ms (each spin lasts at least its time; preemption on a busy machine only
  // adds), the median about 1 ms. A pipeline of such passes takes 9 ms per
  // pass on average.
  const Model model = {std::make_shared<ScriptedLayer>(std::vector<double>{1, 1, 1, 1, 1, 41})};
  ProfileOptions o;
  o.warmup = 1;
  o.repeats = 5;
  const Profile p = ProfileModel("scripted", model, {torch::ones({4, 10})}, o);
  ASSERT_EQ(p.layers.size(), 1U);
  EXPECT_GE(p.layers[0].forward_ns, 9'000'000);
}

TEST(ProfilerTest, OneInputIsEveryIterations) {
  auto seen = std::make_shared<std::vector<float>>();
  const Model model = {std::make_shared<NotingLayer>(seen)};
  ProfileOptions o;
  o.warmup = 1;
  o.repeats = 3;
  (void)ProfileModel("noting", model, {torch::full({2, 3}, 7.0F)}, o);
  EXPECT_EQ(*seen, std::vector<float>(4, 7.0F));
}

TEST(ProfilerTest, ContentionLeavesTheCallersCoresAsTheyWere) {
  // It pins its two threads to two cores while it measures; the caller (a
  // profile, then a whole validate run) must get its own cores back.
  cpu_set_t before, after;
  CPU_ZERO(&before);
  CPU_ZERO(&after);
  ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(before), &before), 0);
  const Model model = MakeModel("mlp", {1, 8, 8}, 10);
  ProfileOptions o;
  o.warmup = 1;
  o.repeats = 3;
  (void)MeasureContention(model, torch::randn({4, 1, 8, 8}), o);
  ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(after), &after), 0);
  EXPECT_TRUE(CPU_EQUAL(&before, &after))
      << CPU_COUNT(&before) << " cores allowed before, " << CPU_COUNT(&after) << " after";
}

}  // namespace
}  // namespace xpipe::exec
