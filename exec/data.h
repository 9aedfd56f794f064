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
  torch::Tensor images;        // [n, C, H, W] float32
  torch::Tensor labels;        // [n] int64
  std::vector<int64_t> shape;  // {C, H, W}
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

// Sample order of epoch `epoch`: a permutation seeded by (seed, epoch).
torch::Tensor EpochOrder(int64_t n, int64_t epoch, uint64_t seed);

}  // namespace xpipe::exec
