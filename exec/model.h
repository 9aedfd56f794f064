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

// A small decoder-only transformer (GPT-2's layout: pre-norm blocks of causal
// self-attention and a GeLU MLP, learnt positions, an untied LM head).
struct GptOptions {
  int64_t layers = 2, hidden = 64, heads = 4;
  int64_t ffn = 0;  // 0 = 4 x hidden
};

// Names: mlp, cnn (LeNet-style), vgg (CIFAR-size VGG), resnet (CIFAR-size
// ResNet): input_shape is {C, H, W} of float images, classes the output
// width. gpt: input_shape is {sequence length} of token ids, classes the
// vocabulary; layers are the embedding, one per block, and the head, whose
// output is [batch, vocabulary, sequence] (cross_entropy's layout).
// Throws InputError("--model", ...) for an unknown name.
Model MakeModel(const std::string& name, const std::vector<int64_t>& input_shape, int64_t classes,
                const GptOptions& gpt = {});

// Samples predicted right: for a sequence, the fraction of its positions.
double CorrectSamples(const torch::Tensor& logits, const torch::Tensor& labels);
// Labels of the right shape for a timing run: logits' shape without dim 1.
torch::Tensor ZeroLabels(const torch::Tensor& logits);

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
