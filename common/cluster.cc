#include "common/cluster.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_util.h"
#include "common/schedule_io.h"

namespace xpipe {

Cluster ParseCluster(const std::string& text, const std::string& where) {
  using nlohmann::json;
  const json j = ParseJsonText(text, where);
  Cluster c;
  const auto number = [&](const json& o, const char* field, const std::string& at) {
    if (!o.contains(field)) throw InputError(at, std::string("missing field '") + field + "'");
    if (!o.at(field).is_number()) throw InputError(at + "." + field, "expected a number");
    const double x = o.at(field).get<double>();
    if (x < 0) throw InputError(at + "." + field, "must not be negative");
    return x;
  };
  if (!j.is_object()) throw InputError(where, "expected an object");
  if (j.contains("name")) c.name = j.at("name").get<std::string>();
  if (j.contains("source")) c.source = j.at("source").get<std::string>();
  c.devices = static_cast<int>(number(j, "devices", where));
  if (j.contains("speed")) {
    if (!j.at("speed").is_array()) throw InputError(where + ".speed", "expected an array");
    for (const json& s : j.at("speed")) {
      if (!s.is_number() || s.get<double>() <= 0)
        throw InputError(where + ".speed", "speeds must be positive");
      c.speed.push_back(s.get<double>());
    }
  }
  if (!j.contains("link")) throw InputError(where, "missing field 'link'");
  const json& link = j.at("link");
  const double gbps = number(link, "bandwidth_GBps", where + ".link");
  if (gbps <= 0) throw InputError(where + ".link.bandwidth_GBps", "must be positive");
  c.link_bytes_per_sec = gbps * 1e9;
  c.link_latency_ns = UsToNs(number(link, "latency_us", where + ".link"));
  if (j.contains("topology")) {
    const std::string t = j.at("topology").get<std::string>();
    if (t == "chain")
      c.topology = Topology::kChain;
    else if (t == "shared-bus")
      c.topology = Topology::kSharedBus;
    else
      throw InputError(where + ".topology", "expected 'chain' or 'shared-bus'");
  }
  if (j.contains("overlap_compute")) c.overlap_compute = j.at("overlap_compute").get<bool>();
  if (j.contains("memory_bandwidth_GBps")) {
    const double gbps = number(j, "memory_bandwidth_GBps", where);
    if (!(gbps > 0)) throw InputError(where + ".memory_bandwidth_GBps", "must be positive");
    c.memory_bytes_per_sec = gbps * 1e9;
  }
  if (j.contains("pass_overhead_us")) c.pass_overhead_ns = UsToNs(number(j, "pass_overhead_us", where));
  if (j.contains("compute_contention")) c.compute_contention = number(j, "compute_contention", where);
  if (j.contains("receive")) {
    const json& r = j.at("receive");
    c.receive_fixed_ns = UsToNs(number(r, "fixed_us", where + ".receive"));
    const double gbps = number(r, "bandwidth_GBps", where + ".receive");
    c.receive_bytes_per_sec = gbps * 1e9;  // 0: no per-byte cost
  }
  if (j.contains("memory_GiB"))
    c.device_memory_bytes = static_cast<Bytes>(number(j, "memory_GiB", where) * (1LL << 30));
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
