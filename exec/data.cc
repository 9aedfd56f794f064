#include "exec/data.h"

#include <sys/stat.h>
#include <torch/torch.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "common/error.h"

namespace xpipe::exec {
namespace {

namespace fs = std::filesystem;

// An IDX file as MNIST's reader expects it: magic, count (and 28 x 28 for
// images), then exactly the data those promise.
bool IdxIntact(const std::string& path, bool images) {
  std::ifstream in(path, std::ios::binary);
  unsigned char h[16] = {};
  const std::size_t header = images ? 16 : 8;
  if (!in.read(reinterpret_cast<char*>(h), static_cast<std::streamsize>(header))) return false;
  const auto word = [&](std::size_t i) {
    return (uint64_t{h[4 * i]} << 24) | (uint64_t{h[4 * i + 1]} << 16) | (uint64_t{h[4 * i + 2]} << 8) |
           h[4 * i + 3];
  };
  if (word(0) != (images ? 0x803u : 0x801u)) return false;
  const uint64_t count = word(1), each = images ? word(2) * word(3) : 1;
  if (images && (word(2) != 28 || word(3) != 28)) return false;
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return !ec && size == header + count * each;
}

// Gunzips `gz` into `out` (atomically) unless an intact copy is already there
// (a truncated or damaged cache is made again).
void Gunzip(const std::string& gz, const std::string& out, bool images) {
  if (fs::exists(out) && IdxIntact(out, images)) return;
  if (!fs::exists(gz)) throw InputError(gz, "missing (apt-get install dataset-fashion-mnist)");
  const std::string tmp = out + ".tmp" + std::to_string(::getpid());
  const std::string cmd = "gzip -dc '" + gz + "' > '" + tmp + "'";
  if (std::system(cmd.c_str()) != 0) throw InputError(gz, "cannot decompress");
  if (!IdxIntact(tmp, images)) {
    fs::remove(tmp);
    throw InputError(gz, "not an IDX file of 28 x 28 images or labels (damaged download?)");
  }
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
    Gunzip(dir + "/" + name + ".gz", cache + "/" + name,
           std::string(name).find("images") != std::string::npos);
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

TextData LoadText(const std::string& path, int64_t seq_len) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "cannot read the text file");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (seq_len < 1) throw InputError("--seq-len", "must be at least 1");
  const int64_t windows = text.empty() ? 0 : (static_cast<int64_t>(text.size()) - 1) / seq_len;
  if (windows < 2)
    throw InputError(path, std::to_string(text.size()) + " bytes: too short for two windows of --seq-len " +
                               std::to_string(seq_len) + " (and the token after each)");
  TextData d;
  std::array<int64_t, 256> id{};
  id.fill(-1);
  for (unsigned char c : text) id[c] = 0;
  for (int c = 0; c < 256; ++c)
    if (id[c] == 0) {
      id[c] = static_cast<int64_t>(d.vocabulary.size());
      d.vocabulary.push_back(static_cast<char>(c));
    }
  torch::Tensor tokens = torch::empty({static_cast<int64_t>(text.size())}, torch::kLong);
  int64_t* t = tokens.data_ptr<int64_t>();
  for (std::size_t i = 0; i < text.size(); ++i) t[i] = id[static_cast<unsigned char>(text[i])];
  const torch::Tensor x = tokens.slice(0, 0, windows * seq_len).view({windows, seq_len});
  const torch::Tensor y = tokens.slice(0, 1, windows * seq_len + 1).view({windows, seq_len});
  const int64_t n_train = std::max<int64_t>(1, windows * 9 / 10);
  const auto part = [&](int64_t lo, int64_t hi) {
    Dataset s;
    s.images = x.slice(0, lo, hi).clone();
    s.labels = y.slice(0, lo, hi).clone();
    s.shape = {seq_len};
    s.classes = static_cast<int64_t>(d.vocabulary.size());
    return s;
  };
  d.train = part(0, n_train);
  d.test = part(n_train, windows);
  return d;
}

torch::Tensor EpochOrder(int64_t n, int64_t epoch, uint64_t seed) {
  torch::Generator gen = at::detail::createCPUGenerator(seed * 1000003ULL + static_cast<uint64_t>(epoch));
  return torch::randperm(n, gen, torch::kInt64);
}

}  // namespace xpipe::exec
