#include "exec/trainer.h"

#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
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

// Layout: [position ints, position doubles, then per stage: version, weights..., optimizer state...].
void SaveCheckpoint(Executor& ex, const Position& pos, const std::string& path) {
  std::vector<torch::Tensor> t = {torch::tensor({static_cast<int64_t>(pos.epoch), pos.step, pos.counted,
                                                 static_cast<int64_t>(ex.num_stages())}),
                                  torch::tensor({pos.loss_sum, pos.correct_sum}, torch::kFloat64)};
  for (int k = 0; k < ex.num_stages(); ++k) {
    t.push_back(torch::tensor(ex.version(k)));
    for (const auto& p : ex.params(k)) t.push_back(p.detach().cpu());
    for (const auto& s : ex.optimizer(k).State()) t.push_back(s.detach().cpu());
  }
  SaveTensors(t, path);
}

Position LoadCheckpoint(Executor& ex, const std::string& path) {
  std::vector<torch::Tensor> t;
  try {
    torch::load(t, path);
  } catch (const c10::Error& e) {
    throw InputError(path, "not a checkpoint of this run (" + std::string(e.what_without_backtrace()) + ")");
  }
  if (t.size() < 2 || t[0].numel() != 4 || t[0][3].item<int64_t>() != ex.num_stages())
    throw InputError(path, "checkpoint is for a different number of stages");
  Position pos;
  pos.epoch = static_cast<int>(t[0][0].item<int64_t>());
  pos.step = t[0][1].item<int64_t>();
  pos.counted = t[0][2].item<int64_t>();
  pos.loss_sum = t[1][0].item<double>();
  pos.correct_sum = t[1][1].item<double>();
  std::size_t at = 2;
  torch::NoGradGuard no_grad;
  for (int k = 0; k < ex.num_stages(); ++k) {
    ex.set_version(k, t.at(at++).item<int64_t>());
    for (auto& p : ex.params(k)) {
      if (!t.at(at).sizes().equals(p.sizes())) throw InputError(path, "checkpoint is for a different model");
      p.copy_(t.at(at++));
    }
    std::vector<torch::Tensor> state;
    for (std::size_t i = 0; i < ex.optimizer(k).State().size(); ++i) state.push_back(t.at(at++));
    ex.optimizer(k).LoadState(state);
  }
  return pos;
}

std::vector<torch::Device> Devices(const std::string& kind, const Schedule& layout) {
  std::vector<torch::Device> out;
  if (kind == "cpu") {
    out.assign(layout.num_stages, torch::kCPU);
  } else if (kind == "cuda") {
    if (!torch::cuda::is_available()) throw InputError("--device", "no CUDA device is visible");
    const int gpus = static_cast<int>(torch::cuda::device_count());
    for (int k = 0; k < layout.num_stages; ++k)
      out.emplace_back(torch::kCUDA, static_cast<c10::DeviceIndex>(layout.stage_device[k] % gpus));
  } else {
    throw InputError("--device", "expected cpu or cuda (got '" + kind + "')");
  }
  return out;
}

}  // namespace

std::vector<EpochStats> Train(const TrainConfig& c) {
  Dataset train, test;
  if (c.data == "fashion-mnist") {
    train = LoadFashionMnist(true);
    test = LoadFashionMnist(false);
  } else if (c.data == "synthetic") {
    train = Synthetic(c.synthetic_samples, {1, 16, 16}, 10, c.seed, /*teacher_seed=*/12345);
    test = Synthetic(c.synthetic_samples / 4, {1, 16, 16}, 10, c.seed + 1, /*teacher_seed=*/12345);
  } else {
    throw InputError("--data", "expected fashion-mnist or synthetic (got '" + c.data + "')");
  }
  if (c.batch_size < 1 || c.batch_size % c.micro_batches != 0)
    throw InputError("--batch-size", std::to_string(c.batch_size) + " samples do not split into " +
                                         std::to_string(c.micro_batches) + " micro-batches");
  if (c.epochs < 1) throw InputError("--epochs", "must be at least 1");
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
  sp.mini_batches = 1;
  const Schedule layout = Generate(sp);  // checks the parameters once, gives the stage map

  const Model model = MakeModel(c.model, train.shape, train.classes);
  const torch::Tensor sample = train.images.slice(0, 0, micro);
  if (!c.profile_out.empty()) {
    torch::set_num_threads(1);  // as a stage thread runs
    WriteFileAtomic(c.profile_out, ProfileToJson(ProfileModel(c.model, model, sample)));
  }
  std::vector<int> sizes = c.partition;
  if (sizes.empty() && !c.even_partition && layout.num_stages > 1 &&
      layout.num_stages <= static_cast<int>(model.size()))
    sizes = BalancedPartition(CountedProfile(c.model, model, sample), layout.num_stages);
  ExecConfig ec;
  ec.stages = Partition(model, layout.num_stages, sizes);
  ec.devices = Devices(c.device, layout);
  ec.optimizer = c.optimizer;
  ec.lr_schedule = c.lr_schedule;
  ec.total_steps = steps * c.epochs;
  ec.record_trace = !c.trace.empty();
  Executor ex(ec, InitStages(ec.stages, c.seed));

  Position pos;
  if (c.resume) {
    if (c.checkpoint.empty()) throw InputError("--resume", "needs --checkpoint FILE");
    if (std::ifstream(c.checkpoint).good()) pos = LoadCheckpoint(ex, c.checkpoint);
  }
  std::ofstream log;
  if (!c.log.empty()) {
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
      if (c.progress && isatty(STDERR_FILENO)) {
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
      SegmentResult r;
      try {
        r = ex.Run(s, data, epoch_first + pos.step, &done);
      } catch (...) {
        running = false;
        if (progress.joinable()) progress.join();
        throw;
      }
      running = false;
      if (progress.joinable()) progress.join();
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
      for (const auto& stage : r.passes)
        for (const auto& p : stage) st.recomputed_passes += p.recomputed;
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
      if (!traced && !c.trace.empty()) {
        WriteFileAtomic(c.trace, ToChromeTrace(s, r.trace));
        traced = true;
      }
      if (!c.checkpoint.empty() && c.checkpoint_every > 0) {
        Position next = pos;
        if (next.step == steps) next = Position{epoch + 1, 0, 0, 0, 0};
        SaveCheckpoint(ex, next, c.checkpoint);
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
      double loss = 0, correct = 0;
      for (int64_t i = 0; i < test.size(); i += 1000) {
        const int64_t n = std::min<int64_t>(1000, test.size() - i);
        const torch::Tensor logits = ex.Predict(test.images.slice(0, i, i + n));
        const torch::Tensor y = test.labels.slice(0, i, i + n);
        loss += torch::cross_entropy_loss(logits, y).item<double>() * n;
        correct += logits.argmax(1).eq(y).sum().item<double>();
      }
      st.test_loss = loss / test.size();
      st.test_accuracy = correct / test.size();
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
               {"recomputed_passes", st.recomputed_passes}});
    if (c.on_epoch) c.on_epoch(st);
    out.push_back(st);
    pos = Position{epoch + 1, 0, 0, 0, 0};
  }
  if (!c.save_weights.empty()) {
    // One JSON header line with every tensor's stage and shape, then the raw
    // float32 data in that order: byte-stable, unlike torch::save archives.
    json header = json::array();
    std::string raw;
    for (int k = 0; k < ex.num_stages(); ++k)
      for (const auto& p : ex.params(k)) {
        const torch::Tensor t = p.detach().cpu().contiguous().to(torch::kFloat32);
        header.push_back({{"stage", k}, {"shape", t.sizes().vec()}});
        raw.append(static_cast<const char*>(t.data_ptr()), t.numel() * sizeof(float));
      }
    WriteFileAtomic(c.save_weights, json({{"xpipe_weights", 1}, {"tensors", header}}).dump() + "\n" + raw);
  }
  return out;
}

}  // namespace xpipe::exec
