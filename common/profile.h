// Profile: measured per-layer costs of a model, the input of the simulator and
// the partitioner. JSON schema in docs/profile-format.md.
//
// Layers are in a topological order (the chain the pipeline cuts). `edges`
// keeps the model's DAG so that the bytes crossing a cut are right for
// branchy models: every layer before the cut that feeds a layer after it sends
// its whole output. Without edges the model is a chain.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/units.h"

namespace xpipe {

enum class OptimizerKind { kSgd, kMomentum, kAdam, kAdamW };
std::string_view OptimizerName(OptimizerKind kind);
OptimizerKind ParseOptimizer(std::string_view name, const std::string& where);
// Optimizer state in multiples of the parameter bytes: SGD 0, momentum 1, Adam(W) 2.
int OptimizerStateCopies(OptimizerKind kind);

struct Layer {
  std::string name;
  std::string op;
  TimeNs forward_ns = 0;  // for the profile's whole batch
  TimeNs backward_ns = 0;
  Bytes activation_bytes = 0;  // output for the profile's whole batch
  Bytes parameter_bytes = 0;
  // Work on the layer's weights, independent of the batch (0 = not measured):
  // one optimizer step; one copy of the weights (a swap, a copy on write);
  // one prediction (computing W_hat and what the runtime keeps for it).
  TimeNs update_ns = 0;
  TimeNs copy_ns = 0;
  TimeNs predict_ns = 0;
  // Input (data) layers: their time is data loading, which the loader
  // overlaps; they are kept for completeness and cost the pipeline nothing.
  bool is_input = false;
  // What the layer keeps for its backward, for the batch, when the profile
  // knows it (a computed profile); else its output is what it keeps.
  std::optional<Bytes> saved_bytes = std::nullopt;
  std::optional<Bytes> saved_bytes_recompute = std::nullopt;  // the same under activation recomputation
  std::int64_t forward_flops = 0;                             // for the batch; 0 = not known
};

struct Profile {
  std::string name;
  std::string source;    // where the numbers come from
  std::string hardware;  // what they were measured on, as far as known
  int batch_size = 1;    // samples the times and activation sizes are for
  OptimizerKind optimizer = OptimizerKind::kAdam;
  // Optimizer state in multiples of the parameter bytes, when not the
  // optimizer's own (mixed precision keeps fp32 copies of 16-bit weights).
  std::optional<int> optimizer_copies;
  std::vector<Layer> layers;
  std::vector<std::pair<int, int>> edges;  // producer -> consumer layer indices
  std::vector<int> partition;              // layers per stage; empty = choose automatically

  // Bytes crossing a cut before layer `cut` (1 <= cut < layers.size()), for the
  // profile's batch.
  std::vector<Bytes> CutBytes() const;  // size layers.size() + 1; [0] and [L] are 0
};

// REQUIRES nothing; throws InputError naming `where` and the field.
Profile ParseProfile(const std::string& json_text, const std::string& where);
Profile LoadProfile(const std::string& path);
std::string ProfileToJson(const Profile& p);

// PipeDream's graph.txt (shared/profiles/pipedream/SOURCE.md). Nodes are put
// in topological order, ties broken by node number, so chains keep their order.
Profile ImportPipeDreamGraph(const std::string& text, const std::string& where);

}  // namespace xpipe
