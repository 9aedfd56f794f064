#include "sim/sim_model.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "common/error.h"
#include "common/versioning.h"

namespace xpipe::sim {
namespace {

// SplitMix64's finaliser: a bijection whose output bits each depend on every
// input bit, enough to turn (seed, device, index) into a uniform draw.
std::uint64_t Mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Uniform in [-1, 1), from the top 53 bits.
double UnitDraw(std::uint64_t seed, int d, std::size_t index) {
  const std::uint64_t h = Mix(Mix(Mix(seed) ^ static_cast<std::uint64_t>(d)) ^ index);
  return static_cast<double>(h >> 11) * 0x1.0p-52 - 1.0;
}

}  // namespace

ComputeCost::ComputeCost(const Schedule& s, const SimConfig& c) : c_(c) {
  exact_ = c.jitter == 0;
  for (double speed : c.cluster.speed) exact_ = exact_ && speed == 1.0;
  const auto receive_ns = [&](Bytes bytes) -> TimeNs {
    if (bytes <= 0) return 0;
    const double rate = c.cluster.receive_bytes_per_sec;
    return c.cluster.receive_fixed_ns + (rate > 0 ? TransferNs(bytes, rate) : 0);
  };
  const int S = s.num_stages;
  receive_forward_ns_.assign(S, 0);
  receive_backward_ns_.assign(S, 0);
  send_forward_ns_.assign(S, 0);
  send_backward_ns_.assign(S, 0);
  for (int k = 0; k < S; ++k) {
    if (k > 0 && s.stage_device[k - 1] != s.stage_device[k]) {
      receive_forward_ns_[k] = receive_ns(c.stages[k].input_bytes);
      if (c.stages[k].input_bytes > 0) send_backward_ns_[k] = c.cluster.send_fixed_ns;
    }
    if (k + 1 < S && s.stage_device[k + 1] != s.stage_device[k]) {
      receive_backward_ns_[k] = receive_ns(c.stages[k].output_bytes);
      if (c.stages[k].output_bytes > 0) send_forward_ns_[k] = c.cluster.send_fixed_ns;
    }
  }
  // What a U adds before it: the optimizer step and, data parallel, the
  // all-reduce's exposed part.
  allreduce_ns_ = AllReduceNs(s, c);
  std::vector<TimeNs> before_update_ns(S);
  for (int k = 0; k < S; ++k) {
    const TimeNs exposed = c.overlap_allreduce
                               ? std::max<TimeNs>(0, allreduce_ns_[k] - c.stages[k].backward_ns)
                               : allreduce_ns_[k];
    before_update_ns[k] = c.stages[k].update_ns + exposed;
  }
  std::vector<TimeNs> copy_ns, predict_ns;
  bool copies = false, updates = false;
  for (const StageCost& sc : c.stages) {
    const double by_bandwidth =
        2.0 * static_cast<double>(sc.parameter_bytes) / c.cluster.memory_bytes_per_sec * 1e9;
    copy_ns.push_back(sc.copy_ns > 0 ? sc.copy_ns : static_cast<TimeNs>(std::llround(by_bandwidth)));
    predict_ns.push_back(sc.predict_ns > 0 ? sc.predict_ns : copy_ns.back());
    copies = copies || copy_ns.back() > 0 || predict_ns.back() > 0;
  }
  for (TimeNs t : before_update_ns) updates = updates || t > 0;
  // A generated synchronous schedule keeps one version, predicts nothing and
  // switches nothing: no copy to bill, no pass over the schedule. (A schedule
  // read from a file carries its own annotations.)
  copies = copies && (s.kind == ScheduleKind::kCustom || PolicyOf(s.kind) != WeightPolicy::kSynchronous);
  if (!copies && !updates) {
    if (!exact_) return;
    table_.resize(static_cast<std::size_t>(S) * kKinds * 2);
    for (int k = 0; k < S; ++k)
      for (std::size_t kind = 0; kind < kKinds; ++kind)
        for (int recompute = 0; recompute < 2; ++recompute) {
          Action a;
          a.stage = k;
          a.kind = static_cast<ActionKind>(kind);
          a.weight_switch = recompute ? WeightSwitch::kRecompute : WeightSwitch::kNone;
          table_[(static_cast<std::size_t>(k) * kKinds + kind) * 2 + recompute] = Cost(0, 0, a);
        }
    return;
  }
  WeightWork work;
  if (copies) work = WeightWorkOf(s);
  extra_ns_.resize(s.device_actions.size());
  for (std::size_t d = 0; d < s.device_actions.size(); ++d) {
    const auto& row = s.device_actions[d];
    extra_ns_[d].assign(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) {
      const Action& a = row[i];
      if (copies)
        extra_ns_[d][i] = work.copies[d][i] * copy_ns[a.stage] + work.predictions[d][i] * predict_ns[a.stage];
      if (a.kind == ActionKind::kUpdate) extra_ns_[d][i] += before_update_ns[a.stage];
    }
  }
}

TimeNs ComputeCost::Cost(int d, std::size_t index, const Action& a) const {
  const StageCost& sc = c_.stages[a.stage];
  TimeNs ns = 0;
  switch (a.kind) {
    case ActionKind::kForward:
      ns = sc.forward_ns;
      break;
    case ActionKind::kBackward:
      ns = sc.backward_ns;
      if (a.weight_switch == WeightSwitch::kRecompute) ns += sc.forward_ns;
      break;
    case ActionKind::kBackwardInput:
      ns = sc.backward_ns / 2;  // whole ns; W gets the odd one
      if (a.weight_switch == WeightSwitch::kRecompute) ns += sc.forward_ns;
      break;
    case ActionKind::kBackwardWeight:
      ns = sc.backward_ns - sc.backward_ns / 2;
      break;
    case ActionKind::kUpdate:  // its own time: the step, the all-reduce, copies of kept versions
      return extra_ns_.empty() ? 0 : extra_ns_[d][index];
    default:
      return 0;
  }
  TimeNs fixed = c_.cluster.pass_overhead_ns + (extra_ns_.empty() ? 0 : extra_ns_[d][index]);
  if (a.kind == ActionKind::kForward) fixed += receive_forward_ns_[a.stage] + send_forward_ns_[a.stage];
  if (IsBackwardPass(a.kind)) fixed += receive_backward_ns_[a.stage] + send_backward_ns_[a.stage];
  if (exact_) return ns + fixed;
  double scaled = static_cast<double>(ns) / c_.cluster.Speed(d);
  if (c_.jitter > 0) scaled *= 1.0 + c_.jitter * UnitDraw(c_.seed, d, index);
  return static_cast<TimeNs>(std::llround(scaled)) + fixed;
}

Wiring Wire(const Schedule& s, const SimConfig& c) {
  Wiring w;
  const int S = s.num_stages, P = s.num_devices, R = std::max(1, c.data_parallel);
  const std::vector<int> gpu = c.cluster.Place(P, R);
  w.forward_channel.resize(S);
  w.backward_channel.resize(S);
  // The devices a stage's output travels between, if it leaves its device.
  using Ends = std::pair<int, int>;
  const auto ends = [&](int from_stage, int to_stage, Bytes bytes) -> std::optional<Ends> {
    const int from = s.stage_device[from_stage], to = s.stage_device[to_stage];
    if (from == to || bytes <= 0) return std::nullopt;
    return Ends{from, to};
  };
  std::vector<std::optional<Ends>> forward_ends(S), backward_ends(S);
  // Channels in (sender, receiver) order, so numbering does not depend on
  // which transfer an engine happens to start first.
  std::map<Ends, int> channel_of;
  for (int k = 0; k < S; ++k) {
    if (k + 1 < S) forward_ends[k] = ends(k, k + 1, c.stages[k].output_bytes);
    if (k > 0) backward_ends[k] = ends(k, k - 1, c.stages[k].input_bytes);
    for (const auto& e : {forward_ends[k], backward_ends[k]})
      if (e) channel_of.emplace(*e, 0);
  }
  // Every replica's copy of every channel, on the link its route takes.
  std::map<std::string, int> link_of;
  std::vector<int> own, all;  // per link: replica 0's channels, every replica's
  std::vector<Route> routes;
  for (auto& [pair, index] : channel_of) {
    index = static_cast<int>(w.channel_sender.size());
    const Route route = c.cluster.RouteBetween(gpu[pair.first], gpu[pair.second]);
    const auto [it, added] = link_of.emplace(route.link, static_cast<int>(routes.size()));
    if (added) {
      routes.push_back(route);
      own.push_back(0);
      all.push_back(0);
    }
    ++own[it->second];
    w.channel_sender.push_back(pair.first);
    w.channel_link.push_back(it->second);
  }
  for (int r = 1; r < R; ++r)
    for (const auto& [pair, index] : channel_of) {
      const std::string link = c.cluster
                                   .RouteBetween(gpu[static_cast<std::size_t>(r) * P + pair.first],
                                                 gpu[static_cast<std::size_t>(r) * P + pair.second])
                                   .link;
      const auto it = link_of.find(link);
      if (it != link_of.end()) ++all[it->second];
    }
  for (std::size_t l = 0; l < routes.size(); ++l) {
    all[l] += own[l];
    w.link_names.push_back(routes[l].link);
    w.link_bytes_per_sec.push_back(routes[l].bytes_per_sec * own[l] / all[l]);
    w.link_latency_ns.push_back(routes[l].latency_ns);
    w.one_channel_per_link = w.one_channel_per_link && own[l] == 1;
  }
  for (const auto& [pair, index] : channel_of) {
    const int l = w.channel_link[index];
    const std::string name = "d" + std::to_string(gpu[pair.first]) + "->d" + std::to_string(gpu[pair.second]);
    w.channel_tracks.push_back(own[l] == 1 && routes[l].link == name ? "link " + name
                                                                     : routes[l].link + " " + name);
  }
  for (int k = 0; k < S; ++k) {
    if (forward_ends[k]) w.forward_channel[k] = channel_of.at(*forward_ends[k]);
    if (backward_ends[k]) w.backward_channel[k] = channel_of.at(*backward_ends[k]);
  }
  return w;
}

std::vector<TimeNs> AllReduceNs(const Schedule& s, const SimConfig& c) {
  const int S = s.num_stages, P = s.num_devices, R = c.data_parallel;
  std::vector<TimeNs> out(S, 0);
  if (R <= 1) return out;
  const std::vector<int> gpu = c.cluster.Place(P, R);
  // Each stage's ring: its replicas' GPUs in replica order; hop i sends to i + 1.
  const auto hop = [&](int k, int i) {
    const int d = s.stage_device[k];
    return c.cluster.RouteBetween(gpu[static_cast<std::size_t>(i) * P + d],
                                  gpu[static_cast<std::size_t>((i + 1) % R) * P + d]);
  };
  std::map<std::string, int> load;  // ring hops on each link, over all stages
  for (int k = 0; k < S; ++k)
    for (int i = 0; i < R; ++i) ++load[hop(k, i).link];
  for (int k = 0; k < S; ++k) {
    const double chunk = static_cast<double>(c.stages[k].parameter_bytes) / R;
    double step_ns = 0;
    for (int i = 0; i < R; ++i) {
      const Route r = hop(k, i);
      step_ns =
          std::max(step_ns, static_cast<double>(r.latency_ns) + chunk * load[r.link] / r.bytes_per_sec * 1e9);
    }
    const double total_ns = 2.0 * (R - 1) * step_ns;
    if (!(total_ns < 1e17))
      throw InputError("--data-parallel", "stage " + std::to_string(k) +
                                              "'s all-reduce would take more than 1e17 ns on this cluster");
    out[k] = static_cast<TimeNs>(std::llround(total_ns));
  }
  return out;
}

Recorder::Recorder(const Schedule& s, const SimConfig& c, const Wiring& w)
    : s_(s), c_(c), w_(w), devices_(s.num_devices), record_(c.record_trace) {
  const int S = s.num_stages;
  XPIPE_CHECK(static_cast<int>(c.stages.size()) == S, "one StageCost per stage");
  r_.busy_ns.assign(s.num_devices, 0);
  r_.peak_in_flight.assign(S, 0);
  r_.link_names = w.link_names;
  r_.link_bytes.assign(w.link_names.size(), 0);
  r_.trace.transfer_tracks = w.channel_tracks;
  in_flight_.assign(S, 0);
  in_flight_bytes_.assign(S, 0);
  peak_in_flight_bytes_.assign(S, 0);
  static_bytes_.resize(S);
  kept_bytes_.resize(S);
  for (int k = 0; k < S; ++k) {
    const StageCost& sc = c.stages[k];
    const MemoryModel& m = c.memory;
    static_bytes_[k] = sc.parameter_bytes * (m.versions[k] + 1 + m.optimizer_copies + m.scratch[k]);
    kept_bytes_[k] = m.recompute ? sc.KeptUnderRecompute() : sc.activation_bytes;
    // A recomputing backward needs only the input; a swapping one also its
    // forward's private weights.
    flight_bytes_[static_cast<int>(WeightSwitch::kNone)].push_back(kept_bytes_[k]);
    flight_bytes_[static_cast<int>(WeightSwitch::kSwap)].push_back(kept_bytes_[k] + sc.parameter_bytes);
    flight_bytes_[static_cast<int>(WeightSwitch::kRecompute)].push_back(sc.KeptUnderRecompute());
  }
  stage0_updates_.reserve(s.mini_batches);
}

SimResult Recorder::Finish(TimeNs makespan_ns) {
  r_.makespan_ns = makespan_ns;
  r_.mini_batch_ns = SteadyMiniBatchNs(stage0_updates_, s_.mini_batches, makespan_ns);
  r_.samples_per_sec = r_.mini_batch_ns > 0 ? static_cast<double>(c_.samples_per_mini_batch) *
                                                  std::max(1, c_.data_parallel) / NsToSec(r_.mini_batch_ns)
                                            : 0;
  for (int d = 0; d < devices_; ++d)
    r_.utilisation.push_back(makespan_ns > 0 ? static_cast<double>(r_.busy_ns[d]) / makespan_ns : 0);
  for (int k = 0; k < s_.num_stages; ++k)
    r_.peak_memory_bytes.push_back(static_bytes_[k] + peak_in_flight_bytes_[k]);
  if (record_) {
    // Each track's spans arrive in its own order; only the interleaving of
    // tracks depends on the engine.
    std::stable_sort(r_.trace.spans.begin(), r_.trace.spans.end(),
                     [](const ActionSpan& a, const ActionSpan& b) { return a.track < b.track; });
    std::stable_sort(r_.trace.memory.begin(), r_.trace.memory.end(),
                     [](const MemorySample& a, const MemorySample& b) { return a.stage < b.stage; });
  }
  return std::move(r_);
}

}  // namespace xpipe::sim
