// Stage costs from a profile and a partition, and the automatic partitioner.
//
// Micro-batch scaling is linear: a micro-batch of m samples costs m / B of the
// profile's batch B in time and in activation bytes (documented in
// docs/profile-format.md). Parameters do not scale.
#pragma once

#include <optional>
#include <vector>

#include "common/cluster.h"
#include "common/profile.h"

namespace xpipe {

struct StageCost {
  int first_layer = 0, num_layers = 0;
  TimeNs forward_ns = 0, backward_ns = 0;  // per micro-batch
  Bytes parameter_bytes = 0;
  Bytes activation_bytes = 0;  // kept per in-flight micro-batch (all layer outputs)
  Bytes input_bytes = 0;       // received per micro-batch
  // Kept per in-flight micro-batch under recomputation: the layers' own
  // figure where the profile gives one (a transformer keeps each block's
  // input); 0: the stage's input alone.
  Bytes recompute_bytes = 0;
  Bytes KeptUnderRecompute() const { return recompute_bytes > 0 ? recompute_bytes : input_bytes; }
  Bytes output_bytes = 0;  // sent to the next stage per micro-batch
  // Per mini-batch, summed over the stage's layers (0 = not profiled):
  TimeNs update_ns = 0;   // one optimizer step
  TimeNs copy_ns = 0;     // one copy of the stage's weights
  TimeNs predict_ns = 0;  // one prediction of them
};

// REQUIRES: partition sums to profile.layers.size(). micro_batch_size > 0.
std::vector<StageCost> StageCosts(const Profile& p, const std::vector<int>& partition,
                                  double micro_batch_size);

// How much memory a stage needs, per the schedule: weights x versions +
// gradients + optimizer state + prediction scratch + in-flight activations.
struct MemoryModel {
  std::vector<int> versions;   // per stage, from VersionsKept
  std::vector<int> scratch;    // per stage, from PredictionScratch
  std::vector<int> in_flight;  // per stage, most micro-batches holding activations
  int optimizer_copies = 2;
  bool recompute = false;
};
Bytes StageMemoryBytes(const StageCost& c, const MemoryModel& m, int stage);

struct PartitionResult {
  std::vector<int> layers_per_stage;
  TimeNs bottleneck_ns = 0;  // slowest stage per micro-batch, transfers included
  int bottleneck_stage = 0;
};

struct PartitionRequest {
  int stages = 1;
  double micro_batch_size = 1;
  const Cluster* cluster = nullptr;     // link model; REQUIRES non-null
  const MemoryModel* memory = nullptr;  // with memory_limit
  std::optional<Bytes> memory_limit;    // per device
  // Per stage k < S - 1: the route of k's output to k + 1 (a multi-node
  // cluster's boundaries differ); empty: the cluster's link everywhere.
  std::vector<Route> boundary;
};

// Time of stage k covering layers [first, first + n): compute, plus its sends
// when transfers do not overlap compute; a link's time (bytes / bandwidth +
// latency, each direction on its own) when they do.
TimeNs StageTime(const StageCost& c, int stage, int stages, const Cluster& cluster,
                 const std::vector<Route>& boundary = {});

// Contiguous layer ranges minimising the slowest stage (dynamic programming
// over cut points, as PipeDream's planner does for a straight pipeline).
// Throws InputError when there are more stages than layers or no partition
// fits the memory limit.
PartitionResult AutoPartition(const Profile& p, const PartitionRequest& r);

// Evaluates a given partition with the same cost as AutoPartition.
PartitionResult EvaluatePartition(const Profile& p, const std::vector<int>& partition,
                                  const PartitionRequest& r);

}  // namespace xpipe
