// A profile computed from a decoder-only transformer's configuration and a
// device's datasheet, without running anything: the what-if for models that
// do not fit the machine at hand.
//
// Layers: the embedding (token + position), one per transformer block, and
// the LM head (final layer norm, projection to the vocabulary, loss), each
// its own layer so a pipeline can cut between any two.
//
// FLOPs are counted per matrix multiply, 2 per multiply-add (Narayanan et al.
// 2021, "Efficient Large-Scale Language Model Training on GPU Clusters",
// appendix): per block Q/K/V and output projections, the two attention
// products, the two FFN matmuls; the head's projection. Softmax, layer norm,
// GeLU and dropout are not counted, as there. A backward costs two forwards.
//
// Activation bytes kept for the backward follow Korthikanti et al. 2022
// ("Reducing Activation Recomputation in Large Transformer Models", sec. 4.1)
// tensor by tensor: 16-bit tensors of the precision's width, dropout masks of
// one byte; in 16-bit precision a block keeps s b h (34 + 5 a s / h) bytes.
// With recomputation a block keeps only its input.
//
// Time of a layer's forward = max(FLOPs / (peak x efficiency), bytes moved /
// (memory bandwidth x efficiency)): a roofline, so the embedding (no FLOPs)
// costs its memory traffic.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "common/profile.h"

namespace xpipe {

enum class Precision { kFp32, kTf32, kBf16, kFp16 };
Precision ParsePrecision(const std::string& name, const std::string& where);
std::string_view PrecisionName(Precision p);
int ElementBytes(Precision p);  // of weights and activations: 4 for fp32 and tf32, 2 for bf16 and fp16

struct DeviceSpec {
  std::string name, source;
  std::map<Precision, double> peak_flops;  // dense, per second
  double memory_bytes_per_sec = 0;
  double memory_bytes = 0;  // capacity
  double efficiency = 0.5;  // achieved fraction of the peaks
};
DeviceSpec ParseDeviceSpec(const std::string& json_text, const std::string& where);
DeviceSpec LoadDeviceSpec(const std::string& path);

struct TransformerConfig {
  int layers = 0, hidden = 0, heads = 0;
  int ffn = 0;  // 0 = 4 x hidden
  int vocab = 0, seq_len = 0, micro_batch_size = 1;
  Precision precision = Precision::kBf16;
  int Ffn() const { return ffn > 0 ? ffn : 4 * hidden; }
};

// Throws InputError naming the flag of a field out of range.
void CheckTransformerConfig(const TransformerConfig& c);

// The profile for one micro-batch (batch_size = micro_batch_size), optimizer
// Adam in mixed precision: optimizer_copies makes weights + gradients +
// fp32 master, m and v come to 16 bytes per parameter in 16-bit precision
// (Megatron's accounting without a distributed optimizer), 16 in fp32.
Profile TransformerProfile(const TransformerConfig& c, const DeviceSpec& d);

// Parameters of the model (the LM head's projection untied from the
// embedding, as a pipeline keeps it on another stage).
std::int64_t TransformerParameters(const TransformerConfig& c);

}  // namespace xpipe
