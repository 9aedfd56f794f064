// Rank: what one process of a distributed run owns beside its stages: its
// place in the job (from the torchrun environment), the rendezvous store, the
// data transport, and a small control channel (Gloo, CPU) for what is not
// pipeline traffic: gathering metrics and weights to rank 0, barriers at
// drained points, and naming a lost rank when the job fails.
// Used by the trainer's thread only.
#pragma once

#include <torch/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "exec/transport.h"

namespace xpipe::exec {

// RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT as torchrun sets them.
struct LaunchEnv {
  int rank = 0, world = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool agent_store = false;  // TORCHELASTIC_USE_AGENT_STORE: torchrun's agent serves the store
};
// Empty when WORLD_SIZE is unset (single-process mode). Throws InputError
// naming the variable when one is malformed or missing.
std::optional<LaunchEnv> LaunchEnvFromEnvironment();

enum class TransportKind { kGloo, kNccl };

class Rank {
 public:
  // Connects to the store and builds the process groups. Throws CommError
  // when the rendezvous does not complete within `timeout`.
  Rank(const LaunchEnv& env, TransportKind data, std::chrono::milliseconds timeout);
  ~Rank();
  Rank(const Rank&) = delete;
  Rank& operator=(const Rank&) = delete;

  int rank() const { return env_.rank; }
  int world() const { return env_.world; }
  Transport& data() { return *data_; }

  void Barrier();
  // Every rank calls; rank 0 gets each rank's vector (its own first), others
  // an empty result.
  std::vector<std::vector<double>> Gather(const std::vector<double>& mine);
  // Every rank calls with its tensors (float32, any shapes); rank 0 gets them
  // flattened per rank, the others nothing.
  std::vector<torch::Tensor> GatherFlat(const std::vector<torch::Tensor>& mine);

  // After a failure: records that `peer` was lost (the first report wins) and
  // returns the rank every process should name: the first one reported.
  int ReportLost(int peer);

 private:
  // One 1-D CPU tensor per rank to rank 0 (its own first); `what` names it in errors.
  std::vector<torch::Tensor> GatherOne(const torch::Tensor& mine, const std::string& what);

  LaunchEnv env_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<Transport> data_;
};

}  // namespace xpipe::exec
