// Multi-node clusters and data parallelism against closed forms: which link a
// transfer takes, NICs shared by replicas, the ring all-reduce, placement,
// and the two engines agreeing on a multi-node chain.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "common/error.h"
#include "sim/report.h"
#include "sim/simulator.h"
#include "tests/sim/sim_test_util.h"

namespace xpipe {
namespace {

using testing::Sched;
using testing::UniformConfig;

constexpr TimeNs kF = 10000, kB = 20000;

Cluster TwoNodes(int gpus_per_node, bool shared_nic) {
  Cluster c;
  c.gpus_per_node = gpus_per_node;
  c.nodes = 2;
  c.devices = 2 * gpus_per_node;
  c.link_bytes_per_sec = 100e9;
  c.link_latency_ns = 1000;
  c.network.bytes_per_sec = 10e9;
  c.network.latency_ns = 9000;
  c.network.shared_nic = shared_nic;
  return c;
}

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Cluster, NodesPlacementAndErrorsAreRead) {
  const Cluster c = ParseCluster(R"({"name": "x", "link": {"bandwidth_GBps": 450, "latency_us": 3},
    "nodes": {"count": 4, "gpus_per_node": 8, "network": {"bandwidth_GBps": 50, "latency_us": 5, "nic": "shared"}},
    "placement": "data-first"})",
                                 "c.json");
  EXPECT_EQ(c.devices, 32);
  EXPECT_TRUE(c.network.shared_nic);
  EXPECT_EQ(c.network.latency_ns, 5000);
  EXPECT_EQ(c.placement_kind, Placement::kDataFirst);
  const Cluster back = ParseCluster(ClusterToJson(c), "back.json");
  EXPECT_EQ(back.devices, 32);
  EXPECT_EQ(back.network.bytes_per_sec, 50e9);
  EXPECT_EQ(back.placement_kind, Placement::kDataFirst);
  const std::string base = R"({"link": {"bandwidth_GBps": 1, "latency_us": 1}, )";
  EXPECT_NE(ErrorOf([&] {
              ParseCluster(base + R"("devices": 7, "nodes": {"count": 2, "gpus_per_node": 4,
                 "network": {"bandwidth_GBps": 1, "latency_us": 1}}})",
                           "c.json");
            }).find("c.json.devices"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] {
              ParseCluster(base + R"("nodes": {"count": 2, "gpus_per_node": 4,
                 "network": {"bandwidth_GBps": 1, "latency_us": 1, "nic": "two"}}})",
                           "c.json");
            }).find("c.json.nodes.network.nic"),
            std::string::npos);
  const Cluster listed = ParseCluster(base + R"("devices": 4, "placement": [3, 2, 1, 1]})", "p.json");
  EXPECT_NE(ErrorOf([&] { listed.Place(2, 2); }).find("p.json.placement: GPU 1 is listed twice"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { listed.Place(4, 2); }).find("p.json.placement: lists 4 GPUs, the pipeline needs 8"),
            std::string::npos);
}

TEST(Cluster, PlacementOrders) {
  Cluster c = TwoNodes(4, false);
  // Pipeline-first: replica r's device p on GPU 4r + p; data-first: 2p + r.
  EXPECT_EQ(c.Place(4, 2), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  c.placement_kind = Placement::kDataFirst;
  EXPECT_EQ(c.Place(4, 2), (std::vector<int>{0, 2, 4, 6, 1, 3, 5, 7}));
  EXPECT_NE(ErrorOf([&] { c.Place(4, 3); }).find("12 GPUs needed"), std::string::npos);
  // Routes: inside a node the pair's link, between nodes the sender's NIC.
  EXPECT_EQ(c.RouteBetween(1, 2).link, "d1->d2");
  EXPECT_EQ(c.RouteBetween(3, 4).link, "nic d3");
  EXPECT_EQ(c.RouteBetween(3, 4).bytes_per_sec, 10e9);
  c.network.shared_nic = true;
  EXPECT_EQ(c.RouteBetween(5, 0).link, "nic n1");
  c.topology = Topology::kSharedBus;
  EXPECT_EQ(c.RouteBetween(5, 6).link, "bus n1");
}

// GPipe with one micro-batch: the makespan is the passes plus a round trip
// over every boundary, each on the link it crosses.
TEST(Cluster, ABoundaryBetweenNodesTakesTheNetwork) {
  const Schedule s = Sched(ScheduleKind::kGPipe, 4, 1, 1);
  const Bytes bytes = 50000000;
  SimConfig c = UniformConfig(s, kF, kB, bytes);
  c.cluster = TwoNodes(2, false);  // stages 0, 1 on node 0; 2, 3 on node 1
  const TimeNs inside = TransferNs(bytes, 100e9) + 1000, across = TransferNs(bytes, 10e9) + 9000;
  for (SimEngine e : {SimEngine::kDataflow, SimEngine::kEventQueue}) {
    c.engine = e;
    const SimResult r = Simulate(s, c);
    EXPECT_EQ(r.makespan_ns, 4 * (kF + kB) + 2 * (2 * inside + across));
    EXPECT_EQ(r.link_names,
              (std::vector<std::string>{"d0->d1", "d1->d0", "nic d1", "nic d2", "d2->d3", "d3->d2"}));
  }
}

// Two replicas of a 2-stage pipeline, data-first on two nodes of 2: both
// replicas' boundary transfers leave node 0 together. One shared NIC gives
// each half its bandwidth; a NIC per GPU, all of it.
TEST(Cluster, ReplicasShareANodesNic) {
  const Schedule s = Sched(ScheduleKind::kGPipe, 2, 1, 1);
  const Bytes bytes = 40000000;
  for (bool shared : {false, true}) {
    SimConfig c = UniformConfig(s, kF, kB, bytes);
    c.cluster = TwoNodes(2, shared);
    c.cluster.placement_kind = Placement::kDataFirst;
    c.data_parallel = 2;
    const double bandwidth = shared ? 5e9 : 10e9;
    const TimeNs hop = TransferNs(bytes, bandwidth) + 9000;
    for (SimEngine e : {SimEngine::kDataflow, SimEngine::kEventQueue}) {
      c.engine = e;
      const SimResult r = Simulate(s, c);
      // The update's all-reduce (parameters 0 here) adds 2 (D - 1) latencies.
      const TimeNs allreduce = 2 * 1000;
      EXPECT_EQ(r.makespan_ns, 2 * (kF + kB) + 2 * hop + allreduce) << shared;
      EXPECT_EQ(r.samples_per_sec, 2 * 32 / NsToSec(r.mini_batch_ns));
    }
  }
}

// Ring all-reduce: 2 (D - 1) steps of latency + bytes / D / bandwidth, the
// step as slow as its slowest hop, a hop's link shared by every ring on it.
TEST(Cluster, RingAllReduceClosedForm) {
  const Schedule s = Sched(ScheduleKind::kGPipe, 2, 1, 1);
  SimConfig c = UniformConfig(s, kF, kB);
  for (auto& st : c.stages) st.parameter_bytes = 8000000000;
  c.data_parallel = 4;
  // One node of 8 on a chain: every hop has its own pair link.
  c.cluster.link_bytes_per_sec = 100e9;
  c.cluster.link_latency_ns = 1000;
  const TimeNs one_node = 2 * 3 * (1000 + TransferNs(2000000000, 100e9));
  EXPECT_EQ(Simulate(s, c).allreduce_ns, (std::vector<TimeNs>{one_node, one_node}));
  // Pipeline-first on 4 nodes of 2: each stage's ring crosses nodes on every
  // hop; per-GPU NICs carry one ring each, a shared NIC both stages' rings.
  c.cluster = TwoNodes(2, false);
  c.cluster.nodes = 4;
  c.cluster.devices = 8;
  const TimeNs per_gpu = 2 * 3 * (9000 + TransferNs(2000000000, 10e9));
  EXPECT_EQ(Simulate(s, c).allreduce_ns, (std::vector<TimeNs>{per_gpu, per_gpu}));
  c.cluster.network.shared_nic = true;
  const TimeNs shared = 2 * 3 * (9000 + TransferNs(2000000000, 5e9));
  EXPECT_EQ(Simulate(s, c).allreduce_ns, (std::vector<TimeNs>{shared, shared}));
  // Billed at each U after the backward has sent its gradient: GPipe with
  // one micro-batch and one mini-batch ends with stage 0's all-reduce.
  const SimResult r = Simulate(s, c);
  EXPECT_EQ(r.makespan_ns, 2 * (kF + kB) + shared);
  // Overlapped with the backward, only what exceeds it is billed.
  c.overlap_allreduce = true;
  EXPECT_EQ(Simulate(s, c).makespan_ns, 2 * (kF + kB) + shared - kB);
}

// Both engines on a multi-node chain with replicas, every schedule.
TEST(Cluster, EnginesAgreeAcrossNodes) {
  for (ScheduleKind kind : {ScheduleKind::kGPipe, ScheduleKind::kOneFOneBFlush, ScheduleKind::kXPipe,
                            ScheduleKind::kPipeDream2BW, ScheduleKind::kZeroBubbleH1}) {
    const Schedule s = Sched(kind, 4, 4, 6);
    SimConfig c = UniformConfig(s, kF, kB, 30000000);
    for (auto& st : c.stages) st.parameter_bytes = 100000000;
    // Data-first on two nodes of 4: replica 0 on GPUs 0, 2, 4, 6, replica 1
    // on 1, 3, 5, 7; both cross between nodes at the same boundary, on
    // each node's shared NIC.
    c.cluster = TwoNodes(4, true);
    c.cluster.placement_kind = Placement::kDataFirst;
    c.data_parallel = 2;
    c.record_trace = true;
    c.engine = SimEngine::kDataflow;
    const SimResult a = Simulate(s, c);
    c.engine = SimEngine::kEventQueue;
    const SimResult b = Simulate(s, c);
    EXPECT_EQ(a.makespan_ns, b.makespan_ns) << ScheduleName(kind);
    EXPECT_EQ(a.busy_ns, b.busy_ns) << ScheduleName(kind);
    EXPECT_EQ(a.link_bytes, b.link_bytes) << ScheduleName(kind);
  }
}

// A 512-stage table stays narrow: per-stage lists become runs or ranges.
TEST(Report, TablesStayReadableAtHundredsOfStages) {
  Scenario sc;
  sc.profile.name = "deep";
  sc.profile.batch_size = 512;
  for (int i = 0; i < 512; ++i) sc.profile.layers.push_back(Layer{"l", "", 1000, 2000, 1000, 1000});
  sc.partition.assign(512, 1);
  sc.schedule.devices = 512;
  sc.schedule.micro_batches = 512;
  sc.schedule.mini_batches = 3;
  std::vector<NamedResult> results;
  for (ScheduleKind kind : {ScheduleKind::kOneFOneBFlush, ScheduleKind::kXPipe}) {
    sc.schedule.kind = kind;
    results.emplace_back(ScheduleName(kind), RunScenario(sc));
  }
  const std::string table = CompareTable(results);
  std::size_t widest = 0, start = 0;
  for (std::size_t nl; (nl = table.find('\n', start)) != std::string::npos; start = nl + 1)
    widest = std::max(widest, nl - start);
  EXPECT_LT(widest, 220u) << table;
  EXPECT_NE(table.find("1 x512"), std::string::npos) << table;     // one layer per stage, one version
  EXPECT_NE(table.find("1 x511, 0"), std::string::npos) << table;  // XPipe's staleness: the last stage fresh
}

}  // namespace
}  // namespace xpipe
