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
  const long long wanted = static_cast<long long>(sc.schedule.devices) * std::max(1, sc.schedule.chunks);
  if (wanted > static_cast<long long>(sc.profile.layers.size()))
    throw InputError("--stages", std::to_string(wanted) + " stages but the profile '" + sc.profile.name +
                                     "' has only " + std::to_string(sc.profile.layers.size()) + " layers");
  const int batch = sc.batch_size > 0 ? sc.batch_size : sc.profile.batch_size;
  if (batch % sc.schedule.micro_batches != 0)
    throw InputError("--batch-size", "mini-batch of " + std::to_string(batch) +
                                         " samples does not split into " +
                                         std::to_string(sc.schedule.micro_batches) + " micro-batches");
  ScenarioResult out;
  out.schedule = MakeSchedule(sc.schedule);
  const Schedule& s = out.schedule;
  const int stages = s.num_stages;
  if (batch % s.micro_batches != 0)
    throw InputError("--batch-size", "mini-batch of " + std::to_string(batch) +
                                         " samples does not split into " + std::to_string(s.micro_batches) +
                                         " micro-batches");
  const double micro = static_cast<double>(batch) / s.micro_batches;
  const MemoryModel memory = MemoryModelFor(s, sc.profile.optimizer, sc.recompute);
  Cluster cluster = sc.cluster;
  if (cluster.devices > 0 && cluster.devices < s.num_devices)
    throw InputError("--stages", std::to_string(s.num_devices) + " devices needed, cluster '" + cluster.name +
                                     "' has " + std::to_string(cluster.devices));
  PartitionRequest req;
  req.stages = stages;
  req.micro_batch_size = micro;
  req.cluster = &cluster;
  req.memory = &memory;
  req.memory_limit = sc.memory_limit;
  const int L = static_cast<int>(sc.profile.layers.size());
  if (stages > L)
    throw InputError("--stages", std::to_string(stages) + " stages but the profile '" + sc.profile.name +
                                     "' has only " + std::to_string(L) + " layers");
  std::vector<int> parts = sc.partition.empty() ? sc.profile.partition : sc.partition;
  if (!parts.empty()) {
    if (static_cast<int>(parts.size()) != stages)
      throw InputError("--partition", "has " + std::to_string(parts.size()) + " stages, the schedule " +
                                          std::to_string(stages));
    if (std::accumulate(parts.begin(), parts.end(), 0) != L)
      throw InputError("--partition", "does not cover the profile's " + std::to_string(L) + " layers");
    for (int n : parts)
      if (n < 1) throw InputError("--partition", "every stage needs at least one layer");
    out.partition = EvaluatePartition(sc.profile, parts, req);
  } else {
    out.partition = AutoPartition(sc.profile, req);
    out.auto_partition = true;
  }
  out.stages = StageCosts(sc.profile, out.partition.layers_per_stage, micro);
  // Every time the simulation adds must fit int64 nanoseconds (292 years):
  // bound the sum of all the work and transfers it could do, in doubles.
  double total_ns = 0;
  const double G = static_cast<double>(s.mini_batches) * s.micro_batches;
  for (const StageCost& c : out.stages) {
    const double bytes = static_cast<double>(c.input_bytes + c.output_bytes);
    const double transfers =
        bytes / cluster.link_bytes_per_sec * 1e9 + 2.0 * static_cast<double>(cluster.link_latency_ns) +
        (cluster.receive_bytes_per_sec > 0 ? bytes / cluster.receive_bytes_per_sec * 1e9 : 0);
    const double weights = 4.0 * static_cast<double>(c.parameter_bytes) / cluster.memory_bytes_per_sec * 1e9 +
                           static_cast<double>(c.update_ns + 2 * c.copy_ns + 2 * c.predict_ns);
    total_ns +=
        G * (2.0 * static_cast<double>(c.forward_ns) + static_cast<double>(c.backward_ns) + transfers +
             4.0 * static_cast<double>(cluster.pass_overhead_ns + cluster.receive_fixed_ns)) +
        s.mini_batches * weights * s.micro_batches;
  }
  double slowest = 1;
  for (double v : cluster.speed) slowest = std::min(slowest, v);
  total_ns *= (1 + cluster.compute_contention * s.num_devices) / slowest;
  if (!(total_ns < 1e18))
    throw InputError(sc.profile.name, "its times and sizes over " + std::to_string(s.mini_batches) +
                                          " mini-batches add up to more than int64 nanoseconds can hold");
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
  out.sim = Simulate(s, cfg);
  return out;
}

}  // namespace xpipe
