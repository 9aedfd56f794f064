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
  ScenarioResult out;
  out.schedule = MakeSchedule(sc.schedule);
  const Schedule& s = out.schedule;
  const int stages = s.num_stages;
  const int batch = sc.batch_size > 0 ? sc.batch_size : sc.profile.batch_size;
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
