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
  const JsonObject top(
      j, where,
      {"name", "source", "devices", "speed", "link", "topology", "overlap_compute", "memory_GiB",
       "memory_bandwidth_GBps", "pass_overhead_us", "compute_contention", "receive"});
  // What the figures may be: times up to 1e9 us, bandwidths from 1 B/s to
  // 1 PB/s, speeds from 1/1000 to 1000.
  constexpr double kMaxUs = 1e9, kMinGBps = 1e-9, kMaxGBps = 1e6;
  Cluster c;
  c.name = top.Text("name", c.name);
  c.source = top.Text("source", "");
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
  if (top.Has("memory_GiB"))
    c.device_memory_bytes = static_cast<Bytes>(top.Number("memory_GiB", 0, 1048576) * (1LL << 30));
  return c;
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
  if (c.receive_fixed_ns > 0 || c.receive_bytes_per_sec > 0)
    j["receive"] = {{"fixed_us", NsToUs(c.receive_fixed_ns)},
                    {"bandwidth_GBps", c.receive_bytes_per_sec / 1e9}};
  if (c.device_memory_bytes)
    j["memory_GiB"] = static_cast<double>(*c.device_memory_bytes) / static_cast<double>(1LL << 30);
  return j.dump(1) + "\n";
}

}  // namespace xpipe
