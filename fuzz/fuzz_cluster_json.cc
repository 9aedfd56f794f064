// libFuzzer: cluster JSON. Parsed or refused; what parses round-trips.
#include <cstdint>
#include <string>
#include <vector>

#include "common/cluster.h"
#include "common/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  xpipe::Cluster c;
  try {
    c = xpipe::ParseCluster(text, "fuzz");
  } catch (const xpipe::InputError&) {
    return 0;
  }
  const xpipe::Cluster d = xpipe::ParseCluster(xpipe::ClusterToJson(c), "round trip");
  if (d.devices != c.devices || d.speed.size() != c.speed.size() || d.nodes != c.nodes ||
      d.gpus_per_node != c.gpus_per_node || d.network.shared_nic != c.network.shared_nic ||
      d.placement_kind != c.placement_kind || d.placement != c.placement)
    __builtin_trap();
  // Placing 2 replicas of a 2-device pipeline: GPUs or a named refusal.
  try {
    const std::vector<int> gpu = c.Place(2, 2);
    for (int g : gpu)
      for (int h : gpu)
        if (g != h && c.RouteBetween(g, h).bytes_per_sec <= 0) __builtin_trap();
  } catch (const xpipe::InputError&) {
  }
  return 0;
}
