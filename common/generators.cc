#include "common/generators.h"

#include <algorithm>
#include <string>

#include "common/error.h"
#include "common/versioning.h"

namespace xpipe {
namespace {

Action Make(int stage, ActionKind kind, int b, int j) {
  Action a;
  a.stage = stage;
  a.kind = kind;
  a.mini_batch = b;
  a.micro_batch = j;
  return a;
}

Action Update(int stage, int b) { return Make(stage, ActionKind::kUpdate, b, 0); }

Schedule Empty(const ScheduleParams& p, int stages) {
  Schedule s;
  s.kind = p.kind;
  s.num_devices = p.devices;
  s.num_stages = stages;
  s.micro_batches = p.micro_batches;
  s.mini_batches = p.mini_batches;
  s.device_actions.resize(p.devices);
  s.stage_device.resize(stages);
  for (int st = 0; st < stages; ++st) s.stage_device[st] = st % p.devices;
  return s;
}

void GPipe(const ScheduleParams& p, Schedule& s) {
  const int T = p.micro_batches;
  for (int k = 0; k < p.devices; ++k) {
    auto& row = s.device_actions[k];
    row.reserve(static_cast<std::size_t>(p.mini_batches) * (2 * T + 1));
    for (int b = 0; b < p.mini_batches; ++b) {
      for (int j = 0; j < T; ++j) row.push_back(Make(k, ActionKind::kForward, b, j));
      for (int i = 0; i < T; ++i)
        row.push_back(Make(k, ActionKind::kBackward, b, p.gpipe_backward_forward_order ? i : T - 1 - i));
      row.push_back(Update(k, b));
    }
  }
}

// 1F1B with a flush per mini-batch. With split_backward (ZB-H1) each B becomes
// I, and stage k defers W(j) until after I(j + k): the last stage then holds
// N-1 weight passes for its cool-down, stage 0 none, which fills the cool-down
// bubbles and gives a makespan of 3T + N - 1 unit steps when T >= N.
void OneFOneB(const ScheduleParams& p, Schedule& s, bool split_backward) {
  const int N = p.devices, T = p.micro_batches;
  const ActionKind back = split_backward ? ActionKind::kBackwardInput : ActionKind::kBackward;
  for (int k = 0; k < N; ++k) {
    auto& row = s.device_actions[k];
    row.reserve(static_cast<std::size_t>(p.mini_batches) * ((split_backward ? 3 : 2) * T + 1));
    const int lag = k;
    for (int b = 0; b < p.mini_batches; ++b) {
      int weights_done = 0;
      const auto emit_back = [&](int j) {
        row.push_back(Make(k, back, b, j));
        if (split_backward && j - lag >= 0) {
          row.push_back(Make(k, ActionKind::kBackwardWeight, b, j - lag));
          ++weights_done;
        }
      };
      const int warmup = std::min(N - k - 1, T);
      int next_f = 0, next_b = 0;
      for (; next_f < warmup; ++next_f) row.push_back(Make(k, ActionKind::kForward, b, next_f));
      while (next_f < T) {
        row.push_back(Make(k, ActionKind::kForward, b, next_f++));
        emit_back(next_b++);
      }
      while (next_b < T) emit_back(next_b++);
      for (; split_backward && weights_done < T; ++weights_done)
        row.push_back(Make(k, ActionKind::kBackwardWeight, b, weights_done));
      row.push_back(Update(k, b));
    }
  }
}

// Megatron-LM's interleaved 1F1B: device d holds chunks c = 0..V-1, i.e.
// stages c * N + d. Virtual micro-batch v maps to chunk (v mod NV) / N
// (reversed for backward) and micro-batch (v / NV) * N + v mod N.
void Interleaved(const ScheduleParams& p, Schedule& s) {
  const int N = p.devices, T = p.micro_batches, V = p.chunks;
  const int total = T * V;
  const auto chunk_of = [&](int v, bool forward) {
    const int c = (v % (N * V)) / N;
    return forward ? c : V - 1 - c;
  };
  const auto micro_of = [&](int v) { return (v / (N * V)) * N + v % N; };
  for (int d = 0; d < N; ++d) {
    auto& row = s.device_actions[d];
    row.reserve(static_cast<std::size_t>(p.mini_batches) * (2 * total + V));
    const int warmup = std::min((N - d - 1) * 2 + (V - 1) * N, total);
    for (int b = 0; b < p.mini_batches; ++b) {
      const auto fwd = [&](int v) {
        row.push_back(Make(chunk_of(v, true) * N + d, ActionKind::kForward, b, micro_of(v)));
      };
      const auto bwd = [&](int v) {
        row.push_back(Make(chunk_of(v, false) * N + d, ActionKind::kBackward, b, micro_of(v)));
      };
      for (int v = 0; v < warmup; ++v) fwd(v);
      for (int i = 0; i < total - warmup; ++i) {
        fwd(warmup + i);
        bwd(i);
      }
      for (int v = total - warmup; v < total; ++v) bwd(v);
      for (int c = 0; c < V; ++c) row.push_back(Update(c * N + d, b));
    }
  }
}

// Asynchronous 1F1B: stage k keeps at most N-k micro-batches in flight, counted
// globally over mini-batches (g = b*T + j); U(b) follows B(b, T-1).
void Async(const ScheduleParams& p, Schedule& s) {
  const int N = p.devices, T = p.micro_batches;
  const std::int64_t G = static_cast<std::int64_t>(p.mini_batches) * T;
  for (int k = 0; k < N; ++k) {
    auto& row = s.device_actions[k];
    row.reserve(static_cast<std::size_t>(2 * G + p.mini_batches));
    const auto f = [&](std::int64_t g) {
      row.push_back(Make(k, ActionKind::kForward, static_cast<int>(g / T), static_cast<int>(g % T)));
    };
    const auto bu = [&](std::int64_t g) {
      const int b = static_cast<int>(g / T), j = static_cast<int>(g % T);
      row.push_back(Make(k, ActionKind::kBackward, b, j));
      if (j == T - 1) row.push_back(Update(k, b));
    };
    const std::int64_t warmup = std::min<std::int64_t>(N - k, G);
    std::int64_t next_f = 0, next_b = 0;
    for (; next_f < warmup; ++next_f) f(next_f);
    while (next_f < G) {
      bu(next_b++);
      f(next_f++);
    }
    while (next_b < G) bu(next_b++);
  }
}

void CheckParams(const ScheduleParams& p) {
  const std::string name(ScheduleName(p.kind));
  if (p.kind == ScheduleKind::kCustom)
    throw InputError("--schedule", "custom schedules are read, not generated");
  if (p.devices < 1) throw InputError("--stages", "must be at least 1");
  if (p.micro_batches < 1) throw InputError("--micro-batches", "must be at least 1");
  if (p.mini_batches < 1) throw InputError("--mini-batches", "must be at least 1");
  if (p.chunks < 1) throw InputError("--chunks", "must be at least 1");
  // Sized before anything is allocated: with what reads a schedule (the
  // versioning pass, the simulator), 5 million passes take about 0.8 GB.
  constexpr double kMaxPasses = 5e6;
  const double passes = static_cast<double>(p.devices) * p.chunks * p.mini_batches * p.micro_batches;
  if (passes > kMaxPasses)
    throw InputError("--stages", std::to_string(p.devices * static_cast<long long>(p.chunks)) + " stages x " +
                                     std::to_string(p.mini_batches) + " mini-batches x " +
                                     std::to_string(p.micro_batches) +
                                     " micro-batches is more than the 5 million passes xpipe handles");
  if (p.chunks > 1 && p.kind != ScheduleKind::kInterleaved1F1B)
    throw InputError("--chunks", "only interleaved-1f1b places several chunks on a device");
  const std::string TN = " (T=" + std::to_string(p.micro_batches) + ", N=" + std::to_string(p.devices) + ")";
  switch (TraitsOf(p.kind).micro_batches) {
    case MicroBatchRule::kAny:
      break;
    case MicroBatchRule::kMultipleOfN:
      if (p.micro_batches % p.devices != 0)
        throw InputError("--micro-batches", name + " needs T divisible by the number of devices" + TN);
      break;
    case MicroBatchRule::kOne:
      if (p.micro_batches != 1)
        throw InputError("--micro-batches", name +
                                                " runs one micro-batch per mini-batch (T = 1); use "
                                                "pipedream-2bw or xpipe for T > 1");
      break;
    case MicroBatchRule::kAtLeastNMinus1:
      if (p.micro_batches < p.devices - 1)
        throw InputError("--micro-batches", name + " keeps two weight versions only with T >= N-1" + TN);
      break;
  }
}

}  // namespace

Schedule Generate(const ScheduleParams& p) {
  CheckParams(p);
  const int stages = p.kind == ScheduleKind::kInterleaved1F1B ? p.devices * p.chunks : p.devices;
  Schedule s = Empty(p, stages);
  switch (p.kind) {
    case ScheduleKind::kGPipe:
      GPipe(p, s);
      break;
    case ScheduleKind::kOneFOneBFlush:
      OneFOneB(p, s, /*split_backward=*/false);
      break;
    case ScheduleKind::kZeroBubbleH1:
      OneFOneB(p, s, /*split_backward=*/true);
      break;
    case ScheduleKind::kInterleaved1F1B:
      Interleaved(p, s);
      break;
    default:
      XPIPE_CHECK(IsAsynchronous(p.kind), "unhandled schedule kind");
      Async(p, s);
  }
  return s;
}

Schedule MakeSchedule(const ScheduleParams& p) {
  Schedule s = Generate(p);
  AnnotateWeights(s, p.target, p.backward_weights, p.prediction_base);
  return s;
}

}  // namespace xpipe
