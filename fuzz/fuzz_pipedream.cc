// libFuzzer: PipeDream graph.txt import. Imported or refused; what imports
// writes a JSON profile that reads back.
#include <cstdint>
#include <string>

#include "common/error.h"
#include "common/profile.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  xpipe::Profile p;
  try {
    p = xpipe::ImportPipeDreamGraph(text, "fuzz");
  } catch (const xpipe::InputError&) {
    return 0;
  }
  p.name = "fuzz";
  const xpipe::Profile q = xpipe::ParseProfile(xpipe::ProfileToJson(p), "round trip");
  if (q.layers.size() != p.layers.size()) __builtin_trap();
  return 0;
}
