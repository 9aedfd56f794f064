#include "exec/trainer.h"

#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <thread>

#include "common/error.h"
#include "common/generators.h"
#include "common/schedule_io.h"
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

void SaveTensors(const std::vector<torch::Tensor>& tensors, const std::string& path) {
  const std::string tmp = path + ".tmp";
  torch::save(tensors, tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw InputError(path, "cannot rename temporary file");
}

std::vector<torch::Tensor> LoadTensors(const std::string& path) {
  std::vector<torch::Tensor> t;
  try {
    torch::load(t, path);
  } catch (const c10::Error& e) {
    throw InputError(path, "not a checkpoint of this run (" + std::string(e.what_without_backtrace()) + ")");
  }
  return t;
}

// The local stages' versions, weights and optimizer states, in stage order.
void AppendStages(Executor& ex, std::vector<torch::Tensor>& t) {
  for (int k = 0; k < ex.num_stages(); ++k) {
    if (!ex.is_local(k)) continue;
    t.push_back(torch::tensor(ex.version(k)));
    for (const auto& p : ex.params(k)) t.push_back(p.detach().cpu());
    for (const auto& s : ex.optimizer(k).State()) t.push_back(s.detach().cpu());
  }
}

void RestoreStages(Executor& ex, const std::vector<torch::Tensor>& t, std::size_t at,
                   const std::string& path) {
  torch::NoGradGuard no_grad;
  for (int k = 0; k < ex.num_stages(); ++k) {
    if (!ex.is_local(k)) continue;
    ex.set_version(k, t.at(at++).item<int64_t>());
    for (auto& p : ex.params(k)) {
      if (!t.at(at).sizes().equals(p.sizes())) throw InputError(path, "checkpoint is for a different model");
      p.copy_(t.at(at++));
    }
    std::vector<torch::Tensor> state;
    for (std::size_t i = 0; i < ex.optimizer(k).State().size(); ++i) state.push_back(t.at(at++));
    ex.optimizer(k).LoadState(state);
  }
}

// Single process, one file: [position ints, position doubles, then per stage:
// version, weights..., optimizer state...].
void SaveCheckpoint(Executor& ex, const Position& pos, const std::string& path) {
  std::vector<torch::Tensor> t = {torch::tensor({static_cast<int64_t>(pos.epoch), pos.step, pos.counted,
                                                 static_cast<int64_t>(ex.num_stages())}),
                                  torch::tensor({pos.loss_sum, pos.correct_sum}, torch::kFloat64)};
  AppendStages(ex, t);
  SaveTensors(t, path);
}

Position LoadCheckpoint(Executor& ex, const std::string& path) {
  const std::vector<torch::Tensor> t = LoadTensors(path);
  if (t.size() < 2 || t[0].numel() != 4 || t[0][3].item<int64_t>() != ex.num_stages())
    throw InputError(path, "checkpoint is for a different number of stages");
  Position pos;
  pos.epoch = static_cast<int>(t[0][0].item<int64_t>());
  pos.step = t[0][1].item<int64_t>();
  pos.counted = t[0][2].item<int64_t>();
  pos.loss_sum = t[1][0].item<double>();
  pos.correct_sum = t[1][1].item<double>();
  RestoreStages(ex, t, 2, path);
  return pos;
}

// Distributed: each rank writes its shard `<path>.rank<R>.<step>` (atomically),
// then, once all shards are on disk, rank 0 writes the manifest `<path>` that
// names the step; only then do ranks drop their older shards. A job killed
// anywhere in between resumes from the last manifest, whose shards all exist.
std::string ShardPath(const std::string& path, int rank, int64_t global_step) {
  return path + ".rank" + std::to_string(rank) + "." + std::to_string(global_step);
}

void SaveDistributed(Executor& ex, Rank& rank, const Position& pos, int64_t global_step,
                     int64_t previous_step, const std::string& path) {
  std::vector<torch::Tensor> t = {torch::tensor({global_step, static_cast<int64_t>(rank.world())})};
  AppendStages(ex, t);
  SaveTensors(t, ShardPath(path, rank.rank(), global_step));
  rank.Barrier();
  if (rank.rank() == 0)
    WriteFileAtomic(path, json({{"xpipe_checkpoint", 1},
                                {"world_size", rank.world()},
                                {"global_step", global_step},
                                {"epoch", pos.epoch},
                                {"step", pos.step},
                                {"counted", pos.counted},
                                {"loss_sum", pos.loss_sum},
                                {"correct_sum", pos.correct_sum}})
                                  .dump() +
                              "\n");
  rank.Barrier();
  if (previous_step >= 0 && previous_step != global_step)
    std::filesystem::remove(ShardPath(path, rank.rank(), previous_step));
}

// Returns the position and the global step of the manifest.
std::pair<Position, int64_t> LoadDistributed(Executor& ex, Rank& rank, const std::string& path) {
  std::ifstream in(path);
  json m;
  try {
    in >> m;
  } catch (const json::exception&) {
    throw InputError(path, "not a checkpoint manifest of a distributed run");
  }
  const auto field = [&](const char* name) {
    if (!m.contains(name) || !m[name].is_number())
      throw InputError(path, std::string("manifest has no ") + name);
    return m[name];
  };
  if (field("world_size").get<int>() != rank.world())
    throw InputError(path, "checkpoint was written by " + std::to_string(field("world_size").get<int>()) +
                               " ranks, this job has " + std::to_string(rank.world()));
  Position pos;
  const int64_t global_step = field("global_step").get<int64_t>();
  pos.epoch = field("epoch").get<int>();
  pos.step = field("step").get<int64_t>();
  pos.counted = field("counted").get<int64_t>();
  pos.loss_sum = field("loss_sum").get<double>();
  pos.correct_sum = field("correct_sum").get<double>();
  const std::string shard = ShardPath(path, rank.rank(), global_step);
  const std::vector<torch::Tensor> t = LoadTensors(shard);
  if (t.empty() || t[0].numel() != 2 || t[0][0].item<int64_t>() != global_step)
    throw InputError(shard, "shard does not belong to the manifest's step");
  RestoreStages(ex, t, 1, shard);
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
                       static_cast<double>(e.horizon), e.ratio});
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
    for (std::size_t i = 0; i < errors; ++i, at += 4)
      m.r.prediction_errors.push_back(
          {static_cast<int>(v[at]), static_cast<int64_t>(v[at + 1]), static_cast<int>(v[at + 2]), v[at + 3]});
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
  } else {
    throw InputError("--data", "expected fashion-mnist or synthetic (got '" + c.data + "')");
  }
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
  const int micro = c.batch_size / c.micro_batches;

  ScheduleParams sp;
  sp.kind = c.schedule;
  sp.devices = c.stages;
  sp.micro_batches = c.micro_batches;
  sp.chunks = c.chunks;
  sp.target = c.target;
  sp.backward_weights = c.backward_weights;
  sp.mini_batches = 1;
  const Schedule layout = Generate(sp);  // checks the parameters once, gives the stage map
  if (c.launch && c.launch->world != layout.num_devices)
    throw InputError("WORLD_SIZE", std::to_string(c.launch->world) + " ranks for " +
                                       std::to_string(layout.num_devices) +
                                       " pipeline devices (--stages): one rank per device");

  const Model model = MakeModel(c.model, train.shape, train.classes);
  const torch::Tensor sample = train.images.slice(0, 0, micro);
  const bool leader = !c.launch || c.launch->rank == 0;
  if (!c.profile_out.empty() && leader) {
    torch::set_num_threads(1);  // as a stage thread runs
    ProfileOptions po;
    po.optimizer = c.optimizer;
    WriteFileAtomic(c.profile_out, ProfileToJson(ProfileModel(c.model, model, sample, po)));
  }
  std::vector<int> sizes = c.partition;
  if (sizes.empty() && !c.even_partition && layout.num_stages > 1 &&
      layout.num_stages <= static_cast<int>(model.size()))
    sizes = BalancedPartition(CountedProfile(c.model, model, sample), layout.num_stages);
  ExecConfig ec;
  ec.stages = Partition(model, layout.num_stages, sizes);
  ec.sample_output_shapes = SampleOutputShapes(ec.stages, train.shape);
  ec.devices = Devices(c, layout);
  ec.optimizer = c.optimizer;
  ec.lr_schedule = c.lr_schedule;
  ec.total_steps = steps * c.epochs;
  ec.record_trace = !c.trace.empty();
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

  Position pos;
  int64_t saved_step = -1;  // distributed: the global step of the shards on disk
  if (c.resume) {
    if (c.checkpoint.empty()) throw InputError("--resume", "needs --checkpoint FILE");
    if (std::ifstream(c.checkpoint).good()) {
      if (rank)
        std::tie(pos, saved_step) = LoadDistributed(ex, *rank, c.checkpoint);
      else
        pos = LoadCheckpoint(ex, c.checkpoint);
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
    std::vector<double> stage_error_sum(layout.num_stages, 0.0);
    std::vector<int64_t> stage_error_count(layout.num_stages, 0);
    while (pos.step < steps) {
      const int64_t len =
          c.checkpoint_every > 0 ? std::min(c.checkpoint_every, steps - pos.step) : steps - pos.step;
      sp.mini_batches = static_cast<int>(len);
      const Schedule s = MakeSchedule(sp);
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
                 {"versions_held", r.versions_held}});
      if (!traced && !c.trace.empty() && leader) {
        WriteFileAtomic(c.trace, ToChromeTrace(s, r.trace));
        traced = true;
      }
      if (!c.checkpoint.empty() && c.checkpoint_every > 0) {
        Position next = pos;
        if (next.step == steps) next = Position{epoch + 1, 0, 0, 0, 0};
        if (rank) {
          const int64_t global_step = epoch_first + pos.step;
          run_or_name([&] { SaveDistributed(ex, *rank, next, global_step, saved_step, c.checkpoint); });
          saved_step = global_step;
        } else {
          SaveCheckpoint(ex, next, c.checkpoint);
        }
      }
    }
    st.train_loss = pos.counted ? pos.loss_sum / pos.counted : 0;
    st.train_accuracy = pos.counted ? pos.correct_sum / pos.counted : 0;
    st.seconds = seconds;
    st.samples_per_sec = seconds > 0 ? samples / seconds : 0;
    st.prediction_error = error_count ? error_sum / error_count : 0;
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
