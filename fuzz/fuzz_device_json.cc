// libFuzzer: device JSON for `xpipe profile transformer`. Parsed or refused;
// what parses yields a transformer profile (or a named refusal) that
// round-trips through the profile format.
#include <cstdint>
#include <string>

#include "common/error.h"
#include "common/transformer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  xpipe::DeviceSpec d;
  try {
    d = xpipe::ParseDeviceSpec(text, "fuzz");
  } catch (const xpipe::InputError&) {
    return 0;
  }
  if (d.peak_flops.empty() || !(d.memory_bytes_per_sec > 0) || !(d.efficiency > 0)) __builtin_trap();
  xpipe::TransformerConfig c;
  c.layers = 2;
  c.hidden = 64;
  c.heads = 4;
  c.vocab = 100;
  c.seq_len = 16;
  c.precision = d.peak_flops.begin()->first;
  xpipe::Profile p;
  try {
    p = xpipe::TransformerProfile(c, d);
  } catch (const xpipe::InputError&) {  // a device too slow for a profile to hold
    return 0;
  }
  const xpipe::Profile back = xpipe::ParseProfile(xpipe::ProfileToJson(p), "round trip");
  if (back.layers.size() != p.layers.size()) __builtin_trap();
  for (std::size_t i = 0; i < p.layers.size(); ++i)
    if (back.layers[i].forward_flops != p.layers[i].forward_flops ||
        back.layers[i].saved_bytes != p.layers[i].saved_bytes)
      __builtin_trap();
  return 0;
}
