// libFuzzer: cluster JSON. Parsed or refused; what parses round-trips.
#include <cstdint>
#include <string>

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
  if (d.devices != c.devices || d.speed.size() != c.speed.size()) __builtin_trap();
  return 0;
}
