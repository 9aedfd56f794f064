#include "exec/trainer.h"

#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <thread>

#include "common/error.h"
#include "common/generators.h"
#include "common/schedule_file.h"
#include "common/schedule_io.h"
#include "common/versioning.h"
#include "exec/data.h"
#include "exec/profiler.h"

namespace xpipe::exec {
namespace {

using nlohmann::json;

struct Position {
  int epoch = 0;
  int64_t step = 0;  // mini-batches done in this epoch
  double loss_sum = 0, correct_sum = 0;
  int64_t counted = 0;
};

// Checkpoint format 3: a LibTorch archive of named tensors. "format" (3),
// "identity" (the run's identity, JSON text as bytes), the position, and per
// local stage "stage<k>.version", "stage<k>.weight<i>", "stage<k>.optimizer<i>",
// "stage<k>.prediction_scale" (the adaptive prediction's two sums);
// every tensor has "<name>.fnv", an FNV-1a hash of its bytes. Loading checks
// the format, every hash (a flipped byte is refused, naming the tensor), and
// the identity (a different model, partition, schedule, optimizer or its
// settings, batch size or seed is refused, naming what differs).
constexpr int64_t kCheckpointFormat = 3;

int64_t Fnv1a(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().cpu().contiguous();
  const auto* p = static_cast<const unsigned char*>(c.data_ptr());
  uint64_t h = 1469598103934665603ULL;
  for (int64_t i = 0, n = c.numel() * static_cast<int64_t>(c.element_size()); i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return static_cast<int64_t>(h);
}

class CheckpointWriter {
 public:
  explicit CheckpointWriter(const std::string& identity) {
    Put("format", torch::tensor(kCheckpointFormat));
    Put("identity", Bytes(identity));
  }
  void Put(const std::string& name, const torch::Tensor& t) {
    const torch::Tensor c = t.detach().cpu().contiguous();
    archive_.write(name, c);
    archive_.write(name + ".fnv", torch::tensor(Fnv1a(c)));
  }
  void Save(const std::string& path) {
    const std::string tmp = path + ".tmp";
    archive_.save_to(tmp);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) throw InputError(path, "cannot rename temporary file");
  }
  static torch::Tensor Bytes(const std::string& text) {
    torch::Tensor t = torch::empty({static_cast<int64_t>(text.size())}, torch::kUInt8);
    std::memcpy(t.data_ptr(), text.data(), text.size());
    return t;
  }

 private:
  torch::serialize::OutputArchive archive_;
};

class CheckpointReader {
 public:
  CheckpointReader(const std::string& path, const std::string& identity) : path_(path) {
    try {
      archive_.load_from(path);
    } catch (const c10::Error& e) {
      throw InputError(path,
                       "not an xpipe checkpoint, or damaged (" + FirstLine(e.what_without_backtrace()) + ")");
    }
    if (Get("format").numel() != 1 || Get("format").item<int64_t>() != kCheckpointFormat)
      throw InputError(path, "checkpoint format " + std::to_string(Get("format").item<int64_t>()) +
                                 ", this xpipe reads " + std::to_string(kCheckpointFormat));
    const torch::Tensor bytes = Get("identity");
    const std::string saved(static_cast<const char*>(bytes.data_ptr()),
                            static_cast<std::size_t>(bytes.numel()));
    if (saved != identity)
      throw InputError(path, "checkpoint of a different run: " + Differences(saved, identity));
  }
  // The tensor `name`, its hash checked. Throws InputError naming it.
  torch::Tensor Get(const std::string& name) {
    torch::Tensor t, h;
    try {
      archive_.read(name, t);
      archive_.read(name + ".fnv", h);
    } catch (const c10::Error&) {
      throw InputError(path_, "checkpoint has no tensor '" + name + "'");
    }
    if (h.numel() != 1 || h.item<int64_t>() != Fnv1a(t))
      throw InputError(path_, "checkpoint is damaged: tensor '" + name + "' does not match its checksum");
    return t;
  }

 private:
  static std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }
  // "optimizer: checkpoint sgd, this run adam; batch_size: ..."
  static std::string Differences(const std::string& saved, const std::string& now) {
    json a, b;
    try {
      a = json::parse(saved);
      b = json::parse(now);
    } catch (const json::exception&) {
      return "its identity is unreadable";
    }
    std::string out;
    for (const auto& [key, value] : b.items()) {
      const json other = a.contains(key) ? a[key] : json();
      if (other == value) continue;
      if (!out.empty()) out += "; ";
      out += key + ": checkpoint " + other.dump() + ", this run " + value.dump();
    }
    return out.empty() ? "identity differs" : out;
  }
  std::string path_;
  torch::serialize::InputArchive archive_;
};

// The local stages' versions, weights and optimizer states.
void PutStages(Executor& ex, CheckpointWriter& w) {
  for (int k = 0; k < ex.num_stages(); ++k) {
    if (!ex.is_local(k)) continue;
    const std::string stage = "stage" + std::to_string(k) + ".";
    w.Put(stage + "version", torch::tensor(ex.version(k)));
    const auto& params = ex.params(k);
    for (std::size_t i = 0; i < params.size(); ++i) w.Put(stage + "weight" + std::to_string(i), params[i]);
    const auto state = ex.optimizer(k).State();
    for (std::size_t i = 0; i < state.size(); ++i) w.Put(stage + "optimizer" + std::to_string(i), state[i]);
    const PredictionScale& ps = ex.prediction_scale(k);
    w.Put(stage + "prediction_scale", torch::tensor({ps.rp, ps.pp}, torch::kFloat64));
  }
}

void GetStages(Executor& ex, CheckpointReader& r, const std::string& path) {
  torch::NoGradGuard no_grad;
  for (int k = 0; k < ex.num_stages(); ++k) {
    if (!ex.is_local(k)) continue;
    const std::string stage = "stage" + std::to_string(k) + ".";
    ex.set_version(k, r.Get(stage + "version").item<int64_t>());
    auto& params = ex.params(k);
    for (std::size_t i = 0; i < params.size(); ++i) {
      const torch::Tensor t = r.Get(stage + "weight" + std::to_string(i));
      if (!t.sizes().equals(params[i].sizes()))
        throw InputError(path, "tensor '" + stage + "weight" + std::to_string(i) + "' has another shape");
      params[i].copy_(t);
    }
    std::vector<torch::Tensor> state = ex.optimizer(k).State();
    for (std::size_t i = 0; i < state.size(); ++i) {
      const torch::Tensor t = r.Get(stage + "optimizer" + std::to_string(i));
      if (!t.sizes().equals(state[i].sizes()))
        throw InputError(path, "tensor '" + stage + "optimizer" + std::to_string(i) + "' has another shape");
      state[i] = t;
    }
    ex.optimizer(k).LoadState(state);
    const torch::Tensor ps = r.Get(stage + "prediction_scale");
    if (ps.numel() != 2) throw InputError(path, "tensor '" + stage + "prediction_scale' has another shape");
    ex.prediction_scale(k).rp = ps[0].item<double>();
    ex.prediction_scale(k).pp = ps[1].item<double>();
  }
}

void PutPosition(CheckpointWriter& w, const Position& pos) {
  w.Put("position", torch::tensor({static_cast<int64_t>(pos.epoch), pos.step, pos.counted}));
  w.Put("sums", torch::tensor({pos.loss_sum, pos.correct_sum}, torch::kFloat64));
}

Position GetPosition(CheckpointReader& r, const std::string& path, int64_t steps_per_epoch) {
  const torch::Tensor p = r.Get("position"), sums = r.Get("sums");
  if (p.numel() != 3 || sums.numel() != 2) throw InputError(path, "checkpoint position is malformed");
  Position pos;
  pos.epoch = static_cast<int>(p[0].item<int64_t>());
  pos.step = p[1].item<int64_t>();
  pos.counted = p[2].item<int64_t>();
  pos.loss_sum = sums[0].item<double>();
  pos.correct_sum = sums[1].item<double>();
  if (pos.epoch < 0 || pos.step < 0 || pos.step > steps_per_epoch || pos.counted < 0)
    throw InputError(path, "checkpoint position (epoch " + std::to_string(pos.epoch) + ", step " +
                               std::to_string(pos.step) + ") is outside this run");
  return pos;
}

// Single process, one file.
void SaveCheckpoint(Executor& ex, const Position& pos, const std::string& identity, const std::string& path) {
  CheckpointWriter w(identity);
  PutPosition(w, pos);
  PutStages(ex, w);
  w.Save(path);
}

Position LoadCheckpoint(Executor& ex, const std::string& identity, int64_t steps_per_epoch,
                        const std::string& path) {
  CheckpointReader r(path, identity);
  const Position pos = GetPosition(r, path, steps_per_epoch);
  GetStages(ex, r, path);
  return pos;
}

// Distributed: each rank writes its shard `<path>.rank<R>.<step>` (atomically),
// then, once all shards are on disk, rank 0 writes the manifest `<path>` that
// names the step; only then do ranks drop their older shards. A job killed
// anywhere in between resumes from the last manifest, whose shards all exist.
// Each shard carries the identity, the position and the step, checked on load.
std::string ShardPath(const std::string& path, int rank, int64_t global_step) {
  return path + ".rank" + std::to_string(rank) + "." + std::to_string(global_step);
}

void SaveDistributed(Executor& ex, Rank& rank, const Position& pos, const std::string& identity,
                     int64_t global_step, int64_t previous_step, const std::string& path) {
  CheckpointWriter w(identity);
  w.Put("global_step", torch::tensor({global_step, static_cast<int64_t>(rank.world())}));
  PutPosition(w, pos);
  PutStages(ex, w);
  w.Save(ShardPath(path, rank.rank(), global_step));
  rank.Barrier();
  if (rank.rank() == 0)
    WriteFileAtomic(path, json({{"xpipe_checkpoint", kCheckpointFormat},
                                {"world_size", rank.world()},
                                {"global_step", global_step}})
                                  .dump() +
                              "\n");
  rank.Barrier();
  if (previous_step >= 0 && previous_step != global_step)
    std::filesystem::remove(ShardPath(path, rank.rank(), previous_step));
}

// Returns the position and the global step of the manifest.
std::pair<Position, int64_t> LoadDistributed(Executor& ex, Rank& rank, const std::string& identity,
                                             int64_t steps_per_epoch, const std::string& path) {
  std::ifstream in(path);
  json m;
  try {
    in >> m;
  } catch (const json::exception&) {
    throw InputError(path, "not a checkpoint manifest of a distributed run");
  }
  const auto field = [&](const char* name) -> int64_t {
    if (!m.is_object() || !m.contains(name) || !m[name].is_number_integer())
      throw InputError(path, std::string("manifest has no ") + name);
    return m[name].get<int64_t>();
  };
  if (field("xpipe_checkpoint") != kCheckpointFormat)
    throw InputError(path, "checkpoint format " + std::to_string(field("xpipe_checkpoint")) +
                               ", this xpipe reads " + std::to_string(kCheckpointFormat));
  if (field("world_size") != rank.world())
    throw InputError(path, "checkpoint was written by " + std::to_string(field("world_size")) +
                               " ranks, this job has " + std::to_string(rank.world()));
  const int64_t global_step = field("global_step");
  const std::string shard = ShardPath(path, rank.rank(), global_step);
  CheckpointReader r(shard, identity);
  const torch::Tensor step = r.Get("global_step");
  if (step.numel() != 2 || step[0].item<int64_t>() != global_step)
    throw InputError(shard, "shard does not belong to the manifest's step");
  const Position pos = GetPosition(r, shard, steps_per_epoch);
  GetStages(ex, r, shard);
  return {pos, global_step};
}

std::vector<torch::Device> Devices(const TrainConfig& c, const Schedule& layout) {
  std::vector<torch::Device> out;
  if (c.device == "cpu") {
    out.assign(layout.num_stages, torch::kCPU);
  } else if (c.device == "cuda") {
    if (!torch::cuda::is_available()) throw InputError("--device", "no CUDA device is visible");
    // device_count() is a DeviceIndex (a signed char), never negative.
    const int gpus = static_cast<unsigned char>(torch::cuda::device_count());
    for (int k = 0; k < layout.num_stages; ++k) {
      // One process per GPU: cuda:LOCAL_RANK (wrapping when a machine has
      // fewer GPUs than ranks); one process: stage k on GPU (device of k).
      const int index = c.launch ? c.launch->local_rank % gpus : layout.stage_device[k] % gpus;
      out.emplace_back(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
    }
  } else {
    throw InputError("--device", "expected cpu or cuda (got '" + c.device + "')");
  }
  return out;
}

TransportKind ParseTransport(const TrainConfig& c) {
  if (c.transport == "gloo") return TransportKind::kGloo;
  if (c.transport == "nccl") {
    if (c.device != "cuda")
      throw InputError("--transport", "nccl moves CUDA tensors: use it with --device cuda");
    return TransportKind::kNccl;
  }
  if (c.transport == "auto") return c.device == "cuda" ? TransportKind::kNccl : TransportKind::kGloo;
  throw InputError("--transport", "expected auto, gloo or nccl (got '" + c.transport + "')");
}

// One rank's view of a segment, flattened for the gather to rank 0:
// [seconds, recomputed, forwards, copies, #loss, loss..., correct...,
//  #errors, (stage, version, horizon, ratio)..., per stage: versions_held].
std::vector<double> Pack(const SegmentResult& r, bool has_losses) {
  std::vector<double> v = {r.seconds, 0, 0, 0};
  for (const auto& stage : r.passes)
    for (const auto& p : stage) v[1] += p.recomputed;
  for (int64_t f : r.forwards_run) v[2] += static_cast<double>(f);
  for (int64_t c : r.weight_copies) v[3] += static_cast<double>(c);
  v.push_back(has_losses ? static_cast<double>(r.loss.size()) : 0);
  if (has_losses) {
    v.insert(v.end(), r.loss.begin(), r.loss.end());
    v.insert(v.end(), r.correct.begin(), r.correct.end());
  }
  v.push_back(static_cast<double>(r.prediction_errors.size()));
  for (const auto& e : r.prediction_errors)
    v.insert(v.end(), {static_cast<double>(e.stage), static_cast<double>(e.version),
                       static_cast<double>(e.horizon), e.ratio, e.scale});
  for (int h : r.versions_held) v.push_back(h);
  return v;
}

// The merged view on rank 0. recomputed/forwards/copies are totals.
struct Merged {
  SegmentResult r;
  int64_t recomputed = 0, forwards = 0, copies = 0;
};

Merged Unpack(const std::vector<std::vector<double>>& all, int stages) {
  Merged m;
  m.r.versions_held.assign(stages, 1);
  for (const auto& v : all) {
    std::size_t at = 0;
    m.r.seconds = std::max(m.r.seconds, v[at++]);
    m.recomputed += static_cast<int64_t>(v[at++]);
    m.forwards += static_cast<int64_t>(v[at++]);
    m.copies += static_cast<int64_t>(v[at++]);
    const auto n = static_cast<std::size_t>(v[at++]);
    if (n > 0) {
      m.r.loss.assign(v.begin() + at, v.begin() + at + n);
      m.r.correct.assign(v.begin() + at + n, v.begin() + at + 2 * n);
      at += 2 * n;
    }
    const auto errors = static_cast<std::size_t>(v[at++]);
    for (std::size_t i = 0; i < errors; ++i, at += 5)
      m.r.prediction_errors.push_back({static_cast<int>(v[at]), static_cast<int64_t>(v[at + 1]),
                                       static_cast<int>(v[at + 2]), v[at + 3], v[at + 4]});
    for (int k = 0; k < stages; ++k)
      m.r.versions_held[k] = std::max(m.r.versions_held[k], static_cast<int>(v[at++]));
  }
  return m;
}

// The final weights: a JSON header line with every tensor's stage and shape,
// then the raw float32 data in that order (byte-stable, unlike torch::save).
void SaveWeights(Executor& ex, Rank* rank, const Schedule& layout, const std::vector<Model>& stages,
                 const std::string& path) {
  std::vector<std::vector<torch::Tensor>> per_stage(ex.num_stages());
  if (rank == nullptr) {
    for (int k = 0; k < ex.num_stages(); ++k) per_stage[k] = ex.params(k);
  } else {
    std::vector<torch::Tensor> mine;
    for (int k = 0; k < ex.num_stages(); ++k)
      if (ex.is_local(k)) mine.insert(mine.end(), ex.params(k).begin(), ex.params(k).end());
    const std::vector<torch::Tensor> flat = rank->GatherFlat(mine);
    if (rank->rank() != 0) return;
    // Every rank's flat list holds its stages' tensors in stage order; the
    // shapes come from the model, which every rank knows.
    const std::vector<std::vector<torch::Tensor>> shapes = InitStages(stages, 0);
    std::vector<int64_t> offset(rank->world(), 0);
    for (int k = 0; k < ex.num_stages(); ++k) {
      const int r = layout.stage_device[k];
      for (const auto& like : shapes[k]) {
        per_stage[k].push_back(flat[r].slice(0, offset[r], offset[r] + like.numel()).view(like.sizes()));
        offset[r] += like.numel();
      }
    }
  }
  json header = json::array();
  std::string raw;
  for (int k = 0; k < ex.num_stages(); ++k)
    for (const auto& p : per_stage[k]) {
      const torch::Tensor t = p.detach().cpu().contiguous().to(torch::kFloat32);
      header.push_back({{"stage", k}, {"shape", t.sizes().vec()}});
      raw.append(static_cast<const char*>(t.data_ptr()), t.numel() * sizeof(float));
    }
  WriteFileAtomic(path, json({{"xpipe_weights", 1}, {"tensors", header}}).dump() + "\n" + raw);
}

// Names the rank whose loss stopped the job: the first one any rank
// reported (a rank that exits because of it breaks its own links, so its
// neighbours would otherwise name it instead), unless that is this rank.
std::string LostLine(Rank& rank, int peer, const std::string& what) {
  int lost = rank.ReportLost(peer);
  if (lost == rank.rank()) lost = peer;
  return "rank " + std::to_string(rank.rank()) + ": lost rank " + std::to_string(lost) + " (" + what + ")";
}

}  // namespace

std::vector<EpochStats> Train(const TrainConfig& c) {
  Dataset train, test;
  // Every rank reads the data set (for its size); only the first stage's
  // rank uses the images and the last stage's the labels.
  if (c.data == "fashion-mnist") {
    train = LoadFashionMnist(true);
    test = LoadFashionMnist(false);
  } else if (c.data == "synthetic") {
    train = Synthetic(c.synthetic_samples, {1, 16, 16}, 10, c.seed, /*teacher_seed=*/12345);
    test = Synthetic(c.synthetic_samples / 4, {1, 16, 16}, 10, c.seed + 1, /*teacher_seed=*/12345);
  } else if (c.data.rfind("text:", 0) == 0) {
    TextData text = LoadText(c.data.substr(5), c.seq_len);
    train = std::move(text.train);
    test = std::move(text.test);
  } else {
    throw InputError("--data", "expected fashion-mnist, synthetic or text:FILE (got '" + c.data + "')");
  }
  if ((c.model == "gpt") != (train.shape.size() == 1))
    throw InputError("--model", c.model == "gpt" ? "gpt trains on text: give --data text:FILE"
                                                 : "text data (--data text:FILE) trains --model gpt");
  if (c.micro_batches < 1) throw InputError("--micro-batches", "must be at least 1");
  if (c.batch_size < 1 || c.batch_size % c.micro_batches != 0)
    throw InputError("--batch-size", std::to_string(c.batch_size) + " samples do not split into " +
                                         std::to_string(c.micro_batches) + " micro-batches");
  if (c.epochs < 1) throw InputError("--epochs", "must be at least 1");
  if (c.comm_timeout_s < 1) throw InputError("--comm-timeout", "must be at least 1 second");
  if (!c.launch || c.launch->rank == 0)
    for (const auto& [path, flag] :
         {std::pair{c.checkpoint, "--checkpoint"}, std::pair{c.save_weights, "--save-weights"},
          std::pair{c.trace, "--trace"}, std::pair{c.profile_out, "--profile-out"}})
      if (!path.empty()) CheckWritable(path, flag);
  int64_t steps = train.size() / c.batch_size;
  if (c.max_steps > 0) steps = std::min(steps, c.max_steps);
  if (steps < 1) throw InputError("--batch-size", "larger than the training set");
  // A file's schedule runs whole: K mini-batches at a time.
  const int per_run = c.given ? c.given->mini_batches : 1;
  if (per_run > 1) {
    if (steps < per_run)
      throw InputError("--schedule-file", "runs " + std::to_string(per_run) +
                                              " mini-batches at a time; an epoch has " +
                                              std::to_string(steps));
    steps -= steps % per_run;
    if (c.checkpoint_every % per_run != 0)
      throw InputError("--checkpoint-every", "must be a multiple of the " + std::to_string(per_run) +
                                                 " mini-batches the schedule file runs at a time");
  }
  const int micro = c.batch_size / c.micro_batches;

  ScheduleParams sp;
  sp.kind = c.schedule;
  sp.devices = c.stages;
  sp.micro_batches = c.micro_batches;
  sp.chunks = c.chunks;
  sp.target = c.target;
  sp.prediction_base = c.prediction_base;
  sp.backward_weights = c.backward_weights;
  sp.mini_batches = 1;
  // Checks the parameters once, gives the stage map.
  const Schedule layout = c.given ? *c.given : Generate(sp);
  if (c.launch && c.launch->world != layout.num_devices)
    throw InputError("WORLD_SIZE", std::to_string(c.launch->world) + " ranks for " +
                                       std::to_string(layout.num_devices) +
                                       " pipeline devices (--stages): one rank per device");

  const Model model = MakeModel(c.model, train.shape, train.classes, c.gpt);
  const torch::Tensor sample = train.images.slice(0, 0, micro);
  const bool leader = !c.launch || c.launch->rank == 0;
  if (!c.profile_out.empty() && leader) {
    torch::set_num_threads(1);  // as a stage thread runs
    ProfileOptions po;
    po.optimizer = c.optimizer;
    // The first mini-batch's micro-batches: new data each iteration, as the passes take.
    std::vector<torch::Tensor> inputs;
    for (int64_t j = 0; j < sp.micro_batches && (j + 1) * micro <= train.images.size(0); ++j)
      inputs.push_back(train.images.slice(0, j * micro, (j + 1) * micro));
    if (inputs.empty()) inputs.push_back(sample);
    WriteFileAtomic(c.profile_out, ProfileToJson(ProfileModel(c.model, model, inputs, po)));
  }
  std::vector<int> sizes = c.partition;
  if (sizes.empty() && !c.even_partition && layout.num_stages > 1 &&
      layout.num_stages <= static_cast<int>(model.size()))
    sizes = BalancedPartition(CountedProfile(c.model, model, sample), layout.num_stages);
  ExecConfig ec;
  ec.stages = Partition(model, layout.num_stages, sizes);
  ec.sample_output_shapes = SampleOutputShapes(ec.stages, train.shape, train.images.scalar_type());
  ec.devices = Devices(c, layout);
  ec.optimizer = c.optimizer;
  ec.lr_schedule = c.lr_schedule;
  ec.total_steps = steps * c.epochs;
  ec.record_trace = !c.trace.empty();
  ec.adaptive_prediction = c.adaptive_prediction;
  ec.micro_batch_size = micro;
  ec.stage_rank = layout.stage_device;

  std::unique_ptr<Rank> rank;
  if (c.launch) {
    ec.local_ranks = {c.launch->rank};
    if (ec.devices[0].is_cuda()) torch::cuda::synchronize(ec.devices[0].index());  // create the context early
    rank = std::make_unique<Rank>(*c.launch, ParseTransport(c), std::chrono::seconds(c.comm_timeout_s));
  }
  Transport* transport = rank ? &rank->data() : nullptr;
  Executor ex(ec, InitStages(ec.stages, c.seed));
  const bool last_local = ex.is_local(layout.num_stages - 1);

  // A lost peer: name the rank whose loss started it, the same on every rank.
  const auto run_or_name = [&](const auto& body) {
    try {
      return body();
    } catch (const TrainingError& e) {
      if (rank && e.lost_rank() && *e.lost_rank() >= 0 && *e.lost_rank() != rank->rank())
        throw TrainingError(LostLine(*rank, *e.lost_rank(), e.what()), e.lost_rank());
      throw;
    } catch (const CommError& e) {
      if (!rank) throw TrainingError(e.what());
      throw TrainingError(LostLine(*rank, e.peer() >= 0 ? e.peer() : 0, e.what()), e.peer());
    }
  };

  // What a checkpoint must have been written by to be resumed here.
  std::vector<int> layers_per_stage;
  for (const Model& m : ec.stages) layers_per_stage.push_back(static_cast<int>(m.size()));
  const OptimizerConfig& o = c.optimizer;
  json id = {{"model", c.model},
             {"data", c.data == "synthetic" ? "synthetic:" + std::to_string(c.synthetic_samples) : c.data},
             {"schedule", c.given ? c.schedule_name : std::string(ScheduleName(c.schedule))},
             {"stages", layout.num_stages},
             {"partition", layers_per_stage},
             {"micro_batches", c.micro_batches},
             {"batch_size", c.batch_size},
             {"prediction_target", static_cast<int>(c.target)},
             {"predict_from", std::string(PredictionBaseName(c.prediction_base))},
             {"backward_weights", std::string(WeightSwitchName(c.backward_weights))},
             {"prediction", c.adaptive_prediction ? "adaptive" : "fixed"},
             {"optimizer", std::string(OptimizerName(o.kind))},
             {"optimizer_settings", {o.lr, o.momentum, o.beta1, o.beta2, o.eps, o.weight_decay}},
             {"lr_schedule", static_cast<int>(c.lr_schedule)},
             {"seed", c.seed}};
  if (c.lr_schedule != LrSchedule::kConstant) id["total_steps"] = ec.total_steps;
  if (c.model == "gpt") id["gpt"] = {c.gpt.layers, c.gpt.hidden, c.gpt.heads, c.gpt.ffn, c.seq_len};
  if (c.given) {  // the file's order and weights, not its name, identify it
    std::uint64_t h = 14695981039346656037ULL;
    for (unsigned char ch : ToJson(*c.given)) h = (h ^ ch) * 1099511628211ULL;
    id["schedule_fnv"] = std::to_string(h);
  }
  const std::string identity = id.dump();

  Position pos;
  int64_t saved_step = -1;  // distributed: the global step of the shards on disk
  if (c.resume) {
    if (c.checkpoint.empty()) throw InputError("--resume", "needs --checkpoint FILE");
    if (std::ifstream(c.checkpoint).good()) {
      if (rank)
        std::tie(pos, saved_step) = LoadDistributed(ex, *rank, identity, steps, c.checkpoint);
      else
        pos = LoadCheckpoint(ex, identity, steps, c.checkpoint);
    }
  }
  std::ofstream log;
  if (!c.log.empty() && leader) {
    log.open(c.log, pos.epoch > 0 || pos.step > 0 ? std::ios::app : std::ios::trunc);
    if (!log) throw InputError(c.log, "cannot write log");
  }
  const auto write_log = [&](const json& j) {
    if (log) log << j.dump() << '\n' << std::flush;
  };

  std::vector<EpochStats> out;
  bool traced = false;
  for (int epoch = pos.epoch; epoch < c.epochs; ++epoch) {
    const torch::Tensor order = EpochOrder(train.size(), epoch, c.seed);
    const int64_t epoch_first = static_cast<int64_t>(epoch) * steps;
    const MicroBatchFn data = [&](int64_t b, int j) {
      const int64_t start = (b - epoch_first) * c.batch_size + static_cast<int64_t>(j) * micro;
      const torch::Tensor idx = order.slice(0, start, start + micro);
      return std::make_pair(train.images.index_select(0, idx), train.labels.index_select(0, idx));
    };
    EpochStats st;
    st.epoch = epoch + 1;
    double seconds = 0, error_sum = 0;
    int64_t error_count = 0, samples = 0;
    std::vector<double> stage_error_sum(layout.num_stages, 0.0), stage_scale_sum(layout.num_stages, 0.0);
    std::vector<int64_t> stage_error_count(layout.num_stages, 0);
    while (pos.step < steps) {
      const int64_t len =
          c.checkpoint_every > 0 ? std::min(c.checkpoint_every, steps - pos.step) : steps - pos.step;
      sp.mini_batches = static_cast<int>(len);
      Schedule s;
      if (c.given) {
        s = RepeatSchedule(*c.given, static_cast<int>(len / per_run));
        AnnotateWeights(s, c.target, c.backward_weights, c.prediction_base);
      } else {
        s = MakeSchedule(sp);
      }
      std::atomic<int64_t> done{0};
      std::atomic<bool> running{true};
      std::thread progress;
      if (c.progress && last_local && isatty(STDERR_FILENO)) {
        progress = std::thread([&] {
          while (running) {
            const int64_t at = pos.step + done;
            const int width = 30, fill = static_cast<int>(width * at / steps);
            std::fprintf(stderr, "\repoch %d/%d [%s%s] %3d%%  %lld/%lld mini-batches", epoch + 1, c.epochs,
                         std::string(fill, '=').c_str(), std::string(width - fill, ' ').c_str(),
                         static_cast<int>(100 * at / steps), static_cast<long long>(at),
                         static_cast<long long>(steps));
            std::this_thread::sleep_for(std::chrono::milliseconds(250));
          }
          std::fprintf(stderr, "\r%80s\r", "");
        });
      }
      Merged m;
      try {
        m = run_or_name([&] {
          SegmentResult r = ex.Run(s, data, epoch_first + pos.step, transport, &done);
          if (!rank) {
            Merged local = Unpack({Pack(r, true)}, layout.num_stages);
            local.r.trace = std::move(r.trace);
            return local;
          }
          const auto all = rank->Gather(Pack(r, last_local));
          Merged merged = rank->rank() == 0 ? Unpack(all, layout.num_stages) : Merged{};
          merged.r.trace = std::move(r.trace);
          return merged;
        });
      } catch (...) {
        running = false;
        if (progress.joinable()) progress.join();
        throw;
      }
      running = false;
      if (progress.joinable()) progress.join();
      const SegmentResult& r = m.r;
      for (std::size_t b = 0; b < r.loss.size(); ++b) {
        pos.loss_sum += r.loss[b];
        pos.correct_sum += r.correct[b];
        ++pos.counted;
      }
      for (const auto& e : r.prediction_errors) {
        error_sum += e.ratio;
        ++error_count;
        stage_error_sum[e.stage] += e.ratio;
        stage_scale_sum[e.stage] += e.scale;
        ++stage_error_count[e.stage];
      }
      st.recomputed_passes += m.recomputed;
      st.forwards_run += m.forwards;
      st.weight_copies += m.copies;
      seconds += r.seconds;
      samples += len * c.batch_size;
      pos.step += len;
      write_log({{"event", "segment"},
                 {"epoch", epoch + 1},
                 {"step", pos.step},
                 {"mini_batches", len},
                 {"loss", r.loss.empty() ? 0.0 : std::accumulate(r.loss.begin(), r.loss.end(), 0.0) / len},
                 {"accuracy", std::accumulate(r.correct.begin(), r.correct.end(), 0.0) / len},
                 {"seconds", r.seconds},
                 {"samples_per_sec", len * c.batch_size / r.seconds},
                 {"versions_held", r.versions_held},
                 // Per mini-batch, for learning curves (time to accuracy).
                 {"mini_batch_loss", r.loss},
                 {"mini_batch_accuracy", r.correct}});
      if (!traced && !c.trace.empty() && leader) {
        WriteFileAtomic(c.trace, ToChromeTrace(s, r.trace));
        traced = true;
      }
      if (!c.checkpoint.empty() && c.checkpoint_every > 0) {
        Position next = pos;
        if (next.step == steps) next = Position{epoch + 1, 0, 0, 0, 0};
        if (rank) {
          const int64_t global_step = epoch_first + pos.step;
          run_or_name(
              [&] { SaveDistributed(ex, *rank, next, identity, global_step, saved_step, c.checkpoint); });
          saved_step = global_step;
        } else {
          SaveCheckpoint(ex, next, identity, c.checkpoint);
        }
      }
    }
    st.train_loss = pos.counted ? pos.loss_sum / pos.counted : 0;
    st.train_accuracy = pos.counted ? pos.correct_sum / pos.counted : 0;
    st.seconds = seconds;
    st.samples_per_sec = seconds > 0 ? samples / seconds : 0;
    st.prediction_error = error_count ? error_sum / error_count : 0;
    for (int k = 0; k < layout.num_stages; ++k)
      st.stage_prediction_scale.push_back(stage_error_count[k] ? stage_scale_sum[k] / stage_error_count[k]
                                                               : 1);
    for (int k = 0; k < layout.num_stages; ++k)
      st.stage_prediction_error.push_back(stage_error_count[k] ? stage_error_sum[k] / stage_error_count[k]
                                                               : 0);
    if (c.evaluate) {
      const int64_t chunk = 1000, chunks = (test.size() + chunk - 1) / chunk;
      const auto part = [&](int64_t i) {
        const int64_t lo = i * chunk, hi = std::min(test.size(), lo + chunk);
        return std::make_pair(test.images.slice(0, lo, hi), test.labels.slice(0, lo, hi));
      };
      const auto size_of = [&](int64_t i) { return std::min(test.size(), (i + 1) * chunk) - i * chunk; };
      EvalResult e = run_or_name([&] { return ex.Evaluate(layout, chunks, part, size_of, transport); });
      if (rank) {
        const auto all = rank->Gather({e.loss_sum, e.correct});
        e = {};
        for (const auto& v : all) {
          e.loss_sum += v[0];
          e.correct += v[1];
        }
      }
      st.test_loss = e.loss_sum / static_cast<double>(test.size());
      st.test_accuracy = e.correct / static_cast<double>(test.size());
    }
    write_log({{"event", "epoch"},
               {"epoch", st.epoch},
               {"train_loss", st.train_loss},
               {"train_accuracy", st.train_accuracy},
               {"test_loss", st.test_loss},
               {"test_accuracy", st.test_accuracy},
               {"seconds", st.seconds},
               {"samples_per_sec", st.samples_per_sec},
               {"prediction_error", st.prediction_error},
               {"stage_prediction_error", st.stage_prediction_error},
               {"stage_prediction_scale", st.stage_prediction_scale},
               {"recomputed_passes", st.recomputed_passes},
               {"forwards_run", st.forwards_run},
               {"weight_copies", st.weight_copies}});
    if (leader) {
      if (c.on_epoch) c.on_epoch(st);
      out.push_back(st);
    }
    pos = Position{epoch + 1, 0, 0, 0, 0};
  }
  if (!c.save_weights.empty())
    run_or_name([&] { SaveWeights(ex, rank.get(), layout, ec.stages, c.save_weights); });
  return out;
}

}  // namespace xpipe::exec
