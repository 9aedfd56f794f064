#include "exec/model.h"

#include <torch/torch.h>

#include <cmath>

#include "common/error.h"

namespace xpipe::exec {
namespace {

namespace F = torch::nn::functional;

// Kaiming-uniform weights, uniform bias, as torch.nn's defaults.
torch::Tensor Uniform(torch::Generator& gen, const std::vector<int64_t>& shape, double bound) {
  return torch::rand(shape, gen, torch::kFloat32) * (2 * bound) - bound;
}

class Linear : public Layer {
 public:
  Linear(int64_t in, int64_t out) : in_(in), out_(out) {}
  std::string Name() const override {
    return "Linear(" + std::to_string(in_) + "," + std::to_string(out_) + ")";
  }
  std::size_t NumParams() const override { return 2; }
  int64_t Macs(const torch::Tensor&, const torch::Tensor& out) const override { return out.numel() * in_; }
  std::vector<torch::Tensor> Init(torch::Generator& gen) const override {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_));
    return {Uniform(gen, {out_, in_}, bound), Uniform(gen, {out_}, bound)};
  }
  torch::Tensor Forward(const torch::Tensor& x, const std::vector<torch::Tensor>& p) const override {
    return torch::linear(x, p[0], p[1]);
  }

 private:
  int64_t in_, out_;
};

class Conv : public Layer {
 public:
  Conv(int64_t in, int64_t out, int64_t k, int64_t pad) : in_(in), out_(out), k_(k), pad_(pad) {}
  std::string Name() const override {
    return "Conv2d(" + std::to_string(in_) + "," + std::to_string(out_) + ")";
  }
  std::size_t NumParams() const override { return 2; }
  int64_t Macs(const torch::Tensor&, const torch::Tensor& out) const override {
    return out.numel() * in_ * k_ * k_;
  }
  std::vector<torch::Tensor> Init(torch::Generator& gen) const override {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_ * k_ * k_));
    return {Uniform(gen, {out_, in_, k_, k_}, bound), Uniform(gen, {out_}, bound)};
  }
  torch::Tensor Forward(const torch::Tensor& x, const std::vector<torch::Tensor>& p) const override {
    return torch::conv2d(x, p[0], p[1], /*stride=*/1, /*padding=*/pad_);
  }

 private:
  int64_t in_, out_, k_, pad_;
};

class Relu : public Layer {
 public:
  std::string Name() const override { return "ReLU"; }
  torch::Tensor Forward(const torch::Tensor& x, const std::vector<torch::Tensor>&) const override {
    return torch::relu(x);
  }
};

class MaxPool : public Layer {
 public:
  std::string Name() const override { return "MaxPool2d(2)"; }
  torch::Tensor Forward(const torch::Tensor& x, const std::vector<torch::Tensor>&) const override {
    return torch::max_pool2d(x, 2);
  }
};

class Flatten : public Layer {
 public:
  std::string Name() const override { return "Flatten"; }
  torch::Tensor Forward(const torch::Tensor& x, const std::vector<torch::Tensor>&) const override {
    return x.flatten(1);
  }
};

class GlobalAvgPool : public Layer {
 public:
  std::string Name() const override { return "GlobalAvgPool"; }
  torch::Tensor Forward(const torch::Tensor& x, const std::vector<torch::Tensor>&) const override {
    return x.mean({2, 3});
  }
};

// Two 3x3 convolutions with an identity (or 1x1 projection) shortcut; no
// batch norm, so a stage has no running statistics to version. The second
// convolution starts small so deep stacks train from the start.
class Residual : public Layer {
 public:
  Residual(int64_t in, int64_t out) : in_(in), out_(out) {}
  std::string Name() const override {
    return "Residual(" + std::to_string(in_) + "," + std::to_string(out_) + ")";
  }
  std::size_t NumParams() const override { return in_ != out_ ? 6 : 4; }
  int64_t Macs(const torch::Tensor&, const torch::Tensor& out) const override {
    return out.numel() * (9 * in_ + 9 * out_ + (in_ != out_ ? in_ : 0));
  }
  std::vector<torch::Tensor> Init(torch::Generator& gen) const override {
    std::vector<torch::Tensor> p = Conv(in_, out_, 3, 1).Init(gen);
    for (auto& t : Conv(out_, out_, 3, 1).Init(gen)) p.push_back(t * 0.1);
    if (in_ != out_)
      for (auto& t : Conv(in_, out_, 1, 0).Init(gen)) p.push_back(t);
    return p;
  }
  torch::Tensor Forward(const torch::Tensor& x, const std::vector<torch::Tensor>& p) const override {
    torch::Tensor h = torch::relu(torch::conv2d(x, p[0], p[1], 1, 1));
    h = torch::conv2d(h, p[2], p[3], 1, 1);
    const torch::Tensor skip = in_ != out_ ? torch::conv2d(x, p[4], p[5]) : x;
    return torch::relu(h + skip);
  }

 private:
  int64_t in_, out_;
};

// GPT-2's initialisation: weights N(0, 0.02), biases 0, layer norms 1 and 0.
torch::Tensor Normal(torch::Generator& gen, const std::vector<int64_t>& shape) {
  return torch::randn(shape, gen, torch::kFloat32) * 0.02;
}

// Token and learnt position embeddings: ids [b, s] -> [b, s, h].
class Embedding : public Layer {
 public:
  Embedding(int64_t vocab, int64_t seq, int64_t hidden) : vocab_(vocab), seq_(seq), hidden_(hidden) {}
  std::string Name() const override {
    return "Embedding(" + std::to_string(vocab_) + "," + std::to_string(hidden_) + ")";
  }
  std::size_t NumParams() const override { return 2; }
  std::vector<torch::Tensor> Init(torch::Generator& gen) const override {
    return {Normal(gen, {vocab_, hidden_}), Normal(gen, {seq_, hidden_})};
  }
  torch::Tensor Forward(const torch::Tensor& ids, const std::vector<torch::Tensor>& p) const override {
    return torch::embedding(p[0], ids) + p[1].slice(0, 0, ids.size(1));
  }

 private:
  int64_t vocab_, seq_, hidden_;
};

// x + attention(ln1(x)), then + mlp(ln2(x)); attention causal, heads a.
class Block : public Layer {
 public:
  Block(int64_t hidden, int64_t heads, int64_t ffn) : h_(hidden), a_(heads), f_(ffn) {}
  std::string Name() const override {
    return "Block(h=" + std::to_string(h_) + ",heads=" + std::to_string(a_) + ")";
  }
  std::size_t NumParams() const override { return 12; }
  int64_t Macs(const torch::Tensor& in, const torch::Tensor&) const override {
    const int64_t tokens = in.size(0) * in.size(1), s = in.size(1);
    return tokens * (4 * h_ * h_ + 2 * h_ * f_) + 2 * in.size(0) * s * s * h_;
  }
  std::vector<torch::Tensor> Init(torch::Generator& gen) const override {
    const auto ones = [](int64_t n) { return torch::ones({n}); };
    const auto zeros = [](int64_t n) { return torch::zeros({n}); };
    return {ones(h_), zeros(h_), Normal(gen, {3 * h_, h_}), zeros(3 * h_), Normal(gen, {h_, h_}), zeros(h_),
            ones(h_), zeros(h_), Normal(gen, {f_, h_}),     zeros(f_),     Normal(gen, {h_, f_}), zeros(h_)};
  }
  torch::Tensor Forward(const torch::Tensor& x, const std::vector<torch::Tensor>& p) const override {
    const int64_t b = x.size(0), s = x.size(1), dh = h_ / a_;
    const torch::Tensor qkv = torch::linear(torch::layer_norm(x, {h_}, p[0], p[1]), p[2], p[3]);
    const auto heads = [&](const torch::Tensor& t) { return t.view({b, s, a_, dh}).transpose(1, 2); };
    const std::vector<torch::Tensor> parts = qkv.chunk(3, 2);
    const torch::Tensor q = heads(parts[0]), k = heads(parts[1]), v = heads(parts[2]);
    const torch::Tensor future = torch::ones({s, s}, torch::kBool).triu(1).to(x.device());
    const torch::Tensor scores =
        q.matmul(k.transpose(-2, -1)).div(std::sqrt(static_cast<double>(dh))).masked_fill(future, -1e9);
    const torch::Tensor attended = torch::softmax(scores, -1).matmul(v).transpose(1, 2).reshape({b, s, h_});
    const torch::Tensor y = x + torch::linear(attended, p[4], p[5]);
    const torch::Tensor m = torch::gelu(torch::linear(torch::layer_norm(y, {h_}, p[6], p[7]), p[8], p[9]));
    return y + torch::linear(m, p[10], p[11]);
  }

 private:
  int64_t h_, a_, f_;
};

// Final layer norm and projection to the vocabulary: [b, s, h] -> [b, V, s].
class LmHead : public Layer {
 public:
  LmHead(int64_t hidden, int64_t vocab) : h_(hidden), vocab_(vocab) {}
  std::string Name() const override {
    return "LmHead(" + std::to_string(h_) + "," + std::to_string(vocab_) + ")";
  }
  std::size_t NumParams() const override { return 3; }
  int64_t Macs(const torch::Tensor& in, const torch::Tensor&) const override {
    return in.size(0) * in.size(1) * h_ * vocab_;
  }
  std::vector<torch::Tensor> Init(torch::Generator& gen) const override {
    return {torch::ones({h_}), torch::zeros({h_}), Normal(gen, {vocab_, h_})};
  }
  torch::Tensor Forward(const torch::Tensor& x, const std::vector<torch::Tensor>& p) const override {
    return torch::linear(torch::layer_norm(x, {h_}, p[0], p[1]), p[2]).transpose(1, 2);
  }

 private:
  int64_t h_, vocab_;
};

template <typename T, typename... A>
std::shared_ptr<const Layer> L(A... a) {
  return std::make_shared<const T>(a...);
}

}  // namespace

Model MakeModel(const std::string& name, const std::vector<int64_t>& shape, int64_t classes,
                const GptOptions& gpt) {
  if (name == "gpt") {
    if (shape.size() != 1) throw InputError("--model", "gpt reads token sequences: use --data text:FILE");
    if (gpt.layers < 1 || gpt.hidden < 1 || gpt.heads < 1 || gpt.hidden % gpt.heads != 0)
      throw InputError("--gpt-heads", std::to_string(gpt.heads) + " heads must divide the hidden size " +
                                          std::to_string(gpt.hidden) + " (and every size be positive)");
    Model m = {L<Embedding>(classes, shape[0], gpt.hidden)};
    for (int64_t i = 0; i < gpt.layers; ++i)
      m.push_back(L<Block>(gpt.hidden, gpt.heads, gpt.ffn > 0 ? gpt.ffn : 4 * gpt.hidden));
    m.push_back(L<LmHead>(gpt.hidden, classes));
    return m;
  }
  if (shape.size() != 3)
    throw InputError("--model", "'" + name + "' classifies images; text needs --model gpt");
  const int64_t C = shape[0], H = shape[1], W = shape[2];
  if (name == "mlp")
    return {L<Flatten>(), L<Linear>(C * H * W, 128), L<Relu>(), L<Linear>(128, 64),
            L<Relu>(),    L<Linear>(64, 32),         L<Relu>(), L<Linear>(32, classes)};
  if (name == "cnn")  // LeNet-style
    return {L<Conv>(C, 16, 5, 2),
            L<Relu>(),
            L<MaxPool>(),
            L<Conv>(16, 32, 5, 2),
            L<Relu>(),
            L<MaxPool>(),
            L<Flatten>(),
            L<Linear>(32 * (H / 4) * (W / 4), 128),
            L<Relu>(),
            L<Linear>(128, 64),
            L<Relu>(),
            L<Linear>(64, classes)};
  if (name == "vgg")  // CIFAR-size VGG: 3 blocks of two 3x3 convolutions
    return {L<Conv>(C, 32, 3, 1),
            L<Relu>(),
            L<Conv>(32, 32, 3, 1),
            L<Relu>(),
            L<MaxPool>(),
            L<Conv>(32, 64, 3, 1),
            L<Relu>(),
            L<Conv>(64, 64, 3, 1),
            L<Relu>(),
            L<MaxPool>(),
            L<Conv>(64, 128, 3, 1),
            L<Relu>(),
            L<Conv>(128, 128, 3, 1),
            L<Relu>(),
            L<MaxPool>(),
            L<Flatten>(),
            L<Linear>(128 * (H / 8) * (W / 8), 256),
            L<Relu>(),
            L<Linear>(256, classes)};
  if (name == "resnet")  // CIFAR-size ResNet: stem, 3 stages of 2 blocks
    return {L<Conv>(C, 16, 3, 1), L<Relu>(),           L<Residual>(16, 16), L<Residual>(16, 16),
            L<MaxPool>(),         L<Residual>(16, 32), L<Residual>(32, 32), L<MaxPool>(),
            L<Residual>(32, 64),  L<Residual>(64, 64), L<GlobalAvgPool>(),  L<Linear>(64, classes)};
  throw InputError("--model", "unknown model '" + name + "' (expected mlp, cnn, vgg, resnet, gpt)");
}

double CorrectSamples(const torch::Tensor& logits, const torch::Tensor& labels) {
  return logits.argmax(1)
      .eq(labels)
      .to(torch::kFloat64)
      .reshape({labels.size(0), -1})
      .mean(1)
      .sum()
      .item<double>();
}

torch::Tensor ZeroLabels(const torch::Tensor& logits) {
  std::vector<int64_t> shape = logits.sizes().vec();
  shape.erase(shape.begin() + 1);
  return torch::zeros(shape, torch::TensorOptions().dtype(torch::kLong).device(logits.device()));
}

std::vector<Model> Partition(const Model& model, int stages, const std::vector<int>& sizes) {
  const int L = static_cast<int>(model.size());
  if (stages < 1) throw InputError("--stages", "must be at least 1");
  if (stages > L)
    throw InputError("--stages", std::to_string(stages) + " stages but the model has only " +
                                     std::to_string(L) + " layers");
  std::vector<int> parts = sizes;
  if (parts.empty()) {
    for (int k = 0; k < stages; ++k) parts.push_back(L / stages + (k < L % stages ? 1 : 0));
  } else {
    if (static_cast<int>(parts.size()) != stages)
      throw InputError("--partition",
                       "has " + std::to_string(parts.size()) + " stages, expected " + std::to_string(stages));
    int total = 0;
    for (int n : parts) {
      if (n < 1) throw InputError("--partition", "every stage needs at least one layer");
      total += n;
    }
    if (total != L)
      throw InputError("--partition",
                       "covers " + std::to_string(total) + " of " + std::to_string(L) + " layers");
  }
  std::vector<Model> out;
  int first = 0;
  for (int n : parts) {
    out.emplace_back(model.begin() + first, model.begin() + first + n);
    first += n;
  }
  return out;
}

std::vector<std::vector<torch::Tensor>> InitStages(const std::vector<Model>& stages, uint64_t seed) {
  torch::Generator gen = at::detail::createCPUGenerator(seed);
  std::vector<std::vector<torch::Tensor>> out;
  for (const Model& stage : stages) {
    auto& params = out.emplace_back();
    for (const auto& layer : stage)
      for (auto& t : layer->Init(gen)) params.push_back(t.contiguous());
  }
  return out;
}

torch::Tensor ForwardStage(const Model& stage, const torch::Tensor& x,
                           const std::vector<torch::Tensor>& params) {
  torch::Tensor h = x;
  std::size_t at = 0;
  for (const auto& layer : stage) {
    const std::size_t n = layer->NumParams();
    h = layer->Forward(h, std::vector<torch::Tensor>(params.begin() + at, params.begin() + at + n));
    at += n;
  }
  return h;
}

}  // namespace xpipe::exec
