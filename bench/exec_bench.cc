// The executor's own costs (counter "units": actions, hand-offs or MiB per
// iteration), each with the reference bench/run.sh divides it by (measured in the same run, so the ratio
// holds on a noisy machine):
//  - per action: 2 stages of the small MLP on 1-sample micro-batches, GPipe,
//    wall time / actions; reference: one hand-off between two threads over a
//    mutex and a condition variable (what any threaded pipeline pays);
//  - hand-off: one tensor sent and received through the in-process transport;
//    reference: the same thread ping-pong;
//  - weight swap and prediction per MiB of weights (W - lr * s * D, Adam);
//    reference: a memcpy of the same bytes.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "common/generators.h"
#include "exec/data.h"
#include "exec/executor.h"
#include "exec/model.h"
#include "exec/optimizer.h"
#include "exec/transport.h"

namespace xpipe::exec {
namespace {

void BM_ExecutorPerAction(benchmark::State& state) {
  torch::set_num_threads(1);
  const int T = 16, M = 8;
  const Dataset data = Synthetic(static_cast<int64_t>(T) * M, {1, 8, 8}, 10, 3, 12345);
  const Model model = MakeModel("mlp", {1, 8, 8}, 10);
  ScheduleParams p;
  p.kind = ScheduleKind::kGPipe;
  p.devices = 2;
  p.micro_batches = T;
  p.mini_batches = M;
  const Schedule s = MakeSchedule(p);
  ExecConfig c;
  c.stages = Partition(model, 2, {});
  c.devices.assign(2, torch::kCPU);
  c.sample_output_shapes = SampleOutputShapes(c.stages, {1, 8, 8});
  c.micro_batch_size = 1;
  Executor ex(c, InitStages(c.stages, 1));
  const MicroBatchFn fn = [&](int64_t b, int j) {
    const int64_t i = b * T + j;
    return std::make_pair(data.images.slice(0, i, i + 1), data.labels.slice(0, i, i + 1));
  };
  for (auto _ : state) benchmark::DoNotOptimize(ex.Run(s, fn, 0).loss.data());
  state.counters["units"] = static_cast<double>(s.NumActions());  // per iteration, for bench/run.sh
}

void BM_HandOff(benchmark::State& state) {
  const auto hub = MakeInProcessHub(2);
  auto a = hub->Endpoint(0), b = hub->Endpoint(1);
  const torch::Tensor t = torch::ones({32, 64});
  std::thread echo([&] {
    for (;;) {
      const torch::Tensor got = b->Recv({32, 64}, torch::kCPU, 0)->Wait();
      if (got.data_ptr<float>()[0] < 0) return;  // the stop message
      b->Send(got, 0)->Wait();
    }
  });
  for (auto _ : state) {
    a->Send(t, 1)->Wait();
    benchmark::DoNotOptimize(a->Recv({32, 64}, torch::kCPU, 1)->Wait().data_ptr());
  }
  const torch::Tensor stop = torch::full({32, 64}, -1.0);
  a->Send(stop, 1)->Wait();
  echo.join();
  state.counters["units"] = 2;  // hand-offs per iteration
}

// Reference for both above: a value passed to another thread and back.
void BM_ThreadPingPong(benchmark::State& state) {
  std::mutex m;
  std::condition_variable cv;
  int turn = 0;  // 0: main's, 1: the echo thread's, 2: stop
  std::thread echo([&] {
    std::unique_lock<std::mutex> l(m);
    for (;;) {
      cv.wait(l, [&] { return turn != 0; });
      if (turn == 2) return;
      turn = 0;
      cv.notify_all();
    }
  });
  for (auto _ : state) {
    std::unique_lock<std::mutex> l(m);
    turn = 1;
    cv.notify_all();
    cv.wait(l, [&] { return turn == 0; });
  }
  {
    std::lock_guard<std::mutex> l(m);
    turn = 2;
  }
  cv.notify_all();
  echo.join();
  state.counters["units"] = 2;  // hand-offs per iteration
}

std::vector<torch::Tensor> Weights(int64_t mib) {
  torch::manual_seed(1);
  // Shaped like a layer's weight and bias, 1 MiB = 262144 floats.
  return {torch::randn({mib * 256, 1023}), torch::randn({mib * 256})};
}

void BM_WeightSwap(benchmark::State& state) {
  torch::set_num_threads(1);
  const auto src = Weights(state.range(0));
  std::vector<torch::Tensor> dst;
  dst.reserve(src.size());
  for (const auto& t : src) dst.push_back(torch::empty_like(t));
  for (auto _ : state)
    for (std::size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
  state.counters["units"] = static_cast<double>(state.range(0));  // MiB per iteration
}

void BM_Prediction(benchmark::State& state) {
  torch::set_num_threads(1);
  auto w = Weights(state.range(0));
  OptimizerConfig oc;
  oc.kind = OptimizerKind::kAdam;
  Optimizer opt(oc, w);
  std::vector<torch::Tensor> g;
  g.reserve(w.size());
  for (const auto& t : w) g.push_back(torch::randn_like(t));
  opt.Step(w, g, 1e-3);  // a state to predict from
  for (auto _ : state) benchmark::DoNotOptimize(Predict(opt, w, 1e-3, 3).front().data_ptr());
  state.counters["units"] = static_cast<double>(state.range(0));  // MiB per iteration
}

// Reference for swap and prediction: the same bytes, copied.
void BM_Memcpy(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0)) * (1 << 20);
  std::vector<char> src(bytes, 1), dst(bytes);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), bytes);
    benchmark::ClobberMemory();
  }
  state.counters["units"] = static_cast<double>(state.range(0));  // MiB per iteration
}

BENCHMARK(BM_ExecutorPerAction)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_HandOff)->UseRealTime()->MinTime(0.5);
BENCHMARK(BM_ThreadPingPong)->UseRealTime()->MinTime(0.5);
BENCHMARK(BM_WeightSwap)->Arg(16)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Prediction)->Arg(16)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Memcpy)->Arg(16)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace xpipe::exec

BENCHMARK_MAIN();
