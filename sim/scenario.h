// Scenario: everything one what-if run needs (profile, cluster, schedule
// parameters, partition), and RunScenario, which builds the schedule, picks
// or checks the partition, and simulates it. Used by `xpipe sim` and sweeps.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/cluster.h"
#include "common/generators.h"
#include "common/partition.h"
#include "common/profile.h"
#include "common/versioning.h"
#include "sim/simulator.h"

namespace xpipe {

struct Scenario {
  Profile profile;
  Cluster cluster;
  ScheduleParams schedule;  // devices = N, micro_batches = T, ...
  // A schedule read from a file (annotated): run instead of generating one
  // from `schedule` (whose devices, T and mini-batches are then its own).
  std::optional<Schedule> given;
  int batch_size = 0;          // samples per mini-batch; 0 = the profile's batch
  std::vector<int> partition;  // layers per stage; empty = the profile's, else automatic
  bool recompute = false;
  std::optional<Bytes> memory_limit;  // for the automatic partition
  double jitter = 0;
  std::uint64_t seed = 1;
  bool record_trace = false;
  SimEngine engine = SimEngine::kAuto;
  int data_parallel = 1;  // pipeline replicas (SimConfig::data_parallel)
  bool overlap_allreduce = false;
};

struct ScenarioResult {
  Schedule schedule;
  PartitionResult partition;
  bool auto_partition = false;
  std::vector<StageCost> stages;
  std::vector<StageVersionSummary> versions;
  std::vector<int> versions_kept;
  int data_parallel = 1;                     // replicas; GPUs = schedule.num_devices x this
  std::optional<Bytes> device_memory_bytes;  // the cluster's, to flag a stage that does not fit
  SimResult sim;
};

// The memory coefficients a schedule implies (versions, scratch, in-flight).
MemoryModel MemoryModelFor(const Schedule& s, OptimizerKind optimizer, bool recompute);

// Throws InputError for impossible combinations (stages > layers, bad partition).
ScenarioResult RunScenario(const Scenario& sc);

}  // namespace xpipe
