// libFuzzer: schedule JSON. Parsed or refused; a schedule that validates is
// dry-run, simulated and written back.
#include <cstdint>
#include <string>

#include "common/error.h"
#include "common/schedule_io.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  xpipe::Schedule s;
  try {
    s = xpipe::ParseJson(text, "fuzz");
  } catch (const xpipe::InputError&) {
    return 0;
  }
  xpipe::fuzz::Exercise(s);
  return 0;
}
