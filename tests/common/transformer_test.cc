// The computed transformer profile against the published closed forms
// (Narayanan et al. 2021 for FLOPs and parameters, Korthikanti et al. 2022
// for activations), exactly, over a grid of configurations.
#include "common/transformer.h"

#include <gtest/gtest.h>

#include <functional>

#include "common/error.h"
#include "common/partition.h"

namespace xpipe {
namespace {

using i128 = __int128;

// gtest cannot print __int128: compare decimal strings.
std::string Dec(i128 x) {
  if (x == 0) return "0";
  std::string out;
  const bool negative = x < 0;
  for (; x != 0; x /= 10) out.insert(out.begin(), static_cast<char>('0' + (negative ? -(x % 10) : x % 10)));
  return negative ? "-" + out : out;
}

const std::string kDevices = XPIPE_SOURCE_DIR "/profiles/devices/";

DeviceSpec TestDevice() {
  DeviceSpec d;
  d.name = "test";
  d.peak_flops[Precision::kBf16] = 1e15;
  d.peak_flops[Precision::kFp16] = 1e15;
  d.peak_flops[Precision::kFp32] = 1e14;
  d.memory_bytes_per_sec = 3e12;
  return d;
}

struct Grid {
  int layers, hidden, heads, vocab, seq_len, micro_batch;
};

std::vector<Grid> Configs() {
  std::vector<Grid> out;
  for (int l : {1, 2, 12, 48})
    for (auto [h, a] : {std::pair{64, 4}, {768, 12}, {2560, 20}, {6144, 48}})
      for (int s : {128, 2048})
        for (int V : {1000, 51200})
          for (int b : {1, 4}) out.push_back({l, h, a, V, s, b});
  return out;
}

TransformerConfig Config(const Grid& g) {
  TransformerConfig c;
  c.layers = g.layers;
  c.hidden = g.hidden;
  c.heads = g.heads;
  c.vocab = g.vocab;
  c.seq_len = g.seq_len;
  c.micro_batch_size = g.micro_batch;
  return c;
}

TEST(TransformerProfileTest, TrainingFlopsMatchNarayananWithAndWithoutRecomputation) {
  const DeviceSpec d = TestDevice();
  int checked = 0;
  for (const Grid& g : Configs()) {
    const Profile p = TransformerProfile(Config(g), d);
    ASSERT_EQ(p.layers.size(), static_cast<std::size_t>(g.layers + 2));
    for (int T : {1, 8}) {  // micro-batches per iteration: B = b T
      // A training step is forward + backward (2 x forward); with full
      // recomputation every block runs its forward once more, the head not.
      i128 plain = 0, recomputed = 0;
      for (std::size_t i = 0; i < p.layers.size(); ++i) {
        const i128 f = p.layers[i].forward_flops;
        const bool block = i > 0 && i + 1 < p.layers.size();
        plain += 3 * f * T;
        recomputed += (block ? 4 : 3) * f * T;
      }
      const i128 B = static_cast<i128>(g.micro_batch) * T, s = g.seq_len, l = g.layers, h = g.hidden,
                 V = g.vocab;
      // 72 B s l h^2 (1 + s/(6h) + V/(12 l h)), over the common denominator 12 l h.
      EXPECT_EQ(Dec(plain * 12 * l * h), Dec(72 * B * s * l * h * h * (12 * l * h + 2 * l * s + V)))
          << g.layers << " " << g.hidden << " " << g.seq_len << " " << g.vocab << " " << g.micro_batch * T;
      // 96 B s l h^2 (1 + s/(6h) + V/(16 l h)), over 48 l h.
      EXPECT_EQ(Dec(recomputed * 48 * l * h), Dec(96 * B * s * l * h * h * (48 * l * h + 8 * l * s + 3 * V)));
      ++checked;
    }
  }
  EXPECT_EQ(checked, 256);
}

TEST(TransformerProfileTest, ActivationBytesPerBlockMatchKorthikanti) {
  const DeviceSpec d = TestDevice();
  for (const Grid& g : Configs()) {
    for (Precision prec : {Precision::kBf16, Precision::kFp16}) {
      TransformerConfig c = Config(g);
      c.precision = prec;
      const Profile p = TransformerProfile(c, d);
      const i128 s = g.seq_len, b = g.micro_batch, h = g.hidden, a = g.heads;
      for (std::size_t i = 1; i + 1 < p.layers.size(); ++i) {
        ASSERT_TRUE(p.layers[i].saved_bytes);
        // s b h (34 + 5 a s / h), times h.
        EXPECT_EQ(Dec(static_cast<i128>(*p.layers[i].saved_bytes) * h),
                  Dec(s * b * h * (34 * h + 5 * a * s)));
        EXPECT_EQ(Dec(*p.layers[i].saved_bytes_recompute), Dec(s * b * h * 2));  // its input alone
      }
    }
  }
}

TEST(TransformerProfileTest, ParametersMatchNarayanan) {
  const DeviceSpec d = TestDevice();
  for (const Grid& g : Configs()) {
    const TransformerConfig c = Config(g);
    const Profile p = TransformerProfile(c, d);
    i128 bytes = 0;
    for (const Layer& l : p.layers) bytes += l.parameter_bytes;
    const i128 P = bytes / 2, l = g.layers, h = g.hidden, V = g.vocab, s = g.seq_len;
    EXPECT_EQ(Dec(P), Dec(TransformerParameters(c)));
    // 12 l h^2 (1 + 13/(12 h) + (V + s)/(12 l h)) counts a head tied to the
    // embedding and no final layer norm; ours adds V h and 2 h.
    EXPECT_EQ(Dec((P - V * h - 2 * h) * 12 * l * h), Dec(12 * l * h * h * (12 * l * h + 13 * l + V + s)));
  }
}

TEST(TransformerProfileTest, TimesFollowTheRooflineAndBackwardIsTwiceForward) {
  DeviceSpec d = TestDevice();
  d.efficiency = 0.5;
  const Profile p = TransformerProfile(Config({2, 4096, 32, 32000, 2048, 1}), d);
  const Layer& block = p.layers[1];
  // 2 x 2048 x 4096 x (4 x 4096 + 2 x 16384) + 4 x 2048^2 x 4096, at half of 1 PFLOP/s.
  const double flops = 2.0 * 2048 * 4096 * (4 * 4096 + 2 * 16384) + 4.0 * 2048 * 2048 * 4096;
  EXPECT_EQ(block.forward_flops, static_cast<std::int64_t>(flops));
  EXPECT_NEAR(static_cast<double>(block.forward_ns), flops / 0.5e15 * 1e9, 1);
  EXPECT_EQ(block.backward_ns, 2 * block.forward_ns);
  // The embedding does no arithmetic: its time is its memory traffic.
  EXPECT_EQ(p.layers[0].forward_flops, 0);
  EXPECT_GT(p.layers[0].forward_ns, 0);
  EXPECT_EQ(*p.optimizer_copies, 6);  // 2 + 2 + 12 bytes per parameter in bf16
}

TEST(TransformerProfileTest, StagesKeepWhatTheirBlocksSaveAndRoundTripThroughJson) {
  const Profile p = TransformerProfile(Config({4, 256, 8, 1000, 128, 2}), TestDevice());
  const Profile back = ParseProfile(ProfileToJson(p), "p.json");
  ASSERT_EQ(back.layers.size(), p.layers.size());
  for (std::size_t i = 0; i < p.layers.size(); ++i) {
    EXPECT_EQ(back.layers[i].saved_bytes, p.layers[i].saved_bytes);
    EXPECT_EQ(back.layers[i].saved_bytes_recompute, p.layers[i].saved_bytes_recompute);
    EXPECT_EQ(back.layers[i].forward_flops, p.layers[i].forward_flops);
  }
  EXPECT_EQ(back.optimizer_copies, p.optimizer_copies);
  // Stage 1 holds blocks 1 and 2 (layers 2, 3): it keeps both blocks'
  // tensors, and under recomputation both blocks' inputs; it sends the stream.
  const std::vector<StageCost> st = StageCosts(back, {2, 2, 2}, 2);
  const Bytes stream = 128 * 2 * 256 * 2;
  EXPECT_EQ(st[1].activation_bytes, 2 * 128 * 2 * 256 * (34 + 5 * 8 * 128 / 256));
  EXPECT_EQ(st[1].KeptUnderRecompute(), 2 * stream);
  EXPECT_EQ(st[1].input_bytes, stream);
  EXPECT_EQ(st[1].output_bytes, stream);
}

TEST(TransformerProfileTest, ShippedDevicesParseAndBadInputIsNamed) {
  for (const char* f : {"a100.json", "h100.json", "h200.json"}) {
    const DeviceSpec d = LoadDeviceSpec(kDevices + f);
    EXPECT_GT(d.peak_flops.at(Precision::kBf16), 1e14) << f;
    EXPECT_GT(d.memory_bytes_per_sec, 1e12) << f;
    EXPECT_FALSE(d.source.empty()) << f;
  }
  const auto error = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error([] {
              ParseDeviceSpec(R"({"name": "x", "peak_tflops": {"bf17": 1}, "memory_bandwidth_GBps": 1})",
                              "d.json");
            }).find("d.json.peak_tflops.bf17"),
            std::string::npos);
  TransformerConfig c;
  c.layers = 2;
  c.hidden = 100;
  c.heads = 3;
  c.vocab = 10;
  c.seq_len = 8;
  EXPECT_NE(error([&] { TransformerProfile(c, TestDevice()); }).find("--heads"), std::string::npos);
  c.heads = 4;
  c.precision = Precision::kTf32;
  EXPECT_NE(error([&] { TransformerProfile(c, TestDevice()); }).find("--precision"), std::string::npos);
  // A device so slow a layer's time would not fit a profile: refused, not overflowed.
  DeviceSpec slow = ParseDeviceSpec(
      R"({"name": "abacus", "peak_tflops": {"bf16": 0.001}, "memory_bandwidth_GBps": 0.001, "efficiency": 0.001})",
      "slow.json");
  EXPECT_NE(error([&] {
              TransformerProfile(Config({48, 12288, 96, 51200, 2048, 8}), slow);
            }).find("too slow"),
            std::string::npos);
}

}  // namespace
}  // namespace xpipe
