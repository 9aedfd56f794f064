#include "common/cluster.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_util.h"
#include "common/schedule_io.h"

namespace xpipe {

Cluster ParseCluster(const std::string& text, const std::string& where) {
  using nlohmann::json;
  const json j = ParseJsonText(text, where);
  const JsonObject top(j, where,
                       {"name", "source", "devices", "speed", "link", "topology", "overlap_compute",
                        "memory_GiB", "memory_bandwidth_GBps", "pass_overhead_us", "compute_contention",
                        "receive", "send_us", "nodes", "placement"});
  // What the figures may be: times up to 1e9 us, bandwidths from 1 B/s to
  // 1 PB/s, speeds from 1/1000 to 1000.
  constexpr double kMaxUs = 1e9, kMinGBps = 1e-9, kMaxGBps = 1e6;
  Cluster c;
  c.file = where;
  c.name = top.Text("name", c.name);
  c.source = top.Text("source", "");
  if (top.Has("devices") || !top.Has("nodes"))
    c.devices = static_cast<int>(top.Integer("devices", 0, 1000000));
  if (top.Has("speed")) {
    const json& speeds = top.Array("speed");
    for (std::size_t i = 0; i < speeds.size(); ++i) {
      const json& v = speeds[i];
      const std::string at = top.At("speed") + "[" + std::to_string(i) + "]";
      if (!v.is_number()) throw InputError(at, "expected a number");
      const double x = v.get<double>();
      if (!std::isfinite(x) || x < 1e-3 || x > 1e3) throw InputError(at, "must be between 0.001 and 1000");
      c.speed.push_back(x);
    }
  }
  const JsonObject link(top.Get("link"), top.At("link"), {"bandwidth_GBps", "latency_us"});
  c.link_bytes_per_sec = link.Number("bandwidth_GBps", kMinGBps, kMaxGBps) * 1e9;
  c.link_latency_ns = UsToNs(link.Number("latency_us", 0, kMaxUs));
  if (top.Has("topology")) {
    const std::string t = top.Text("topology");
    if (t == "chain")
      c.topology = Topology::kChain;
    else if (t == "shared-bus")
      c.topology = Topology::kSharedBus;
    else
      throw InputError(top.At("topology"), "expected 'chain' or 'shared-bus'");
  }
  c.overlap_compute = top.Bool("overlap_compute", c.overlap_compute);
  c.memory_bytes_per_sec =
      top.Number("memory_bandwidth_GBps", kMinGBps, kMaxGBps, c.memory_bytes_per_sec / 1e9) * 1e9;
  c.pass_overhead_ns = UsToNs(top.Number("pass_overhead_us", 0, kMaxUs, 0));
  c.compute_contention = top.Number("compute_contention", 0, 100, 0);
  if (top.Has("receive")) {
    const JsonObject r(top.Get("receive"), top.At("receive"), {"fixed_us", "bandwidth_GBps"});
    c.receive_fixed_ns = UsToNs(r.Number("fixed_us", 0, kMaxUs));
    const double gbps = r.Number("bandwidth_GBps", 0, kMaxGBps);  // 0: no per-byte cost
    if (gbps > 0 && gbps < kMinGBps) throw InputError(r.At("bandwidth_GBps"), "must be 0 or at least 1e-09");
    c.receive_bytes_per_sec = gbps * 1e9;
  }
  c.send_fixed_ns = UsToNs(top.Number("send_us", 0, kMaxUs, 0));
  if (top.Has("memory_GiB"))
    c.device_memory_bytes = static_cast<Bytes>(top.Number("memory_GiB", 0, 1048576) * (1LL << 30));
  if (top.Has("nodes")) {
    const JsonObject n(top.Get("nodes"), top.At("nodes"), {"count", "gpus_per_node", "network"});
    c.nodes = static_cast<int>(n.Integer("count", 1, 100000));
    c.gpus_per_node = static_cast<int>(n.Integer("gpus_per_node", 1, 1024));
    const JsonObject net(n.Get("network"), n.At("network"), {"bandwidth_GBps", "latency_us", "nic"});
    c.network.bytes_per_sec = net.Number("bandwidth_GBps", kMinGBps, kMaxGBps) * 1e9;
    c.network.latency_ns = UsToNs(net.Number("latency_us", 0, kMaxUs));
    const std::string nic = net.Text("nic", "per-gpu");
    if (nic != "per-gpu" && nic != "shared")
      throw InputError(net.At("nic"), "expected 'per-gpu' or 'shared'");
    c.network.shared_nic = nic == "shared";
    const long long gpus = static_cast<long long>(c.nodes) * c.gpus_per_node;
    if (gpus > 1000000) throw InputError(top.At("nodes"), "more than 1000000 GPUs");
    if (top.Has("devices") && c.devices != gpus)
      throw InputError(top.At("devices"), "is " + std::to_string(c.devices) + " but nodes give " +
                                              std::to_string(gpus) + " GPUs (leave it out)");
    c.devices = static_cast<int>(gpus);
  }
  if (top.Has("placement")) {
    const json& p = top.Get("placement");
    if (p.is_string() && p.get<std::string>() == "pipeline-first") {
      c.placement_kind = Placement::kPipelineFirst;
    } else if (p.is_string() && p.get<std::string>() == "data-first") {
      c.placement_kind = Placement::kDataFirst;
    } else if (p.is_array() && !p.empty()) {
      c.placement_kind = Placement::kExplicit;
      for (std::size_t i = 0; i < p.size(); ++i) {
        const std::string at = top.At("placement") + "[" + std::to_string(i) + "]";
        if (!p[i].is_number_integer() || p[i].get<long long>() < 0 || p[i].get<long long>() >= 1000000)
          throw InputError(at, "expected a GPU index");
        c.placement.push_back(static_cast<int>(p[i].get<long long>()));
      }
    } else {
      throw InputError(top.At("placement"),
                       "expected 'pipeline-first', 'data-first' or a list of GPU indices");
    }
  }
  return c;
}

Route Cluster::RouteBetween(int from_gpu, int to_gpu) const {
  const std::string from = std::to_string(from_gpu);
  const int node = NodeOf(from_gpu);
  if (node == NodeOf(to_gpu)) {
    if (topology == Topology::kChain)
      return {"d" + from + "->d" + std::to_string(to_gpu), link_bytes_per_sec, link_latency_ns};
    return {gpus_per_node > 0 && nodes > 1 ? "bus n" + std::to_string(node) : "bus", link_bytes_per_sec,
            link_latency_ns};
  }
  return {network.shared_nic ? "nic n" + std::to_string(node) : "nic d" + from, network.bytes_per_sec,
          network.latency_ns};
}

std::vector<int> Cluster::Place(int P, int D) const {
  const long long needed = static_cast<long long>(P) * D;
  std::vector<int> gpu(static_cast<std::size_t>(needed));
  if (placement_kind == Placement::kExplicit) {
    if (static_cast<long long>(placement.size()) != needed)
      throw InputError(file + ".placement", "lists " + std::to_string(placement.size()) +
                                                " GPUs, the pipeline needs " + std::to_string(needed) + " (" +
                                                std::to_string(D) + " replicas x " + std::to_string(P) +
                                                " devices)");
    std::vector<bool> used(devices > 0 ? devices : 0, false);
    for (long long i = 0; i < needed; ++i) {
      const int g = placement[i];
      if (devices > 0 && g >= devices)
        throw InputError(file + ".placement",
                         "GPU " + std::to_string(g) + " is not in the cluster's " + std::to_string(devices));
      if (devices > 0 && used[g])
        throw InputError(file + ".placement", "GPU " + std::to_string(g) + " is listed twice");
      if (devices > 0) used[g] = true;
      gpu[i] = g;
    }
    return gpu;
  }
  if (devices > 0 && needed > devices)
    throw InputError("--stages", std::to_string(needed) + " GPUs needed (" + std::to_string(D) +
                                     " replicas x " + std::to_string(P) + " devices), cluster '" + name +
                                     "' has " + std::to_string(devices));
  for (int r = 0; r < D; ++r)
    for (int p = 0; p < P; ++p)
      gpu[static_cast<std::size_t>(r) * P + p] =
          placement_kind == Placement::kDataFirst ? p * D + r : r * P + p;
  return gpu;
}

Cluster LoadCluster(const std::string& path) { return ParseCluster(ReadFile(path), path); }

std::string ClusterToJson(const Cluster& c) {
  nlohmann::json j;
  j["name"] = c.name;
  j["source"] = c.source;
  j["devices"] = c.devices;
  if (!c.speed.empty()) j["speed"] = c.speed;
  j["link"] = {{"bandwidth_GBps", c.link_bytes_per_sec / 1e9}, {"latency_us", NsToUs(c.link_latency_ns)}};
  j["topology"] = c.topology == Topology::kChain ? "chain" : "shared-bus";
  j["overlap_compute"] = c.overlap_compute;
  j["memory_bandwidth_GBps"] = c.memory_bytes_per_sec / 1e9;
  if (c.pass_overhead_ns > 0) j["pass_overhead_us"] = NsToUs(c.pass_overhead_ns);
  if (c.compute_contention > 0) j["compute_contention"] = c.compute_contention;
  if (c.send_fixed_ns > 0) j["send_us"] = NsToUs(c.send_fixed_ns);
  if (c.receive_fixed_ns > 0 || c.receive_bytes_per_sec > 0)
    j["receive"] = {{"fixed_us", NsToUs(c.receive_fixed_ns)},
                    {"bandwidth_GBps", c.receive_bytes_per_sec / 1e9}};
  if (c.device_memory_bytes)
    j["memory_GiB"] = static_cast<double>(*c.device_memory_bytes) / static_cast<double>(1LL << 30);
  if (c.gpus_per_node > 0)
    j["nodes"] = {{"count", c.nodes},
                  {"gpus_per_node", c.gpus_per_node},
                  {"network",
                   {{"bandwidth_GBps", c.network.bytes_per_sec / 1e9},
                    {"latency_us", NsToUs(c.network.latency_ns)},
                    {"nic", c.network.shared_nic ? "shared" : "per-gpu"}}}};
  if (c.placement_kind == Placement::kDataFirst) j["placement"] = "data-first";
  if (c.placement_kind == Placement::kExplicit) j["placement"] = c.placement;
  return j.dump(1) + "\n";
}

}  // namespace xpipe
