#include "exec/validation.h"

#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <numeric>
#include <thread>

#include "common/error.h"
#include "common/generators.h"
#include "exec/executor.h"
#include "exec/model.h"
#include "sim/scenario.h"

namespace xpipe::exec {
namespace {

// The stages every rank builds: the model split as the trainer splits it
// (balanced by counted cost), so no rank needs another's profile.
struct Layout {
  Model model;
  std::vector<int> partition;
  std::vector<Model> stages;
};

Layout MakeLayout(const ValidationSetup& v) {
  if (v.stages < 1) throw InputError("--stages", "must be at least 1");
  if (v.micro_batches < 1) throw InputError("--micro-batches", "must be at least 1");
  if (v.micro_batch_size < 1) throw InputError("--micro-batch-size", "must be at least 1");
  if (v.mini_batches < 1) throw InputError("--mini-batches", "must be at least 1");
  if (v.runs < 1) throw InputError("--runs", "must be at least 1");
  Layout l;
  l.model = MakeModel(v.model, v.input_shape, v.classes);
  if (v.stages > static_cast<int>(l.model.size()))
    throw InputError("--stages", std::to_string(v.stages) + " stages but the model '" + v.model +
                                     "' has only " + std::to_string(l.model.size()) + " layers");
  std::vector<int64_t> shape = {v.micro_batch_size};
  shape.insert(shape.end(), v.input_shape.begin(), v.input_shape.end());
  const torch::Tensor sample = torch::zeros(shape);
  l.partition = v.stages > 1 ? BalancedPartition(CountedProfile(v.model, l.model, sample), v.stages)
                             : std::vector<int>{static_cast<int>(l.model.size())};
  l.stages = Partition(l.model, v.stages, l.partition);
  return l;
}

torch::Tensor Sample(const ValidationSetup& v, int64_t samples, uint64_t seed) {
  std::vector<int64_t> shape = {samples};
  shape.insert(shape.end(), v.input_shape.begin(), v.input_shape.end());
  torch::Generator gen = at::detail::createCPUGenerator(seed);
  return torch::randn(shape, gen);
}

// Step 1's layers, on one thread as a stage thread runs.
Profile ProfileLayers(const ValidationSetup& v, const Layout& layout) {
  torch::set_num_threads(1);
  // As many distinct micro-batches as a mini-batch has, as the measured run
  // feeds its passes (its own samples, not these).
  const int64_t m = v.micro_batch_size;
  const torch::Tensor samples = Sample(v, m * v.micro_batches, v.seed);
  std::vector<torch::Tensor> inputs;
  inputs.reserve(static_cast<std::size_t>(v.micro_batches));
  for (int j = 0; j < v.micro_batches; ++j) inputs.push_back(samples.slice(0, j * m, (j + 1) * m));
  Profile p = ProfileModel(v.model, layout.model, inputs, v.profiling);
  p.partition = layout.partition;
  return p;
}

// Rank r's trace to rank 0, in rank 0's time: spans as six numbers each.
Trace GatherTrace(const SegmentResult& r, Rank* rank) {
  if (rank == nullptr) return r.trace;
  std::vector<double> mine = {static_cast<double>(r.origin_ns)};
  for (const ActionSpan& sp : r.trace.spans) {
    mine.insert(mine.end(), {static_cast<double>(sp.track), static_cast<double>(sp.action.kind),
                             static_cast<double>(sp.action.stage), static_cast<double>(sp.action.mini_batch),
                             static_cast<double>(sp.action.micro_batch), static_cast<double>(sp.start_ns),
                             static_cast<double>(sp.end_ns)});
  }
  const std::vector<std::vector<double>> all = rank->Gather(mine);
  Trace t;
  if (all.empty()) return t;
  const double origin = all[0][0];
  for (const auto& v : all) {
    const auto shift = static_cast<TimeNs>(v[0] - origin);
    for (std::size_t i = 1; i + 7 <= v.size(); i += 7) {
      ActionSpan sp;
      sp.track = static_cast<int32_t>(v[i]);
      sp.action.kind = static_cast<ActionKind>(static_cast<int>(v[i + 1]));
      sp.action.stage = static_cast<int>(v[i + 2]);
      sp.action.mini_batch = static_cast<int>(v[i + 3]);
      sp.action.micro_batch = static_cast<int>(v[i + 4]);
      sp.start_ns = static_cast<TimeNs>(v[i + 5]) + shift;
      sp.end_ns = static_cast<TimeNs>(v[i + 6]) + shift;
      t.spans.push_back(sp);
    }
  }
  return t;
}

// The one rule both timelines are reduced by: stage 0's update times give the
// steady-state time per mini-batch; each stage's spans its busy time.
struct Reduced {
  TimeNs mini_batch_ns = 0;
  std::vector<TimeNs> busy_ns;  // per stage, per mini-batch
};
Reduced Reduce(const Trace& t, const Schedule& s) {
  Reduced r;
  r.busy_ns.assign(s.num_stages, 0);
  std::vector<TimeNs> updates;
  TimeNs first = std::numeric_limits<TimeNs>::max(), last = 0;
  for (const ActionSpan& sp : t.spans) {
    if (sp.track >= s.num_devices) continue;  // a link
    first = std::min(first, sp.start_ns);
    last = std::max(last, sp.end_ns);
    r.busy_ns[sp.action.stage] += sp.end_ns - sp.start_ns;
    if (sp.action.kind == ActionKind::kUpdate && sp.action.stage == 0) updates.push_back(sp.end_ns);
  }
  std::sort(updates.begin(), updates.end());
  r.mini_batch_ns = SteadyMiniBatchNs(updates, s.mini_batches, last > first ? last - first : 0);
  for (TimeNs& b : r.busy_ns) b /= s.mini_batches;
  return r;
}

}  // namespace

RuntimeProfile ProfileRuntime(const ValidationSetup& v, Rank* rank) {
  const Layout layout = MakeLayout(v);
  RuntimeProfile out;
  const bool leader = rank == nullptr || rank->rank() == 0;
  if (leader) {
    out.profile = ProfileLayers(v, layout);
    out.cluster.pass_overhead_ns = MeasurePassOverhead(v.profiling);
    if (v.stages > 1)
      out.cluster.compute_contention =
          MeasureContention(layout.model, Sample(v, v.micro_batch_size, v.seed), v.profiling);
  }
  // Message sizes around the model's activations: 1 KiB to 1 MiB.
  const std::vector<int64_t> floats = {256, 4096, 65536, 262144};
  // The message a stage sends: stage 0's output for one micro-batch.
  int64_t boundary = v.micro_batch_size;
  const std::vector<std::vector<int64_t>> shapes = SampleOutputShapes(layout.stages, v.input_shape);
  for (int64_t dim : shapes.front()) boundary *= dim;
  Delivery delivery;
  if (rank == nullptr) {
    const auto hub = MakeInProcessHub(2);
    std::thread echo([&] {
      torch::set_num_threads(1);
      MeasureLink(*hub->Endpoint(1), 0, false, floats, v.profiling);
    });
    out.link = MeasureLink(*hub->Endpoint(0), 1, true, floats, v.profiling);
    echo.join();
    std::thread sender([&] {
      torch::set_num_threads(1);
      MeasureReceiveCost(*hub->Endpoint(1), 0, false, floats, v.profiling);
    });
    out.receive = MeasureReceiveCost(*hub->Endpoint(0), 1, true, floats, v.profiling);
    sender.join();
    std::thread receiver([&] {
      torch::set_num_threads(1);
      MeasureDelivery(*hub->Endpoint(1), 0, false, boundary, v.profiling);
    });
    delivery = MeasureDelivery(*hub->Endpoint(0), 1, true, boundary, v.profiling);
    receiver.join();
  } else {
    rank->Barrier();  // rank 0 has profiled
    if (rank->world() > 1 && rank->rank() < 2) {
      out.link = MeasureLink(rank->data(), 1 - rank->rank(), rank->rank() == 0, floats, v.profiling);
      out.receive = MeasureReceiveCpu(rank->data(), 1 - rank->rank(), rank->rank() == 0, floats, v.profiling);
      delivery = MeasureDelivery(rank->data(), 1 - rank->rank(), rank->rank() == 0, boundary, v.profiling);
    }
    rank->Barrier();
  }
  if (!leader) return out;
  Cluster& c = out.cluster;
  c.name = rank == nullptr ? "this machine, stages as threads" : "this machine, one process per stage (Gloo)";
  c.source =
      "measured by xpipe's profiler: link fitted to ping-pongs of 1 KiB to 1 MiB, its latency raised to a "
      "stage output's delivery while the sender computes";
  c.devices = v.stages;
  // A hand-off by reference costs no time per byte.
  c.link_bytes_per_sec = out.link.bytes_per_sec > 0 ? out.link.bytes_per_sec : 1e15;
  out.delivery_ns = delivery.one_way_ns;
  out.send_ns = delivery.send_ns;
  out.delivery_bytes = boundary * static_cast<Bytes>(sizeof(float));
  const TimeNs wire_ns = TransferNs(out.delivery_bytes, c.link_bytes_per_sec);
  // Gloo moves bytes with the CPU that computes: no copy engine beside it,
  // the receiver's threads take cycles from its compute, and the send call
  // holds the sender for longer than the bytes' wire time (the rest is billed
  // to the pass that sends; in one process a send is a hand-off).
  c.overlap_compute = rank == nullptr;
  c.send_fixed_ns = rank != nullptr ? std::max<TimeNs>(0, out.send_ns - wire_ns) : 0;
  // The latency: the ping-pong's, or what is left of a message's delivery
  // while its sender computes after the bytes (and after the send's extra
  // time, billed to its pass), if more (on Gloo, much more).
  c.link_latency_ns = std::max(out.link.latency_ns, out.delivery_ns - wire_ns - c.send_fixed_ns);
  c.receive_fixed_ns = out.receive.latency_ns;
  c.receive_bytes_per_sec = out.receive.bytes_per_sec;
  return out;
}

ScheduleValidation ValidateSchedule(const ValidationSetup& v, const RuntimeProfile& rp, ScheduleKind kind,
                                    Rank* rank) {
  const Layout layout = MakeLayout(v);
  ScheduleParams sp;
  sp.kind = kind;
  sp.devices = v.stages;
  // PipeDream runs one micro-batch per mini-batch: the same passes, T = 1.
  sp.micro_batches = TraitsOf(kind).micro_batches == MicroBatchRule::kOne ? 1 : v.micro_batches;
  sp.mini_batches = v.mini_batches;
  sp.backward_weights = v.backward_weights;
  ScheduleValidation out;
  out.schedule = MakeSchedule(sp);
  const Schedule& s = out.schedule;
  if (rank != nullptr && rank->world() != s.num_devices)
    throw InputError("WORLD_SIZE", std::to_string(rank->world()) + " ranks for " +
                                       std::to_string(s.num_devices) +
                                       " pipeline devices: one rank per device");
  const bool leader = rank == nullptr || rank->rank() == 0;

  // Step 3 first on every rank (the prediction needs no run, the run no prediction).
  ExecConfig ec;
  ec.stages = layout.stages;
  ec.sample_output_shapes = SampleOutputShapes(ec.stages, v.input_shape);
  ec.devices.assign(s.num_stages, torch::kCPU);
  ec.micro_batch_size = v.micro_batch_size;
  ec.optimizer = v.optimizer;
  ec.record_trace = true;
  ec.measure_prediction_errors = false;  // a diagnostic the prediction does not bill
  ec.stage_rank = s.stage_device;
  if (rank != nullptr) ec.local_ranks = {rank->rank()};
  Executor ex(ec, InitStages(ec.stages, v.seed));
  const int64_t m = v.micro_batch_size;
  const torch::Tensor images = Sample(v, m * v.micro_batches, v.seed + 1);
  torch::Generator gen = at::detail::createCPUGenerator(v.seed + 2);
  const torch::Tensor labels = torch::randint(v.classes, {m * v.micro_batches}, gen, torch::kLong);
  // Each pass reads the next of v.micro_batches distinct micro-batches, as
  // the profile's iterations do, whatever the schedule's T (PipeDream's 1
  // would otherwise read one micro-batch, always in cache).
  const int pool = v.micro_batches;
  const MicroBatchFn data = [&, pool](int64_t b, int j) {
    const int64_t k = (b * s.micro_batches + j) % pool;
    return std::make_pair(images.slice(0, k * m, (k + 1) * m), labels.slice(0, k * m, (k + 1) * m));
  };
  Transport* transport = rank != nullptr ? &rank->data() : nullptr;
  sp.mini_batches = std::min(2, v.mini_batches);
  ex.Run(MakeSchedule(sp), data, 0, transport);  // warm-up: allocator, caches, connections
  // `rp` gave the link and the pass overhead; the layers are profiled again
  // in each round: rounds of profile-then-run, so that the machine's drift (a shared
  // machine speeds up and slows down over seconds) meets both alike. The
  // prediction of a round uses that round's profile and nothing of its run.
  struct Round {
    Reduced measured, predicted;
    TimeNs predicted_ns = 0;
    Trace measured_trace, predicted_trace;
  };
  std::vector<Round> rounds;
  for (int r = 0; r < v.runs; ++r) {
    Profile profile;
    if (rank != nullptr) rank->Barrier();
    if (leader) profile = ProfileLayers(v, layout);
    if (rank != nullptr) rank->Barrier();
    Trace t = GatherTrace(ex.Run(s, data, 0, transport), rank);
    if (!leader) continue;
    Round round;
    round.measured = Reduce(t, s);
    round.measured_trace = std::move(t);
    // Step 2: from the profile and the cluster alone.
    Scenario sc;
    sc.profile = profile;
    sc.cluster = rp.cluster;
    sc.schedule = sp;
    sc.schedule.mini_batches = v.mini_batches;
    sc.batch_size = static_cast<int>(v.micro_batch_size * sp.micro_batches);
    sc.partition = layout.partition;
    sc.record_trace = true;
    ScenarioResult predicted = RunScenario(sc);
    round.predicted = Reduce(predicted.sim.trace, predicted.schedule);
    round.predicted_ns = predicted.sim.mini_batch_ns;
    round.predicted_trace = std::move(predicted.sim.trace);
    rounds.push_back(std::move(round));
  }
  if (!leader) return out;
  // Each round's prediction against its own run: the machine's speed drifts
  // between rounds, and a round's profile and run meet the same stretch of
  // it. The round of the median error gives the figures and the timelines;
  // the stages' busy times are medians over all rounds.
  for (const Round& r : rounds) {
    out.round_predicted_ns.push_back(r.predicted_ns);
    out.round_measured_ns.push_back(r.measured.mini_batch_ns);
  }
  std::vector<std::size_t> order(rounds.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  const auto error = [&](std::size_t i) {
    return static_cast<double>(rounds[i].predicted_ns - rounds[i].measured.mini_batch_ns) /
           static_cast<double>(std::max<TimeNs>(1, rounds[i].measured.mini_batch_ns));
  };
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return error(a) < error(b); });
  Round& mid = rounds[order[order.size() / 2]];
  out.predicted_ns = mid.predicted_ns;
  out.measured_ns = mid.measured.mini_batch_ns;
  out.predicted = std::move(mid.predicted_trace);
  out.measured = std::move(mid.measured_trace);
  const auto median = [&](const std::function<TimeNs(const Round&)>& f) {
    std::vector<TimeNs> x;
    x.reserve(rounds.size());
    for (const Round& r : rounds) x.push_back(f(r));
    std::sort(x.begin(), x.end());
    return x[x.size() / 2];
  };
  for (int k = 0; k < s.num_stages; ++k)
    out.stages.push_back({median([k](const Round& r) { return r.predicted.busy_ns[k]; }),
                          median([k](const Round& r) { return r.measured.busy_ns[k]; })});
  return out;
}

}  // namespace xpipe::exec
