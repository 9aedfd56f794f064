// Simulator: runs a Schedule against modelled costs on a virtual clock.
//
// Each device runs its action list in order on one compute stream; an action
// waits for what DryRun (common/dry_run.h) says it waits for, and a
// dependency between devices is a transfer. A sender's transfers to one
// receiver form a channel and go in the order they were sent, one at a time
// (as an ordered P2P stream: NCCL send/recv on one communicator, PipeDream's
// per-peer queues, the executor's channels). A channel's transfer takes
// bytes / bandwidth on its link, then the link latency; on a chain each
// channel has its own link, on a shared bus the channels with a transfer on
// the wire share the bandwidth equally (processor sharing). Transfers use a
// copy engine beside compute, or, with overlap_compute off, keep the sending
// device busy until their last byte has left.
// Deterministic: same inputs, same result, bit for bit (jitter is a seeded
// hash of device and action).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/cluster.h"
#include "common/partition.h"
#include "common/schedule.h"
#include "common/trace.h"

namespace xpipe {

// How to run it. Both engines give the same result where both apply
// (sim/engines.h); the event queue is the reference the tests hold the
// dataflow engine to, and the only one for a shared bus.
enum class SimEngine {
  kAuto,        // the dataflow engine on a chain, else the event queue
  kEventQueue,  // any cluster
  kDataflow,    // REQUIRES: a chain
};

struct SimConfig {
  std::vector<StageCost> stages;  // per pipeline stage, per micro-batch
  Cluster cluster;
  MemoryModel memory;  // versions, scratch, optimizer copies (in-flight is measured)
  int samples_per_mini_batch = 1;
  double jitter = 0;  // each compute action's time x (1 + jitter * U[-1, 1])
  std::uint64_t seed = 1;
  bool record_trace = false;
  SimEngine engine = SimEngine::kAuto;
  // The event engine: off, every compute completion is an event (as with
  // compute contention, where it must be); on, devices run ahead between the
  // events of links that several channels share. Same results; the tests
  // hold each to the other and to the dataflow engine.
  bool run_ahead = true;
  // Data parallelism: the pipeline runs as `data_parallel` replicas placed
  // by cluster.Place; replica 0 is simulated and the others run the same
  // actions at the same times, so a link that k replicas' transfers share
  // gives each 1/k of its bandwidth (exact when they run in lockstep). At
  // every U a stage's gradients are all-reduced over its replicas' GPUs by a
  // ring: 2 (D - 1) steps of latency + bytes / D / bandwidth, each step as
  // slow as its slowest hop, a hop's link shared by every ring that crosses
  // it (all stages' rings taken as concurrent). Not overlapped: the time is
  // billed to the device before the update. Overlapped (as DDP does, bucket
  // by bucket during the backward): only what exceeds the stage's backward
  // pass is billed.
  int data_parallel = 1;
  bool overlap_allreduce = false;
};

struct SimResult {
  TimeNs makespan_ns = 0;
  // Steady state: mean interval between stage 0's updates over the middle
  // half of the mini-batches (M >= 4), else makespan / M.
  TimeNs mini_batch_ns = 0;
  double samples_per_sec = 0;            // of all replicas together
  std::vector<TimeNs> busy_ns;           // per device, compute
  std::vector<double> utilisation;       // per device, busy / makespan
  std::vector<int> peak_in_flight;       // per stage
  std::vector<Bytes> peak_memory_bytes;  // per stage
  std::vector<std::string> link_names;   // "d0->d1" in (sender, receiver) order, "bus", "nic d7", ...
  std::vector<TimeNs> allreduce_ns;      // per stage: one all-reduce of its gradients (data parallel)
  std::vector<Bytes> link_bytes;         // per link
  std::int64_t actions = 0;              // compute and update actions run
  std::int64_t events = 0;               // events the event engine handled; 0 from the dataflow engine
  bool event_engine = false;             // which engine ran
  double seconds = 0;                    // wall time the simulation itself took (for --stats)
  Trace trace;                           // track names always; spans and memory with record_trace
};

// REQUIRES: Validate(s).ok; config.stages.size() == s.num_stages. Lowered
// schedules are run on their compute actions (transfers are modelled).
SimResult Simulate(const Schedule& s, const SimConfig& config);

// The work Simulate bills beyond each pass's profiled time, per stage: forward
// computations (recomputes included) and weight copies (common/versioning.h).
struct BilledWork {
  std::vector<std::int64_t> forwards, weight_copies;
};
BilledWork Billed(const Schedule& s);

}  // namespace xpipe
