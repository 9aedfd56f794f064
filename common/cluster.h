// Cluster: the devices and links a pipeline runs on, for the simulator and the
// partitioner. JSON schema in docs/profile-format.md.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/units.h"

namespace xpipe {

enum class Topology {
  kChain,      // a point-to-point full-duplex link between consecutive devices
  kSharedBus,  // every transfer shares one link (e.g. one PCIe switch)
};

// Between the nodes of a multi-node cluster.
struct Network {
  double bytes_per_sec = 50e9;  // per NIC, each direction
  TimeNs latency_ns = 5 * kNsPerUs;
  bool shared_nic = false;  // one NIC per node that all its GPUs share; else one per GPU
};

// How pipeline replicas (data parallelism) are laid out on the GPUs.
enum class Placement {
  kPipelineFirst,  // each replica's pipeline devices on consecutive GPUs, filling nodes
  kDataFirst,      // the replicas of each pipeline device on consecutive GPUs (Megatron's order)
  kExplicit,       // Cluster::placement lists the GPU of each (replica, device)
};

// The resource a transfer between two GPUs uses, as the simulator models it:
// inside a node the cluster's link (a chain: a link per ordered pair; a
// shared bus: one per node); between nodes the sender's NIC (per GPU or the
// node's shared one). Receiving NICs are not modelled.
struct Route {
  std::string link;  // its name: "d0->d1", "bus", "bus n0", "nic d7", "nic n0"
  double bytes_per_sec = 0;
  TimeNs latency_ns = 0;
};

struct Cluster {
  std::string name = "default";
  std::string file = "cluster";  // where it was read from, for errors
  std::string source;
  int devices = 0;            // 0 = as many as the pipeline needs, all of speed 1
  std::vector<double> speed;  // relative compute speed per device (2 = twice as fast)
  double link_bytes_per_sec = 12e9;
  TimeNs link_latency_ns = 10 * kNsPerUs;
  Topology topology = Topology::kChain;
  bool overlap_compute = true;  // transfers run on a copy engine beside compute
  std::optional<Bytes> device_memory_bytes;
  // Device memory bandwidth: prices the weight copies of swaps, predictions
  // and kept versions (2 x the stage's parameter bytes each: read and write).
  // Default: a V100's HBM2, 900 GB/s (NVIDIA datasheet), the GPUs of the
  // shipped PipeDream profiles.
  double memory_bytes_per_sec = 900e9;
  // What the runtime adds to every compute pass beyond the layers' profiled
  // time (dispatch, autograd set-up, bookkeeping); measured by
  // `xpipe profile --model`, 0 for the shipped clusters.
  TimeNs pass_overhead_ns = 0;
  // Devices that share caches and memory (CPU cores) slow each other down:
  // a device's compute runs at 1 / (1 + contention x (other devices computing
  // at the same time)) of its speed. 0 (GPUs, the shipped clusters): none.
  // Simulated by the event engine only.
  double compute_contention = 0;
  // What receiving a message costs the receiving device's compute, beyond the
  // link (a CPU transport's threads copy it in on the cores that compute):
  // receive_fixed_ns + bytes / receive_bytes_per_sec, added to the pass that
  // consumes it. 0 and 0 (GPUs, the shipped clusters): nothing.
  TimeNs receive_fixed_ns = 0;
  double receive_bytes_per_sec = 0;  // 0: no per-byte cost
  // What sending a message to another device costs the sender beyond its
  // bytes' wire time (a CPU transport's send call copies and hands over on
  // the sender's core), added to the pass that produces it. 0 (GPUs, the
  // shipped clusters): nothing.
  TimeNs send_fixed_ns = 0;

  // Nodes: GPUs 0..gpus_per_node-1 are node 0, and so on; `link` is the link
  // inside a node and `network` the one between nodes. 0: one node.
  int gpus_per_node = 0;
  int nodes = 1;
  Network network;
  Placement placement_kind = Placement::kPipelineFirst;
  std::vector<int> placement;  // kExplicit: GPU of (replica r, pipeline device p) at r x P + p

  // Speed of device d (1 when not given).
  double Speed(int d) const { return d < static_cast<int>(speed.size()) ? speed[d] : 1.0; }
  int NodeOf(int gpu) const { return gpus_per_node > 0 ? gpu / gpus_per_node : 0; }
  Route RouteBetween(int from_gpu, int to_gpu) const;
  // The GPU of each (replica, pipeline device), at r x P + p. Throws
  // InputError when the cluster has too few GPUs or the explicit placement
  // does not fit.
  std::vector<int> Place(int pipeline_devices, int replicas) const;
};

Cluster ParseCluster(const std::string& json_text, const std::string& where);
Cluster LoadCluster(const std::string& path);
std::string ClusterToJson(const Cluster& c);

}  // namespace xpipe
