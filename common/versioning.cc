#include "common/versioning.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "common/dry_run.h"
#include "common/error.h"

namespace xpipe {
namespace {

int RoundHalfUp(double x) { return static_cast<int>(std::floor(x + 0.5)); }

}  // namespace

int ClosedFormForwardHorizon(int N, int T, int k) {
  const int ceil_half_k = (k + 1) / 2;
  const int numerator = N + T - 2 - ceil_half_k;
  return RoundHalfUp(static_cast<double>(numerator) / T);
}

int ClosedFormBackwardHorizon(int /*N*/, int T, int k) {
  const int floor_half_k = k / 2;
  const int numerator = T + floor_half_k - 1;
  return RoundHalfUp(static_cast<double>(numerator) / T);
}

VersionAnalysis AnalyzeVersions(const Schedule& s) {
  const int S = s.num_stages, D = s.num_devices, T = s.micro_batches;
  const std::int64_t G = static_cast<std::int64_t>(s.mini_batches) * T;
  const DryRunResult grid = DryRun(s);
  XPIPE_CHECK(grid.ok(), "AnalyzeVersions needs a schedule that runs to completion");

  VersionAnalysis out;
  out.passes.resize(D);
  // Per stage: the grid time of each U (= end of the B it follows) in order,
  // the version at each backward pass, and the start of stage 0's last backward
  // of each mini-batch (the end of its round trip).
  std::vector<std::vector<TimeNs>> update_times(S);
  std::vector<int> version_at_back(static_cast<std::size_t>(S) * G, 0);
  std::vector<TimeNs> round_trip_end(s.mini_batches, 0);
  for (int d = 0; d < D; ++d) {
    std::vector<int> v(S, 0);
    const auto& row = s.device_actions[d];
    out.passes[d].resize(row.size());
    for (std::size_t i = 0; i < row.size(); ++i) {
      const Action& a = row[i];
      if (a.kind == ActionKind::kUpdate) {
        update_times[a.stage].push_back(grid.start[d][i]);
        ++v[a.stage];
        continue;
      }
      if (!IsCompute(a.kind)) continue;
      PassInfo& p = out.passes[d][i];
      p.version_seen = v[a.stage];
      p.staleness = a.mini_batch - p.version_seen;
      p.synchronous = std::max(0, p.staleness);
      if (IsBackwardPass(a.kind)) {
        version_at_back[static_cast<std::size_t>(a.stage) * G + GlobalMicroBatch(a, T)] = v[a.stage];
        if (a.stage == 0 && a.micro_batch == T - 1) round_trip_end[a.mini_batch] = grid.start[d][i];
      }
    }
  }
  for (int d = 0; d < D; ++d) {
    const auto& row = s.device_actions[d];
    for (std::size_t i = 0; i < row.size(); ++i) {
      const Action& a = row[i];
      if (!IsCompute(a.kind)) continue;
      PassInfo& p = out.passes[d][i];
      const auto& u = update_times[a.stage];
      const TimeNs t0 = grid.start[d][i], t1 = round_trip_end[a.mini_batch];
      // U strictly after the pass starts and strictly before the round trip ends.
      const auto lo = std::upper_bound(u.begin(), u.end(), t0);
      const auto hi = std::lower_bound(u.begin(), u.end(), t1);
      p.round_trip = hi > lo ? static_cast<int>(hi - lo) : 0;
      const int k = a.stage;
      p.closed_form = a.kind == ActionKind::kForward ? ClosedFormForwardHorizon(S, T, k)
                                                     : ClosedFormBackwardHorizon(S, T, k);
      if (a.kind == ActionKind::kForward)
        p.own_backward =
            version_at_back[static_cast<std::size_t>(a.stage) * G + GlobalMicroBatch(a, T)] - p.version_seen;
    }
  }
  return out;
}

namespace {

int Horizon(const PassInfo& p, PredictionTarget target, bool forward) {
  switch (target) {
    case PredictionTarget::kRoundTrip:
      return p.round_trip;
    case PredictionTarget::kRoundTripClosedForm:
      return p.closed_form;
    case PredictionTarget::kSynchronous:
      return p.synchronous;
    case PredictionTarget::kOwnBackward:
      return forward ? p.own_backward : 0;
  }
  return 0;
}

}  // namespace

std::pair<int, int> WeightKey(const Action& a) {
  return {a.version, a.weights == WeightSource::kPredicted ? a.horizon : 0};
}

void AnnotateWeights(Schedule& s, PredictionTarget target, WeightSwitch strategy, PredictionBase base) {
  XPIPE_CHECK(strategy != WeightSwitch::kNone, "a weight switch strategy is swap or recompute");
  const WeightPolicy policy = PolicyOf(s.kind);
  const VersionAnalysis va = AnalyzeVersions(s);
  const int T = s.micro_batches;
  const std::int64_t G = static_cast<std::int64_t>(s.mini_batches) * T;
  // Version each micro-batch's forward used, per stage (for stashing), and the
  // bellwether's (version, horizon) per (stage, mini-batch, direction) (XPipe).
  std::vector<int> forward_version(static_cast<std::size_t>(s.num_stages) * G, 0);
  std::map<std::tuple<int, int, bool>, std::pair<int, int>> bellwether;
  for (int d = 0; d < s.num_devices; ++d) {
    auto& row = s.device_actions[d];
    for (std::size_t i = 0; i < row.size(); ++i) {
      Action& a = row[i];
      if (!IsCompute(a.kind)) continue;
      const PassInfo& p = va.passes[d][i];
      const bool forward = a.kind == ActionKind::kForward;
      const std::size_t key = static_cast<std::size_t>(a.stage) * G + GlobalMicroBatch(a, T);
      a.weights = WeightSource::kCurrent;
      a.version = p.version_seen;
      a.horizon = 0;
      a.reuse_prediction = false;
      a.weight_switch = WeightSwitch::kNone;
      switch (policy) {
        case WeightPolicy::kSynchronous:
        case WeightPolicy::kStale:
          break;
        case WeightPolicy::kStashing:
          if (forward)
            forward_version[key] = p.version_seen;
          else {
            a.weights = WeightSource::kStashed;
            a.version = forward_version[key];
          }
          break;
        case WeightPolicy::kDoubleBuffer: {
          // Every pass of mini-batch b reads the version its first forward
          // saw: with T >= N-1 that is b-1 on every stage with work in
          // flight (W(t+1) = W(t) - lr * grad(W(t-1))) and b where there is
          // none, so one stage alone trains synchronously.
          const auto bkey = std::make_tuple(a.stage, a.mini_batch, false);
          if (forward && a.micro_batch == 0) bellwether[bkey] = {p.version_seen, 0};
          const int v = bellwether.at(bkey).first;
          // Generated 2BW never does (T >= N-1); a file's order can.
          if (v < a.mini_batch - 1)
            throw InputError("--policy", "pipedream-2bw keeps two versions, but stage " +
                                             std::to_string(a.stage) + " starts mini-batch " +
                                             std::to_string(a.mini_batch) + " on version " +
                                             std::to_string(v));
          a.version = v;
          a.weights = v == p.version_seen ? WeightSource::kNewerBuffer : WeightSource::kOlderBuffer;
          break;
        }
        case WeightPolicy::kPredictOwnBackward:
          if (forward) {
            a.weights = WeightSource::kPredicted;
            a.horizon = p.own_backward;
          }
          break;
        case WeightPolicy::kPredictRoundTrip: {
          const bool backward_of_pair = !forward;  // B, I and W share the backward prediction
          if (TraitsOf(s.kind).bellwether) {
            auto bkey = std::make_tuple(a.stage, a.mini_batch, backward_of_pair);
            auto it = bellwether.find(bkey);
            a.weights = WeightSource::kPredicted;
            if (it == bellwether.end()) {
              const int h = Horizon(p, target, forward);
              bellwether.emplace(bkey, std::make_pair(p.version_seen, h));
              a.horizon = h;
            } else if (base == PredictionBase::kLive) {
              // The bellwether's target from the live weights: a version
              // that already exists is read as it is (horizon 0).
              a.horizon = std::max(0, it->second.first + it->second.second - p.version_seen);
            } else {
              a.version = it->second.first;
              a.horizon = it->second.second;
              a.reuse_prediction = true;
            }
          } else {
            a.weights = WeightSource::kPredicted;
            a.horizon = Horizon(p, target, forward);
          }
          break;
        }
      }
      if (a.weights == WeightSource::kPredicted && a.horizon == 0 && !a.reuse_prediction &&
          !TraitsOf(s.kind).bellwether)
        a.weights = WeightSource::kCurrent;  // predicting zero steps ahead is the live weights
    }
  }
  // The switch: a second walk, now that every pass's weights are known.
  std::vector<std::pair<int, std::size_t>> forward_at(static_cast<std::size_t>(s.num_stages) * G);
  std::vector<WeightSwitch> input_switch(static_cast<std::size_t>(s.num_stages) * G, WeightSwitch::kNone);
  for (int d = 0; d < s.num_devices; ++d) {
    auto& row = s.device_actions[d];
    for (std::size_t i = 0; i < row.size(); ++i) {
      Action& a = row[i];
      const std::size_t key = static_cast<std::size_t>(a.stage) * G + GlobalMicroBatch(a, T);
      if (a.kind == ActionKind::kForward) {
        forward_at[key] = {d, i};
      } else if (IsBackwardPass(a.kind)) {
        Action& f = s.device_actions[forward_at[key].first][forward_at[key].second];
        if (WeightKey(f) != WeightKey(a)) {
          a.weight_switch = strategy;
          f.weight_switch = strategy;
        }
        input_switch[key] = a.weight_switch;
      } else if (a.kind == ActionKind::kBackwardWeight) {
        a.weight_switch = input_switch[key];  // W back-propagates I's graph
      }
    }
  }
}

std::vector<int> VersionsKept(const Schedule& s) {
  // A version is kept from when an update replaces it until the last pass
  // that reads it (stashed, buffered or live weights; predictions are
  // scratch, counted by PredictionScratch). The executor holds the same set.
  std::vector<int> kept(s.num_stages, 1);
  for (const auto& row : s.device_actions) {
    const auto reads = [](const Action& a) {
      return IsCompute(a.kind) && a.weights != WeightSource::kPredicted;
    };
    std::map<std::pair<int, int>, std::size_t> last_read;  // (stage, version) -> position
    for (std::size_t i = 0; i < row.size(); ++i)
      if (reads(row[i])) last_read[{row[i].stage, row[i].version}] = i;
    std::map<int, int> live;
    std::map<int, std::set<int>> held;  // per stage: replaced versions still to be read
    for (std::size_t i = 0; i < row.size(); ++i) {
      const Action& a = row[i];
      if (a.kind == ActionKind::kUpdate) {
        const int replaced = live[a.stage]++;
        const auto it = last_read.find({a.stage, replaced});
        if (it != last_read.end() && it->second > i) held[a.stage].insert(replaced);
      } else if (reads(a) && last_read[{a.stage, a.version}] == i) {
        held[a.stage].erase(a.version);
      }
      kept[a.stage] = std::max(kept[a.stage], 1 + static_cast<int>(held[a.stage].size()));
    }
  }
  return kept;
}

WeightWork WeightWorkOf(const Schedule& s) {
  const std::size_t versions = static_cast<std::size_t>(s.mini_batches) + 1;
  constexpr std::size_t kNever = static_cast<std::size_t>(-1);
  WeightWork work;
  auto& copies = work.copies;
  auto& predictions = work.predictions;
  copies.resize(s.device_actions.size());
  predictions.resize(s.device_actions.size());
  std::vector<int> slot(s.num_stages, -1);  // a stage's index among its device's stages
  for (std::size_t d = 0; d < s.device_actions.size(); ++d) {
    const auto& row = s.device_actions[d];
    copies[d].assign(row.size(), 0);
    predictions[d].assign(row.size(), 0);
    int local = 0;
    for (int k = 0; k < s.num_stages; ++k) slot[k] = s.stage_device[k] == static_cast<int>(d) ? local++ : -1;
    // Last position at which each (stage, version) is read as plain weights.
    std::vector<std::size_t> last_plain_read(local * versions, kNever);
    const auto at = [&](int stage, int version) { return slot[stage] * versions + version; };
    for (std::size_t i = 0; i < row.size(); ++i)
      if (IsCompute(row[i].kind) && WeightKey(row[i]).second == 0)
        last_plain_read[at(row[i].stage, row[i].version)] = i;
    // Per stage: updates so far, and the horizons predicted at the live
    // version (a prediction is made while its version is live).
    std::vector<int> live(local, 0);
    std::vector<std::vector<int>> made(local);
    for (std::size_t i = 0; i < row.size(); ++i) {
      const Action& a = row[i];
      const int l = slot[a.stage];
      if (a.kind == ActionKind::kUpdate) {
        const std::size_t last = last_plain_read[at(a.stage, live[l])];
        copies[d][i] = last != kNever && last > i ? 1 : 0;
        ++live[l];
        made[l].clear();
        continue;
      }
      if (!IsCompute(a.kind)) continue;
      const auto [version, horizon] = WeightKey(a);
      if (horizon > 0 && version == live[l] &&
          std::find(made[l].begin(), made[l].end(), horizon) == made[l].end()) {
        made[l].push_back(horizon);
        ++predictions[d][i];
      }
      if (a.weight_switch == WeightSwitch::kSwap && a.kind != ActionKind::kBackwardWeight) ++copies[d][i];
    }
  }
  return work;
}

std::vector<std::vector<std::uint8_t>> WeightCopies(const Schedule& s) {
  WeightWork work = WeightWorkOf(s);
  for (std::size_t d = 0; d < work.copies.size(); ++d)
    for (std::size_t i = 0; i < work.copies[d].size(); ++i) work.copies[d][i] += work.predictions[d][i];
  return work.copies;
}

std::vector<int> PredictionScratch(const Schedule& s) {
  std::vector<int> scratch(s.num_stages, 0);
  for (const auto& row : s.device_actions)
    for (const Action& a : row) {
      if (a.weights != WeightSource::kPredicted) continue;
      // XPipe with T > 1 keeps a forward and a backward prediction alive
      // across micro-batches (the bellwether's, or with a live base each
      // (version, horizon)'s until the next update); others predict per pass.
      const int need = (TraitsOf(s.kind).bellwether && s.micro_batches > 1) ? 2 : 1;
      scratch[a.stage] = std::max(scratch[a.stage], need);
    }
  return scratch;
}

std::vector<StageVersionSummary> SteadyStateSummary(const Schedule& s, const VersionAnalysis& v) {
  std::vector<StageVersionSummary> out(s.num_stages);
  const int mid = s.mini_batches / 2;
  for (int d = 0; d < s.num_devices; ++d) {
    const auto& row = s.device_actions[d];
    for (std::size_t i = 0; i < row.size(); ++i) {
      const Action& a = row[i];
      if (a.mini_batch != mid || a.micro_batch != 0) continue;
      if (a.kind == ActionKind::kForward) {
        out[a.stage].forward_staleness = v.passes[d][i].staleness;
        out[a.stage].forward_horizon = a.horizon;
      } else if (IsBackwardPass(a.kind)) {
        out[a.stage].backward_staleness = v.passes[d][i].staleness;
        out[a.stage].backward_horizon = a.horizon;
      }
    }
  }
  return out;
}

}  // namespace xpipe
