#include "exec/data.h"

#include <sys/stat.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "common/error.h"

namespace xpipe::exec {
namespace {

namespace fs = std::filesystem;

// Gunzips `gz` into `out` (atomically) unless it is already there.
void Gunzip(const std::string& gz, const std::string& out) {
  if (fs::exists(out)) return;
  if (!fs::exists(gz)) throw InputError(gz, "missing (apt-get install dataset-fashion-mnist)");
  const std::string tmp = out + ".tmp" + std::to_string(::getpid());
  const std::string cmd = "gzip -dc '" + gz + "' > '" + tmp + "'";
  if (std::system(cmd.c_str()) != 0) throw InputError(gz, "cannot decompress");
  fs::rename(tmp, out);
}

std::string CacheDir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const fs::path base = xdg ? fs::path(xdg) : home ? fs::path(home) / ".cache" : fs::temp_directory_path();
  const fs::path dir = base / "xpipe" / "fashion-mnist";
  fs::create_directories(dir);
  return dir.string();
}

}  // namespace

Dataset LoadFashionMnist(bool train, const std::string& dir) {
  const std::string cache = CacheDir();
  for (const char* name : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                           "t10k-labels-idx1-ubyte"})
    Gunzip(dir + "/" + name + ".gz", cache + "/" + name);
  torch::data::datasets::MNIST mnist(
      cache, train ? torch::data::datasets::MNIST::Mode::kTrain : torch::data::datasets::MNIST::Mode::kTest);
  Dataset d;
  // Fashion-MNIST's training-set mean and standard deviation.
  d.images = (mnist.images() - 0.2860) / 0.3530;
  d.labels = mnist.targets().to(torch::kInt64);
  d.shape = {1, 28, 28};
  d.classes = 10;
  return d;
}

Dataset Synthetic(int64_t n, const std::vector<int64_t>& shape, int64_t classes, uint64_t sample_seed,
                  uint64_t teacher_seed) {
  torch::Generator gen = at::detail::createCPUGenerator(sample_seed);
  torch::Generator teacher_gen = at::detail::createCPUGenerator(teacher_seed);
  Dataset d;
  d.shape = shape;
  d.classes = classes;
  std::vector<int64_t> full = {n};
  full.insert(full.end(), shape.begin(), shape.end());
  d.images = torch::randn(full, gen);
  const int64_t features = shape[0] * shape[1] * shape[2];
  const torch::Tensor teacher = torch::randn({features, classes}, teacher_gen);
  d.labels = d.images.reshape({n, features}).matmul(teacher).argmax(1);
  return d;
}

torch::Tensor EpochOrder(int64_t n, int64_t epoch, uint64_t seed) {
  torch::Generator gen = at::detail::createCPUGenerator(seed * 1000003ULL + static_cast<uint64_t>(epoch));
  return torch::randperm(n, gen, torch::kInt64);
}

}  // namespace xpipe::exec
