#include "sim/scenario.h"

#include <algorithm>
#include <numeric>

#include "common/error.h"

namespace xpipe {

MemoryModel MemoryModelFor(const Schedule& s, OptimizerKind optimizer, bool recompute) {
  MemoryModel m;
  m.versions = VersionsKept(s);
  m.scratch = PredictionScratch(s);
  m.optimizer_copies = OptimizerStateCopies(optimizer);
  m.recompute = recompute;
  m.in_flight.assign(s.num_stages, 0);
  // Activations are held from a micro-batch's forward to the end of its
  // backward (its W under a split backward).
  std::vector<int> now(s.num_stages, 0);
  for (const auto& row : s.device_actions)
    for (const Action& a : row) {
      if (a.kind == ActionKind::kForward)
        m.in_flight[a.stage] = std::max(m.in_flight[a.stage], ++now[a.stage]);
      if (a.kind == ActionKind::kBackward || a.kind == ActionKind::kBackwardWeight) --now[a.stage];
    }
  return m;
}

ScenarioResult RunScenario(const Scenario& sc) {
  // Before anything is generated: a stage needs a layer.
  const long long wanted =
      sc.given ? sc.given->num_stages
               : static_cast<long long>(sc.schedule.devices) * std::max(1, sc.schedule.chunks);
  const int T = sc.given ? sc.given->micro_batches : sc.schedule.micro_batches;
  const int mini_batches = sc.given ? sc.given->mini_batches : sc.schedule.mini_batches;
  const int devices = sc.given ? sc.given->num_devices : sc.schedule.devices;
  if (wanted > static_cast<long long>(sc.profile.layers.size()))
    throw InputError("--stages", std::to_string(wanted) + " stages but the profile '" + sc.profile.name +
                                     "' has only " + std::to_string(sc.profile.layers.size()) + " layers");
  const int batch = sc.batch_size > 0 ? sc.batch_size : sc.profile.batch_size;
  if (batch % T != 0)
    throw InputError("--batch-size", "mini-batch of " + std::to_string(batch) +
                                         " samples does not split into " + std::to_string(T) +
                                         " micro-batches");
  const double micro = static_cast<double>(batch) / T;
  // Every time the simulation adds must fit int64 nanoseconds (292 years):
  // bound the sum of all the work and transfers it could do, in doubles,
  // from the whole profile (any partition's stages sum to at most this).
  {
    // In doubles: nothing here may overflow before it is checked.
    const double scale = micro / sc.profile.batch_size;
    double forward = 0, backward = 0, activations = 0, parameters = 0, weights_ns = 0;
    for (const Layer& l : sc.profile.layers) {
      forward += static_cast<double>(l.forward_ns) * scale;
      backward += static_cast<double>(l.backward_ns) * scale;
      activations += static_cast<double>(l.activation_bytes) * scale;
      parameters += static_cast<double>(l.parameter_bytes);
      weights_ns += static_cast<double>(l.update_ns + 2 * l.copy_ns + 2 * l.predict_ns);
    }
    const double bytes = 2.0 * activations;  // every cut, both ways, at most
    const double G = static_cast<double>(mini_batches) * T;
    const double S = static_cast<double>(wanted);
    // The slowest route any transfer may take (between nodes too), shared
    // by every replica at most.
    const bool nodes = sc.cluster.gpus_per_node > 0;
    const double R = std::max(1, sc.data_parallel);
    const double bandwidth =
        (nodes ? std::min(sc.cluster.link_bytes_per_sec, sc.cluster.network.bytes_per_sec)
               : sc.cluster.link_bytes_per_sec) /
        R;
    const double latency =
        static_cast<double>(nodes ? std::max(sc.cluster.link_latency_ns, sc.cluster.network.latency_ns)
                                  : sc.cluster.link_latency_ns);
    const double per_micro =
        2.0 * forward + backward + bytes / bandwidth * 1e9 +
        (sc.cluster.receive_bytes_per_sec > 0 ? bytes / sc.cluster.receive_bytes_per_sec * 1e9 : 0) +
        S * (2.0 * latency +
             4.0 * static_cast<double>(sc.cluster.pass_overhead_ns + sc.cluster.receive_fixed_ns +
                                       sc.cluster.send_fixed_ns));
    // Each stage's all-reduce: 2 (R - 1) steps, each ring hop sharing a link with at most S R others.
    const double allreduce = R > 1 ? 2.0 * R * S * (latency + parameters / bandwidth * 1e9) : 0;
    const double per_mini = 4.0 * parameters / sc.cluster.memory_bytes_per_sec * 1e9 + weights_ns + allreduce;
    double slowest = 1;
    for (double v : sc.cluster.speed) slowest = std::min(slowest, v);
    // Weight work is bounded per micro-batch too (a swap copies per micro-batch).
    const double total_ns =
        G * (per_micro + per_mini) * (1 + sc.cluster.compute_contention * devices) / slowest;
    if (!(total_ns < 1e18))
      throw InputError(sc.profile.name, "its times and sizes over " + std::to_string(mini_batches) +
                                            " mini-batches add up to more than int64 nanoseconds can hold");
  }
  ScenarioResult out;
  out.schedule = sc.given ? *sc.given : MakeSchedule(sc.schedule);
  const Schedule& s = out.schedule;
  const int stages = s.num_stages;
  MemoryModel memory = MemoryModelFor(s, sc.profile.optimizer, sc.recompute);
  if (sc.profile.optimizer_copies) memory.optimizer_copies = *sc.profile.optimizer_copies;
  Cluster cluster = sc.cluster;
  if (sc.data_parallel < 1) throw InputError("--data-parallel", "must be at least 1");
  if (cluster.devices > 0 &&
      static_cast<long long>(cluster.devices) < static_cast<long long>(s.num_devices) * sc.data_parallel)
    throw InputError(
        "--stages", std::to_string(static_cast<long long>(s.num_devices) * sc.data_parallel) +
                        " devices needed" +
                        (sc.data_parallel > 1 ? " (" + std::to_string(sc.data_parallel) + " replicas)" : "") +
                        ", cluster '" + cluster.name + "' has " + std::to_string(cluster.devices));
  // Where replica 0's stages run decides which link each boundary crosses.
  const std::vector<int> gpu = cluster.Place(s.num_devices, sc.data_parallel);
  PartitionRequest req;
  req.stages = stages;
  req.micro_batch_size = micro;
  req.cluster = &cluster;
  req.memory = &memory;
  req.memory_limit = sc.memory_limit;
  for (int k = 0; k + 1 < stages; ++k) {
    const int from = s.stage_device[k], to = s.stage_device[k + 1];
    req.boundary.push_back(from == to ? Route{"memory", 1e18, 0} : cluster.RouteBetween(gpu[from], gpu[to]));
  }
  const int L = static_cast<int>(sc.profile.layers.size());
  // The automatic partition is a dynamic program over stages x layers^2.
  if (sc.partition.empty() && sc.profile.partition.empty() && static_cast<double>(stages) * L * L > 1.5e8)
    throw InputError("--stages", "an automatic partition of " + std::to_string(L) + " layers into " +
                                     std::to_string(stages) +
                                     " stages is too large to search; give --partition");
  std::vector<int> parts = sc.partition.empty() ? sc.profile.partition : sc.partition;
  if (!parts.empty()) {
    if (static_cast<int>(parts.size()) != stages)
      throw InputError("--partition", "has " + std::to_string(parts.size()) + " stages, the schedule " +
                                          std::to_string(stages));
    if (std::accumulate(parts.begin(), parts.end(), 0LL) != L)
      throw InputError("--partition", "does not cover the profile's " + std::to_string(L) + " layers");
    for (int n : parts)
      if (n < 1) throw InputError("--partition", "every stage needs at least one layer");
    out.partition = EvaluatePartition(sc.profile, parts, req);
  } else {
    out.partition = AutoPartition(sc.profile, req);
    out.auto_partition = true;
  }
  out.stages = StageCosts(sc.profile, out.partition.layers_per_stage, micro);

  out.versions = SteadyStateSummary(s, AnalyzeVersions(s));
  out.versions_kept = memory.versions;
  SimConfig cfg;
  cfg.stages = out.stages;
  cfg.cluster = cluster;
  cfg.memory = memory;
  cfg.samples_per_mini_batch = batch;
  cfg.jitter = sc.jitter;
  cfg.seed = sc.seed;
  cfg.record_trace = sc.record_trace;
  cfg.engine = sc.engine;
  cfg.data_parallel = sc.data_parallel;
  cfg.overlap_allreduce = sc.overlap_allreduce;
  out.data_parallel = sc.data_parallel;
  out.device_memory_bytes = cluster.device_memory_bytes;
  out.sim = Simulate(s, cfg);
  return out;
}

}  // namespace xpipe
