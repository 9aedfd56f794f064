// libFuzzer: schedule CSV (the first byte picks T = 1..8, or 0: inferred). Parsed or refused;
// a schedule that validates is dry-run, simulated, and written back as CSV
// and JSON, which read back to the same actions.
#include <cstdint>
#include <string>

#include "common/dry_run.h"
#include "common/error.h"
#include "common/schedule_io.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const int T = data[0] % 9;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  xpipe::Schedule s;
  try {
    s = xpipe::ParseCsv(text, T, "fuzz");
  } catch (const xpipe::InputError&) {
    return 0;
  }
  xpipe::fuzz::Exercise(s);
  return 0;
}
