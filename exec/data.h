// Training data: Fashion-MNIST from Debian's dataset-fashion-mnist (IDX files,
// read by torch::data::datasets::MNIST once gunzipped into a cache folder),
// or a synthetic set whose labels come from a fixed random teacher, so it can
// be learnt. Everything is held in memory as one tensor of images and one of
// labels; batches are index slices in a seeded per-epoch order.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

namespace xpipe::exec {

struct Dataset {
  torch::Tensor images;        // [n, C, H, W] float32; text: [n, s] int64 token ids
  torch::Tensor labels;        // [n] int64; text: [n, s], the next token of each
  std::vector<int64_t> shape;  // {C, H, W}; text: {s}
  int64_t classes = 10;
  int64_t size() const { return labels.size(0); }
};

// REQUIRES nothing; throws InputError naming the file when the IDX files are
// missing (install dataset-fashion-mnist). Images normalised to mean 0, std 1.
Dataset LoadFashionMnist(bool train, const std::string& dir = "/usr/share/datasets/fashion-mnist");

// n samples of shape {C, H, W} drawn with `sample_seed`; labels = argmax of
// a random linear teacher drawn with `teacher_seed` (same teacher, same task).
Dataset Synthetic(int64_t n, const std::vector<int64_t>& shape, int64_t classes, uint64_t sample_seed,
                  uint64_t teacher_seed);

// Character-level text: the vocabulary is the distinct bytes of the file (in
// byte order), samples are consecutive windows of seq_len tokens whose
// labels are the same windows one token on. The first 90 % of the windows
// train, the rest test. Throws InputError naming the file when it cannot be
// read or is too short for two windows.
struct TextData {
  Dataset train, test;
  std::string vocabulary;
};
TextData LoadText(const std::string& path, int64_t seq_len);

// Sample order of epoch `epoch`: a permutation seeded by (seed, epoch).
torch::Tensor EpochOrder(int64_t n, int64_t epoch, uint64_t seed);

}  // namespace xpipe::exec
