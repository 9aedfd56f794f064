// Profiler: measures, on this machine, what the simulator needs to predict
// the executor, in the simulator's own formats:
//   - a Profile (ProfileModel): each layer's forward and backward time for
//     one micro-batch, output and parameter bytes, and the work on its
//     weights (an optimizer step, a copy, a prediction), each the median of
//     repeated runs after a warm-up, on one thread as a stage thread runs;
//   - a Cluster (MeasureRuntime, MeasureLink): the runtime's fixed cost per
//     pass and the transport's one-way time as latency + bytes / bandwidth,
//     fitted to ping-pongs of a few message sizes.
// `xpipe profile --model` writes both; `xpipe validate` predicts from them
// and compares the prediction with a separate run of the executor. The
// trainer also uses ProfileModel for `--profile-out`.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "common/cluster.h"
#include "common/profile.h"
#include "exec/model.h"
#include "exec/optimizer.h"
#include "exec/transport.h"

namespace xpipe::exec {

struct ProfileOptions {
  int warmup = 3;    // runs discarded first
  int repeats = 15;  // runs kept: a layer's times are their mean, the runtime's figures their median
  TimeNs link_idle_ns = 1000000;  // how long a receiver has waited when a measured message comes
  OptimizerConfig optimizer;
};

// Times each layer on `inputs` (micro-batches of one shape, on one device):
// the mean over the timed iterations, as a pipeline's time is a sum of
// passes (the median leaves out the slow ones a run pays for). Iteration r
// takes inputs[r % inputs.size()], as a pipeline's passes each take new
// data: one input reused every iteration stays in the caches and makes a
// layer that reads it look faster than it runs in a pipeline. The last
// layer's times include the loss (cross-entropy and the accuracy count), as
// the executor's last stage runs it. A layer's backward excludes
// the fixed cost of starting a backward (MeasureRuntime's pass overhead),
// which a stage of several layers pays once. REQUIRES: !inputs.empty().
Profile ProfileModel(const std::string& name, const Model& model, const std::vector<torch::Tensor>& inputs,
                     const ProfileOptions& options = {});

// The runtime's fixed cost per compute pass: starting a backward through
// autograd (median over repeats of a backward through one element).
TimeNs MeasurePassOverhead(const ProfileOptions& options = {});

// How much a stage's compute slows down while another stage computes on the
// other core (shared caches and memory bandwidth): the median time of a
// training iteration of `model` with a second thread running the same
// iterations, over its median time alone, minus 1 (never below 0); the
// median of kContentionRounds such rounds. The two threads are pinned to two
// of the caller's cores while it measures (the caller's own are restored).
constexpr int kContentionRounds = 5;
double MeasureContention(const Model& model, const torch::Tensor& sample, const ProfileOptions& options = {});

// One-way message time over `transport` between this rank and `peer`, fitted
// as latency + bytes / bandwidth (least squares over the medians of
// ping-pongs of each size in `floats`). The initiator sends first and gets the
// fit; the other side echoes and gets an empty fit. Both sides call it with
// the same arguments.
struct LinkFit {
  TimeNs latency_ns = 0;
  double bytes_per_sec = 0;  // 0: the time does not grow with the size (hand-off by reference)
  std::vector<std::pair<Bytes, TimeNs>> points;  // (bytes, median one-way ns) per size
};
LinkFit MeasureLink(Transport& transport, int peer, bool initiator, const std::vector<int64_t>& floats,
                    const ProfileOptions& options = {});

// How long a message of `floats` takes to reach a waiting `peer` when its
// sender goes on computing after the send, as a stage does after it sends
// an output: the sender stamps the send and works (spins) for
// kDeliverySenderWorkNs, the receiver, blocked in its receive, stamps the
// arrival and returns it (one clock: both sides on this machine). The mean
// one-way time of at least kDeliveryRepeats sends, on the sender; 0 on the
// receiver. On Gloo over this project's 2 cores the mean was 0.6-0.75 ms
// (one send in ten or so took 2-3 ms) until the Gloo transport yielded its
// core after each send, 0.1-0.2 ms since (experiments/gloo_delivery.py
// shows both in plain PyTorch); a ping-pong says 0.05-0.13 ms. Also the mean
// time the sender's send call took (what holds a stage after its pass: on
// Gloo the copy into the socket and the yield after it).
constexpr TimeNs kDeliverySenderWorkNs = 2000000;
constexpr int kDeliveryRepeats = 40;
struct Delivery {
  TimeNs one_way_ns = 0;  // send to arrival
  TimeNs send_ns = 0;     // the send call
};
Delivery MeasureDelivery(Transport& transport, int peer, bool sender, int64_t floats,
                         const ProfileOptions& options = {});

// What taking in a message costs a process of its own (one rank per process):
// the CPU time the receiving process spends while its only computing thread
// is blocked waiting for a message of each size (its transport's threads
// reading it in), fitted as fixed + bytes / rate. In a pipeline those threads
// take that time from the stage's compute, on a machine whose cores all
// compute; timing work with a message arriving beside it (MeasureReceiveCost)
// sees none of it while the other core is free. The sender's side gets an
// empty fit.
constexpr TimeNs kReceiveCpuSendDelayNs = 200000;
LinkFit MeasureReceiveCpu(Transport& transport, int peer, bool receiver, const std::vector<int64_t>& floats,
                          const ProfileOptions& options = {});

// What taking in a message costs a rank that is computing meanwhile (a CPU
// transport's threads share its cores): the receiver times a fixed piece of
// work (matrix products, about 1 ms) with a message of each size arriving
// during it and without; the extra, fitted as fixed + bytes / rate (rate 0:
// no per-byte cost), is the receiver's (the sender's side gets an empty fit).
LinkFit MeasureReceiveCost(Transport& transport, int peer, bool receiver, const std::vector<int64_t>& floats,
                           const ProfileOptions& options = {});

// The same profile with costs counted instead of timed: each layer's
// multiply-accumulates as its forward time (backward twice that). Deterministic
// and machine-independent, for partitions that must not vary between runs.
Profile CountedProfile(const std::string& name, const Model& model, const torch::Tensor& sample);

// Layers per stage minimising the slowest stage of `profile` (transfers in
// memory cost nothing); REQUIRES stages <= model layers.
std::vector<int> BalancedPartition(const Profile& profile, int stages);

}  // namespace xpipe::exec
