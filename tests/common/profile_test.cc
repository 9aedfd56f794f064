// PipeDream import (totals exact against the source files), profile errors,
// bytes across cuts, and the partitioner against brute force.
#include "common/profile.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <sstream>

#include "common/cluster.h"
#include "common/error.h"
#include "common/partition.h"
#include "common/schedule_io.h"

namespace xpipe {
namespace {

const std::string kShared = XPIPE_SHARED_DIR "/profiles/pipedream/";
const std::string kProfiles = XPIPE_SOURCE_DIR "/profiles/";

// Sums the source file's fields with a parser of its own (the oracle).
struct Totals {
  TimeNs fwd = 0, bwd = 0;
  Bytes params = 0;
  int nodes = 0, edges = 0;
};
Totals SourceTotals(const std::string& text) {
  Totals t;
  std::istringstream in(text);
  std::string line;
  const auto field = [](const std::string& l, const std::string& key) {
    const std::size_t at = l.find(key + "=");
    return std::stod(l.substr(at + key.size() + 1));
  };
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line[0] == '\t') {
      ++t.edges;
      continue;
    }
    ++t.nodes;
    t.fwd += std::llround(field(line, "forward_compute_time") * 1e6);
    t.bwd += std::llround(field(line, "backward_compute_time") * 1e6);
    t.params += std::llround(field(line, "parameter_size"));
  }
  return t;
}

class ShippedProfile : public ::testing::TestWithParam<std::string> {};

TEST_P(ShippedProfile, ImportsWithExactTotals) {
  const std::string name = GetParam();
  const std::string text = ReadFile(kShared + name + ".graph.txt");
  const Totals want = SourceTotals(text);
  for (const Profile& p : {ImportPipeDreamGraph(text, name), LoadProfile(kProfiles + name + ".json")}) {
    Totals got;
    for (const Layer& l : p.layers)
      got.fwd += l.forward_ns, got.bwd += l.backward_ns, got.params += l.parameter_bytes;
    EXPECT_EQ(static_cast<int>(p.layers.size()), want.nodes);
    EXPECT_EQ(static_cast<int>(p.edges.size()), want.edges);
    EXPECT_EQ(got.fwd, want.fwd);
    EXPECT_EQ(got.bwd, want.bwd);
    EXPECT_EQ(got.params, want.params);
    for (const auto& [a, b] : p.edges) EXPECT_LT(a, b);  // topological order
  }
}

INSTANTIATE_TEST_SUITE_P(PipeDream, ShippedProfile,
                         ::testing::Values("vgg16", "resnet101", "inception_v3", "resnet50", "gnmt",
                                           "resnet18", "alexnet"));

TEST(Profile, JsonRoundTrip) {
  const Profile p = LoadProfile(kProfiles + "resnet50.json");
  const Profile q = ParseProfile(ProfileToJson(p), "mem");
  ASSERT_EQ(p.layers.size(), q.layers.size());
  for (std::size_t i = 0; i < p.layers.size(); ++i) {
    EXPECT_EQ(p.layers[i].forward_ns, q.layers[i].forward_ns);
    EXPECT_EQ(p.layers[i].activation_bytes, q.layers[i].activation_bytes);
  }
  EXPECT_EQ(p.edges, q.edges);
  EXPECT_EQ(p.batch_size, 128);
}

// The runtime's figures a measured profile and cluster carry, through JSON
// and into the stage costs (summed over a stage's layers, never scaled by
// the micro-batch: they act on weights).
TEST(Profile, RuntimeFiguresRoundTrip) {
  Profile p;
  p.name = "m";
  p.batch_size = 8;
  for (int i = 0; i < 3; ++i) {
    Layer l;
    l.name = "l" + std::to_string(i);
    l.forward_ns = 1000;
    l.backward_ns = 2000;
    l.parameter_bytes = 400;
    l.update_ns = 11000 * (i + 1);
    l.copy_ns = 3000 * (i + 1);
    l.predict_ns = 5000 * (i + 1);
    p.layers.push_back(l);
  }
  const Profile q = ParseProfile(ProfileToJson(p), "mem");
  const auto stages = StageCosts(q, {1, 2}, 4);  // half the profiled batch
  EXPECT_EQ(stages[0].update_ns, 11000);
  EXPECT_EQ(stages[1].update_ns, 22000 + 33000);
  EXPECT_EQ(stages[1].copy_ns, 6000 + 9000);
  EXPECT_EQ(stages[1].predict_ns, 10000 + 15000);
  EXPECT_EQ(stages[1].forward_ns, 1000);  // 2 layers x 1000 x 4 / 8

  Cluster c;
  c.devices = 2;
  c.link_latency_ns = 42000;
  c.link_bytes_per_sec = 3.5e9;
  c.pass_overhead_ns = 9000;
  c.compute_contention = 0.25;
  c.send_fixed_ns = 77000;
  const Cluster d = ParseCluster(ClusterToJson(c), "mem");
  EXPECT_EQ(d.link_latency_ns, 42000);
  EXPECT_DOUBLE_EQ(d.link_bytes_per_sec, 3.5e9);
  EXPECT_EQ(d.pass_overhead_ns, 9000);
  EXPECT_DOUBLE_EQ(d.compute_contention, 0.25);
  EXPECT_EQ(d.send_fixed_ns, 77000);
}

std::string ErrorOf(const std::string& json) {
  try {
    ParseProfile(json, "p.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(Profile, BadFieldsAreNamed) {
  EXPECT_EQ(ErrorOf(R"({"name":"m","layers":[]})"), "p.json: missing field 'batch_size'");
  EXPECT_EQ(ErrorOf(R"({"name":"m","batch_size":8,"layers":[{"name":"a","forward_ms":-1,"backward_ms":1,)"
                    R"("activation_bytes":1,"parameter_bytes":1}]})"),
            "p.json.layers[0].forward_ms: must not be negative");
  EXPECT_EQ(ErrorOf(R"({"name":"m","batch_size":8,"layers":[{"name":"a","forward_ms":1,)"
                    R"("activation_bytes":1,"parameter_bytes":1}]})"),
            "p.json.layers[0]: missing field 'backward_ms'");
  EXPECT_NE(ErrorOf("{not json").find("p.json: not valid JSON"), std::string::npos);
}

// A diamond a -> {b, c} -> d: the cut after b also carries a's output to c.
TEST(Profile, CutBytesFollowTheDag) {
  Profile p;
  p.batch_size = 1;
  for (Bytes act : {100, 20, 3, 0}) p.layers.push_back(Layer{"", "", 1, 1, act, 0, false});
  p.edges = {{0, 1}, {0, 2}, {1, 3}, {2, 3}};
  EXPECT_EQ(p.CutBytes(), (std::vector<Bytes>{0, 100, 120, 23, 0}));
  p.edges.clear();  // a chain
  EXPECT_EQ(p.CutBytes(), (std::vector<Bytes>{0, 100, 20, 3, 0}));
}

Profile RandomProfile(std::mt19937& rng, int L) {
  std::uniform_int_distribution<int> ms(1, 40), mb(0, 400);
  Profile p;
  p.name = "random";
  p.batch_size = 8;
  for (int i = 0; i < L; ++i)
    p.layers.push_back(Layer{"l" + std::to_string(i), "", ms(rng) * kNsPerMs, 2 * ms(rng) * kNsPerMs,
                             static_cast<Bytes>(mb(rng)) << 20, static_cast<Bytes>(mb(rng)) << 18, false});
  return p;
}

// Every way to cut L layers into N non-empty contiguous stages.
void ForEachPartition(int L, int N, const std::function<void(const std::vector<int>&)>& f) {
  std::vector<int> parts;
  std::function<void(int, int)> rec = [&](int left, int stages) {
    if (stages == 1) {
      parts.push_back(left);
      f(parts);
      parts.pop_back();
      return;
    }
    for (int n = 1; n <= left - (stages - 1); ++n) {
      parts.push_back(n);
      rec(left - n, stages - 1);
      parts.pop_back();
    }
  };
  rec(L, N);
}

TEST(Partition, OptimalAgainstBruteForce) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    const int L = 3 + trial % 7, N = 1 + trial % 4;
    if (N > L) continue;
    const Profile p = RandomProfile(rng, L);
    Cluster cl;
    cl.link_bytes_per_sec = 5e9 + 1e9 * (trial % 5);
    cl.overlap_compute = trial % 2 == 0;
    PartitionRequest req;
    req.stages = N;
    req.micro_batch_size = 2;
    req.cluster = &cl;
    TimeNs best = std::numeric_limits<TimeNs>::max();
    ForEachPartition(L, N, [&](const std::vector<int>& parts) {
      best = std::min(best, EvaluatePartition(p, parts, req).bottleneck_ns);
    });
    EXPECT_EQ(AutoPartition(p, req).bottleneck_ns, best) << "trial " << trial;
  }
}

TEST(Partition, RespectsAMemoryLimitOrSaysNoneFits) {
  std::mt19937 rng(11);
  const Profile p = RandomProfile(rng, 8);
  Cluster cl;
  MemoryModel m;
  m.versions = {4, 3, 2, 1};  // PipeDream-like
  m.scratch = {0, 0, 0, 0};
  m.in_flight = {4, 3, 2, 1};
  PartitionRequest req;
  req.stages = 4;
  req.micro_batch_size = 8;
  req.cluster = &cl;
  req.memory = &m;
  const PartitionResult free_run = AutoPartition(p, req);
  Bytes worst = 0;
  const auto free_costs = StageCosts(p, free_run.layers_per_stage, 8);
  for (int k = 0; k < 4; ++k) worst = std::max(worst, StageMemoryBytes(free_costs[k], m, k));
  // A limit between the best feasible and the unconstrained optimum's need.
  Bytes feasible_min = std::numeric_limits<Bytes>::max();
  TimeNs best_under = std::numeric_limits<TimeNs>::max();
  std::vector<std::pair<Bytes, TimeNs>> all;
  ForEachPartition(8, 4, [&](const std::vector<int>& parts) {
    const auto costs = StageCosts(p, parts, 8);
    Bytes need = 0;
    for (int k = 0; k < 4; ++k) need = std::max(need, StageMemoryBytes(costs[k], m, k));
    feasible_min = std::min(feasible_min, need);
    all.emplace_back(need, EvaluatePartition(p, parts, req).bottleneck_ns);
  });
  const Bytes limit = (feasible_min + worst) / 2;
  for (const auto& [need, t] : all)
    if (need <= limit) best_under = std::min(best_under, t);
  req.memory_limit = limit;
  const PartitionResult r = AutoPartition(p, req);
  EXPECT_EQ(r.bottleneck_ns, best_under);
  const auto costs = StageCosts(p, r.layers_per_stage, 8);
  for (int k = 0; k < 4; ++k) EXPECT_LE(StageMemoryBytes(costs[k], m, k), limit);
  req.memory_limit = feasible_min - 1;
  EXPECT_THROW(AutoPartition(p, req), InputError);
}

TEST(Partition, MoreStagesThanLayers) {
  std::mt19937 rng(3);
  const Profile p = RandomProfile(rng, 3);
  Cluster cl;
  PartitionRequest req;
  req.stages = 4;
  req.cluster = &cl;
  EXPECT_THROW(AutoPartition(p, req), InputError);
}

}  // namespace
}  // namespace xpipe
