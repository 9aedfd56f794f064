#include "common/partition.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "common/error.h"

namespace xpipe {
namespace {

constexpr TimeNs kInfinite = std::numeric_limits<TimeNs>::max();

// Prefix sums of the per-layer costs, scaled to one micro-batch.
struct Prefix {
  std::vector<TimeNs> fwd, bwd;
  std::vector<Bytes> params, acts, recompute;  // kept per layer: as profiled, and under recomputation
  std::vector<bool> saves;                     // layer i says what it keeps (then its input is in it)
  std::vector<TimeNs> update, copy, predict;   // not scaled: they act on the weights
  std::vector<Bytes> cut;                      // scaled bytes crossing the cut before layer i

  Prefix(const Profile& p, double micro_batch_size) {
    const double scale = micro_batch_size / p.batch_size;
    const std::size_t L = p.layers.size();
    fwd.assign(L + 1, 0);
    bwd.assign(L + 1, 0);
    params.assign(L + 1, 0);
    acts.assign(L + 1, 0);
    recompute.assign(L + 1, 0);
    saves.assign(L, false);
    update.assign(L + 1, 0);
    copy.assign(L + 1, 0);
    predict.assign(L + 1, 0);
    for (std::size_t i = 0; i < L; ++i) {
      const Layer& l = p.layers[i];
      const bool counts = !l.is_input;
      fwd[i + 1] = fwd[i] + (counts ? static_cast<TimeNs>(std::llround(l.forward_ns * scale)) : 0);
      bwd[i + 1] = bwd[i] + (counts ? static_cast<TimeNs>(std::llround(l.backward_ns * scale)) : 0);
      params[i + 1] = params[i] + l.parameter_bytes;
      const Bytes kept = l.saved_bytes ? *l.saved_bytes : l.activation_bytes;
      acts[i + 1] = acts[i] + static_cast<Bytes>(std::llround(kept * scale));
      const Bytes kept_recompute = l.saved_bytes_recompute ? *l.saved_bytes_recompute : 0;
      recompute[i + 1] = recompute[i] + static_cast<Bytes>(std::llround(kept_recompute * scale));
      saves[i] = l.saved_bytes.has_value();
      update[i + 1] = update[i] + l.update_ns;
      copy[i + 1] = copy[i] + l.copy_ns;
      predict[i + 1] = predict[i] + l.predict_ns;
    }
    const std::vector<Bytes> raw = p.CutBytes();
    cut.resize(raw.size());
    for (std::size_t c = 0; c < raw.size(); ++c) cut[c] = static_cast<Bytes>(std::llround(raw[c] * scale));
  }

  StageCost Stage(int first, int end) const {
    StageCost c;
    c.first_layer = first;
    c.num_layers = end - first;
    c.forward_ns = fwd[end] - fwd[first];
    c.backward_ns = bwd[end] - bwd[first];
    c.parameter_bytes = params[end] - params[first];
    c.input_bytes = cut[first];
    c.output_bytes = cut[end];
    // A layer that says what it keeps counts its input in it; otherwise the
    // stage keeps its input and every layer's output.
    c.activation_bytes = (saves[first] ? 0 : c.input_bytes) + acts[end] - acts[first];
    c.recompute_bytes = recompute[end] - recompute[first];
    c.update_ns = update[end] - update[first];
    c.copy_ns = copy[end] - copy[first];
    c.predict_ns = predict[end] - predict[first];
    return c;
  }
};

// A transfer over boundary b (stage b to b + 1 or back).
TimeNs LinkNs(Bytes bytes, const Cluster& cl, const std::vector<Route>& boundary, int b) {
  if (bytes == 0) return 0;
  if (b < static_cast<int>(boundary.size()))
    return TransferNs(bytes, boundary[b].bytes_per_sec) + boundary[b].latency_ns;
  return TransferNs(bytes, cl.link_bytes_per_sec) + cl.link_latency_ns;
}

}  // namespace

std::vector<StageCost> StageCosts(const Profile& p, const std::vector<int>& partition,
                                  double micro_batch_size) {
  const Prefix pre(p, micro_batch_size);
  std::vector<StageCost> out;
  int first = 0;
  for (int n : partition) {
    XPIPE_CHECK(n > 0 && first + n <= static_cast<int>(p.layers.size()), "partition out of range");
    out.push_back(pre.Stage(first, first + n));
    first += n;
  }
  XPIPE_CHECK(first == static_cast<int>(p.layers.size()), "partition does not cover the profile");
  return out;
}

Bytes StageMemoryBytes(const StageCost& c, const MemoryModel& m, int stage) {
  const Bytes copies = m.versions[stage] + 1 /*gradients*/ + m.optimizer_copies + m.scratch[stage];
  const Bytes kept = m.recompute ? c.KeptUnderRecompute() : c.activation_bytes;
  return c.parameter_bytes * copies + m.in_flight[stage] * kept;
}

TimeNs StageTime(const StageCost& c, int stage, int stages, const Cluster& cl,
                 const std::vector<Route>& boundary) {
  const TimeNs compute_ns = c.forward_ns + c.backward_ns;
  const TimeNs in_ns = stage > 0 ? LinkNs(c.input_bytes, cl, boundary, stage - 1) : 0;
  const TimeNs out_ns = stage + 1 < stages ? LinkNs(c.output_bytes, cl, boundary, stage) : 0;
  if (cl.overlap_compute) return std::max({compute_ns, in_ns, out_ns});
  // Without a copy engine the stage itself sends its activation forward and
  // its input gradient backward.
  return compute_ns + in_ns + out_ns;
}

PartitionResult EvaluatePartition(const Profile& p, const std::vector<int>& partition,
                                  const PartitionRequest& r) {
  XPIPE_CHECK(r.cluster != nullptr, "partitioning needs a cluster");
  const auto costs = StageCosts(p, partition, r.micro_batch_size);
  PartitionResult out;
  out.layers_per_stage = partition;
  const int N = static_cast<int>(costs.size());
  for (int k = 0; k < N; ++k) {
    const TimeNs t = StageTime(costs[k], k, N, *r.cluster, r.boundary);
    if (t > out.bottleneck_ns) out.bottleneck_ns = t, out.bottleneck_stage = k;
  }
  return out;
}

PartitionResult AutoPartition(const Profile& p, const PartitionRequest& r) {
  XPIPE_CHECK(r.cluster != nullptr, "partitioning needs a cluster");
  const int L = static_cast<int>(p.layers.size()), N = r.stages;
  if (N < 1) throw InputError("--stages", "must be at least 1");
  if (N > L)
    throw InputError("--stages", std::to_string(N) + " stages but the profile '" + p.name + "' has only " +
                                     std::to_string(L) + " layers");
  const Prefix pre(p, r.micro_batch_size);
  // best[k][i]: smallest bottleneck of k stages over the first i layers.
  std::vector<std::vector<TimeNs>> best(N + 1, std::vector<TimeNs>(L + 1, kInfinite));
  std::vector<std::vector<int>> from(N + 1, std::vector<int>(L + 1, -1));
  best[0][0] = 0;
  for (int k = 1; k <= N; ++k) {
    for (int i = k; i <= L - (N - k); ++i) {
      for (int j = k - 1; j < i; ++j) {
        if (best[k - 1][j] == kInfinite) continue;
        const StageCost c = pre.Stage(j, i);
        if (r.memory_limit && r.memory != nullptr && StageMemoryBytes(c, *r.memory, k - 1) > *r.memory_limit)
          continue;
        const TimeNs t = std::max(best[k - 1][j], StageTime(c, k - 1, N, *r.cluster, r.boundary));
        if (t < best[k][i]) best[k][i] = t, from[k][i] = j;
      }
    }
  }
  if (best[N][L] == kInfinite)
    throw InputError("--memory-limit", "no partition of '" + p.name + "' into " + std::to_string(N) +
                                           " stages fits in " + std::to_string(*r.memory_limit / (1 << 20)) +
                                           " MiB per device");
  std::vector<int> parts(N);
  for (int k = N, i = L; k >= 1; --k) {
    const int j = from[k][i];
    parts[k - 1] = i - j;
    i = j;
  }
  return EvaluatePartition(p, parts, r);
}

}  // namespace xpipe
