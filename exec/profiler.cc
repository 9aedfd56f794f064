#include "exec/profiler.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <limits>

#include "common/cluster.h"
#include "common/partition.h"

namespace xpipe::exec {
namespace {

TimeNs Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Profile ProfileModel(const std::string& name, const Model& model, const torch::Tensor& sample, int repeats) {
  Profile p;
  p.name = name;
  p.source = "measured by xpipe's profiler (best of " + std::to_string(repeats) + " after a warm-up)";
  p.hardware = sample.device().is_cuda() ? "CUDA device" : "CPU, one thread";
  p.batch_size = static_cast<int>(sample.size(0));
  const std::vector<Model> layers = Partition(model, static_cast<int>(model.size()), {});
  const auto params = InitStages(layers, 0);
  torch::Tensor x = sample;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    std::vector<torch::Tensor> w;
    for (const auto& t : params[i]) w.push_back(t.to(sample.device()));
    xpipe::Layer out;
    out.name = "layer" + std::to_string(i);
    out.op = layers[i][0]->Name();
    out.forward_ns = out.backward_ns = std::numeric_limits<TimeNs>::max();
    torch::Tensor y;
    for (int r = 0; r <= repeats; ++r) {  // r == 0 warms up
      const torch::Tensor in = x.detach().requires_grad_(i > 0);
      std::vector<torch::Tensor> leaves;
      for (const auto& t : w) leaves.push_back(t.detach().requires_grad_(true));
      auto t0 = std::chrono::steady_clock::now();
      y = ForwardStage(layers[i], in, leaves);
      const TimeNs f = Since(t0);
      std::vector<torch::Tensor> inputs = leaves;
      if (i > 0) inputs.push_back(in);
      t0 = std::chrono::steady_clock::now();
      if (!inputs.empty())
        torch::autograd::grad({y}, inputs, {torch::ones_like(y)}, false, false, /*allow_unused=*/true);
      const TimeNs b = Since(t0);
      if (r > 0) out.forward_ns = std::min(out.forward_ns, f), out.backward_ns = std::min(out.backward_ns, b);
    }
    out.activation_bytes = y.numel() * static_cast<Bytes>(y.element_size());
    for (const auto& t : w) out.parameter_bytes += t.numel() * static_cast<Bytes>(t.element_size());
    p.layers.push_back(out);
    x = y.detach();
  }
  return p;
}

Profile CountedProfile(const std::string& name, const Model& model, const torch::Tensor& sample) {
  torch::NoGradGuard no_grad;
  Profile p;
  p.name = name;
  p.source = "multiply-accumulates counted by xpipe (1 per ns), backward = 2 x forward";
  p.hardware = "none (counted, not timed)";
  p.batch_size = static_cast<int>(sample.size(0));
  const std::vector<Model> layers = Partition(model, static_cast<int>(model.size()), {});
  const auto params = InitStages(layers, 0);
  torch::Tensor x = sample;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const torch::Tensor y = ForwardStage(layers[i], x, params[i]);
    xpipe::Layer out;
    out.name = "layer" + std::to_string(i);
    out.op = layers[i][0]->Name();
    out.forward_ns = layers[i][0]->Macs(x, y);
    out.backward_ns = 2 * out.forward_ns;
    out.activation_bytes = y.numel() * static_cast<Bytes>(y.element_size());
    for (const auto& t : params[i]) out.parameter_bytes += t.numel() * static_cast<Bytes>(t.element_size());
    p.layers.push_back(out);
    x = y;
  }
  return p;
}

std::vector<int> BalancedPartition(const Profile& profile, int stages) {
  Cluster in_memory;  // hand-offs between threads: no link cost
  in_memory.link_bytes_per_sec = 1e18;
  in_memory.link_latency_ns = 0;
  PartitionRequest r;
  r.stages = stages;
  r.micro_batch_size = profile.batch_size;
  r.cluster = &in_memory;
  return AutoPartition(profile, r).layers_per_stage;
}

}  // namespace xpipe::exec
