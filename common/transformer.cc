#include "common/transformer.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/json_util.h"
#include "common/schedule_io.h"

namespace xpipe {
namespace {

constexpr std::array<std::pair<std::string_view, Precision>, 4> kPrecisions = {{{"fp32", Precision::kFp32},
                                                                                {"tf32", Precision::kTf32},
                                                                                {"bf16", Precision::kBf16},
                                                                                {"fp16", Precision::kFp16}}};

// One matrix multiply of an (m x k) by a (k x n), done `count` times: 2 m n k
// FLOPs each (a multiply and an add per term).
struct Matmul {
  std::int64_t count, m, k, n;
  std::int64_t Flops() const { return 2 * count * m * k * n; }
};

std::int64_t SumFlops(const std::vector<Matmul>& ms) {
  std::int64_t total = 0;
  for (const Matmul& m : ms) total += m.Flops();
  return total;
}

// A tensor kept for the backward: `elements` of 16-bit activations (then
// widened to the precision's element) or of one-byte dropout masks.
struct Kept {
  std::int64_t elements;
  bool mask;
};

Bytes SumKept(const std::vector<Kept>& ks, int element_bytes) {
  Bytes total = 0;
  for (const Kept& k : ks) total += k.elements * (k.mask ? 1 : element_bytes);
  return total;
}

}  // namespace

Precision ParsePrecision(const std::string& name, const std::string& where) {
  for (const auto& [n, p] : kPrecisions)
    if (n == name) return p;
  throw InputError(where,
                   "unknown precision '" + name.substr(0, 32) + "' (expected fp32, tf32, bf16 or fp16)");
}

std::string_view PrecisionName(Precision p) {
  for (const auto& [n, q] : kPrecisions)
    if (q == p) return n;
  return "?";
}

int ElementBytes(Precision p) { return p == Precision::kBf16 || p == Precision::kFp16 ? 2 : 4; }

DeviceSpec ParseDeviceSpec(const std::string& text, const std::string& where) {
  const nlohmann::json j = ParseJsonText(text, where);
  const JsonObject top(
      j, where, {"name", "source", "peak_tflops", "memory_bandwidth_GBps", "memory_GiB", "efficiency"});
  DeviceSpec d;
  d.name = top.Text("name");
  d.source = top.Text("source", "");
  const nlohmann::json& peaks = top.Get("peak_tflops");
  if (!peaks.is_object() || peaks.empty())
    throw InputError(top.At("peak_tflops"),
                     "expected an object of TFLOP/s per precision, e.g. {\"bf16\": 989}");
  for (const auto& [name, v] : peaks.items()) {
    const std::string at = top.At("peak_tflops") + "." + name;
    const Precision p = ParsePrecision(name, at);
    if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 1e-3 || v.get<double>() > 1e6)
      throw InputError(at, "expected TFLOP/s between 0.001 and 1e6");
    d.peak_flops[p] = v.get<double>() * 1e12;
  }
  d.memory_bytes_per_sec = top.Number("memory_bandwidth_GBps", 1e-3, 1e6) * 1e9;
  d.memory_bytes = top.Number("memory_GiB", 0, 1048576, 0) * static_cast<double>(1LL << 30);
  d.efficiency = top.Number("efficiency", 1e-3, 1, d.efficiency);
  return d;
}

DeviceSpec LoadDeviceSpec(const std::string& path) { return ParseDeviceSpec(ReadFile(path), path); }

void CheckTransformerConfig(const TransformerConfig& c) {
  const auto in = [](const char* flag, long long v, long long lo, long long hi) {
    if (v < lo || v > hi)
      throw InputError(flag, "must be from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got " +
                                 std::to_string(v));
  };
  in("--layers", c.layers, 1, 100000);
  in("--hidden", c.hidden, 1, 1 << 20);
  in("--heads", c.heads, 1, c.hidden);
  if (c.hidden % c.heads != 0)
    throw InputError("--heads", std::to_string(c.heads) + " heads do not divide the hidden size " +
                                    std::to_string(c.hidden));
  in("--ffn", c.ffn, 0, 1 << 22);
  in("--vocab", c.vocab, 1, 1 << 24);
  in("--seq-len", c.seq_len, 1, 1 << 22);
  in("--micro-batch-size", c.micro_batch_size, 1, 1 << 20);
  // Every per-layer figure must stay far inside int64 (the profile's limit
  // on bytes is 2^50; FLOPs stay below 2^62).
  const double s = c.seq_len, b = c.micro_batch_size, h = c.hidden, f = c.Ffn(), a = c.heads;
  const double flops = 2 * b * s * h * (4 * h + 2 * f) + 4 * b * s * s * h + 2 * b * s * h * c.vocab;
  const double bytes = 4 * b * s * (40 * h + 5 * a * s + 4.0 * c.vocab) + 4 * h * (4 * h + 2 * f + c.vocab);
  if (flops > 0x1p61 || bytes > 0x1p49)
    throw InputError("--hidden",
                     "the configuration's per-layer FLOPs or bytes are beyond what a profile holds");
}

std::int64_t TransformerParameters(const TransformerConfig& c) {
  const std::int64_t h = c.hidden, f = c.Ffn(), V = c.vocab, s = c.seq_len;
  const std::int64_t block = (3 * h * h + 3 * h)  // Q, K, V with biases
                             + (h * h + h)        // output projection
                             + (h * f + f)        // FFN up
                             + (f * h + h)        // FFN down
                             + 4 * h;             // two layer norms, scale and shift
  return V * h + s * h                            // token and position embeddings
         + c.layers * block + 2 * h + V * h;      // final layer norm, LM head
}

Profile TransformerProfile(const TransformerConfig& c, const DeviceSpec& d) {
  CheckTransformerConfig(c);
  const auto peak = d.peak_flops.find(c.precision);
  if (peak == d.peak_flops.end())
    throw InputError("--precision", "the device '" + d.name + "' gives no peak for " +
                                        std::string(PrecisionName(c.precision)));
  const std::int64_t b = c.micro_batch_size, s = c.seq_len, h = c.hidden, a = c.heads, f = c.Ffn(),
                     V = c.vocab, dh = h / a;
  const int e = ElementBytes(c.precision);
  const double flops_per_sec = peak->second * d.efficiency;
  const double bytes_per_sec = d.memory_bytes_per_sec * d.efficiency;
  // Roofline: the slower of its arithmetic and its memory traffic.
  const auto forward_ns = [&](std::int64_t flops, Bytes traffic) {
    const double ns =
        std::max(static_cast<double>(flops) / flops_per_sec, static_cast<double>(traffic) / bytes_per_sec) *
        1e9;
    // A profile holds layer times up to 1e7 ms.
    if (!(ns <= 1e13))
      throw InputError("--device", "'" + d.name + "' is too slow for this model: a layer would take " +
                                       std::to_string(ns / 1e6) + " ms, beyond a profile's 1e7 ms");
    return static_cast<TimeNs>(std::llround(ns));
  };
  const Bytes tokens = b * s, stream = tokens * h * e;  // the residual stream between blocks

  Profile p;
  p.name = "gpt-l" + std::to_string(c.layers) + "-h" + std::to_string(h);
  p.source = "computed by `xpipe profile transformer` (layers " + std::to_string(c.layers) + ", hidden " +
             std::to_string(h) + ", heads " + std::to_string(a) + ", ffn " + std::to_string(f) + ", vocab " +
             std::to_string(V) + ", seq-len " + std::to_string(s) + ", precision " +
             std::string(PrecisionName(c.precision)) +
             "): FLOPs per matmul, activations per Korthikanti et al. 2022";
  p.hardware = d.name + " at " + std::to_string(d.efficiency).substr(0, 4) + " of peak";
  p.batch_size = c.micro_batch_size;
  p.optimizer = OptimizerKind::kAdam;
  // Weights, gradients, then fp32 master weights, m and v: 16 bytes per
  // parameter either way.
  p.optimizer_copies = e == 2 ? 6 : 2;

  {  // token and position embeddings, then dropout
    Layer l;
    l.name = "embedding";
    l.op = "Embedding(" + std::to_string(V) + ", " + std::to_string(h) + ") + positions(" +
           std::to_string(s) + ")";
    l.parameter_bytes = (V + s) * h * e;
    l.activation_bytes = stream;
    l.saved_bytes = tokens * h;                             // the dropout mask
    l.saved_bytes_recompute = tokens * 8;                   // the token ids (int64)
    l.forward_ns = forward_ns(0, 2 * stream + tokens * 8);  // gather rows, write the stream
    l.backward_ns = 2 * l.forward_ns;
    p.layers.push_back(std::move(l));
  }
  for (int i = 0; i < c.layers; ++i) {
    const std::vector<Matmul> matmuls = {
        {1, tokens, h, 3 * h},  // Q, K, V
        {b * a, s, dh, s},      // Q K^T per head
        {b * a, s, s, dh},      // attention x V per head
        {1, tokens, h, h},      // output projection
        {1, tokens, h, f},      // FFN up
        {1, tokens, f, h},      // FFN down
    };
    // Korthikanti et al. 2022, sec. 4.1, per tensor (16-bit unless a mask).
    const std::int64_t sbh = tokens * h, as2b = a * s * s * b, sbf = tokens * f;
    const std::vector<Kept> kept = {
        {sbh, false},      // layer norm 1 input
        {sbh, false},      // Q K V projection input
        {2 * sbh, false},  // Q and K, for Q K^T
        {as2b, false},     // softmax output
        {as2b, true},      // softmax dropout mask
        {as2b, false},     // dropout output, for attention x V
        {sbh, false},      // V
        {sbh, false},      // output projection input
        {sbh, true},       // attention dropout mask
        {sbh, false},      // layer norm 2 input
        {sbh, false},      // FFN up input
        {sbf, false},      // GeLU input
        {sbf, false},      // FFN down input
        {sbh, true},       // FFN dropout mask
    };
    Layer l;
    l.name = "block" + std::to_string(i);
    l.op = "TransformerBlock(h=" + std::to_string(h) + ", heads=" + std::to_string(a) +
           ", ffn=" + std::to_string(f) + ")";
    l.parameter_bytes = (4 * h * h + 2 * h * f + 9 * h + f) * e;
    l.activation_bytes = stream;
    l.saved_bytes = SumKept(kept, e);
    l.saved_bytes_recompute = stream;  // its input
    l.forward_flops = SumFlops(matmuls);
    l.forward_ns = forward_ns(l.forward_flops, l.parameter_bytes + 2 * stream + *l.saved_bytes);
    l.backward_ns = 2 * l.forward_ns;
    p.layers.push_back(std::move(l));
  }
  {  // final layer norm, projection to the vocabulary, cross-entropy
    Layer l;
    l.name = "lm_head";
    l.op = "LayerNorm + Linear(" + std::to_string(h) + ", " + std::to_string(V) + ") + cross-entropy";
    l.parameter_bytes = (2 * h + V * h) * e;
    l.activation_bytes = b * 4;  // the loss per sample
    // Layer norm input, projection input, fp32 logits for the loss.
    l.saved_bytes = 2 * stream + tokens * V * 4;
    l.saved_bytes_recompute = stream;
    l.forward_flops = SumFlops({{1, tokens, h, V}});
    l.forward_ns = forward_ns(l.forward_flops, l.parameter_bytes + stream + tokens * V * 4);
    l.backward_ns = 2 * l.forward_ns;
    p.layers.push_back(std::move(l));
  }
  return p;
}

}  // namespace xpipe
