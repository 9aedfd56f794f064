// Model zoo for the executor, as functional layers: each layer declares its
// parameter shapes and computes its output from an input and an explicit list
// of weight tensors. A pass can therefore run with any weight version (live,
// stashed, double-buffered or predicted) without touching module state, and
// autograd gives the gradient with respect to exactly the weights it used.
//
// A model is a sequence of layers (an nn::Sequential in spirit); a stage is a
// contiguous range of them (Partition). Not thread-safe per instance; each
// stage worker owns its range.
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

namespace xpipe::exec {

class Layer {
 public:
  virtual ~Layer() = default;
  virtual std::string Name() const = 0;
  // Fresh parameters, drawn from `gen` (deterministic for a seed).
  virtual std::vector<torch::Tensor> Init(torch::Generator& /*gen*/) const { return {}; }
  virtual std::size_t NumParams() const { return 0; }
  // Multiply-accumulates of one forward from `in` to `out` (elementwise
  // layers: one per output element); the partitioner's deterministic cost.
  virtual int64_t Macs(const torch::Tensor& /*in*/, const torch::Tensor& out) const { return out.numel(); }
  // REQUIRES: params.size() == Init(...).size(), same shapes.
  virtual torch::Tensor Forward(const torch::Tensor& x, const std::vector<torch::Tensor>& params) const = 0;
};

using Model = std::vector<std::shared_ptr<const Layer>>;

// Names: mlp, cnn (LeNet-style), vgg (CIFAR-size VGG), resnet (CIFAR-size
// ResNet). input_shape is {C, H, W}; classes the output width.
// Throws InputError("--model", ...) for an unknown name.
Model MakeModel(const std::string& name, const std::vector<int64_t>& input_shape, int64_t classes);

// Splits layers into stages of the given sizes; empty = as even as possible.
// Throws InputError("--partition", ...) when sizes do not cover the model.
std::vector<Model> Partition(const Model& model, int stages, const std::vector<int>& sizes);

// Initial parameters of each stage, drawn in layer order from one generator
// seeded with `seed`, so the split does not change the initial model.
std::vector<std::vector<torch::Tensor>> InitStages(const std::vector<Model>& stages, uint64_t seed);

// Runs a stage's layers. `params` holds every layer's parameters in order.
torch::Tensor ForwardStage(const Model& stage, const torch::Tensor& x,
                           const std::vector<torch::Tensor>& params);

}  // namespace xpipe::exec
