// libFuzzer: profile JSON. Any input is parsed or refused with an InputError;
// what parses round-trips through the writer and costs out on any partition.
#include <cstdint>
#include <string>

#include "common/error.h"
#include "common/partition.h"
#include "common/profile.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  xpipe::Profile p;
  try {
    p = xpipe::ParseProfile(text, "fuzz");
  } catch (const xpipe::InputError&) {
    return 0;
  }
  const xpipe::Profile q = xpipe::ParseProfile(xpipe::ProfileToJson(p), "round trip");
  if (q.layers.size() != p.layers.size()) __builtin_trap();
  const int L = static_cast<int>(p.layers.size());
  const std::vector<int> parts = p.partition.empty() ? std::vector<int>{L} : p.partition;
  (void)xpipe::StageCosts(p, parts, 1.0);
  return 0;
}
