// libFuzzer: the command line. The input is split at newlines into at most
// 24 arguments for `xpipe sim`, `schedule` or `profile` (the first byte picks
// the command); they run in a scratch directory holding a profile, a
// cluster, a CSV and a JSON schedule and a PipeDream graph (profile.json,
// cluster.json, sched.csv, sched.json, graph.txt), with stdout and stderr
// discarded. An argument with '/' is skipped: the fuzzer must not write
// outside its directory. Any exit status is fine; a crash, a hang, a leak or
// a sanitizer report is not.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace {

const char* const kCommands[] = {"sim", "schedule", "profile"};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  const char* seeds = std::getenv("XPIPE_FUZZ_FILES");  // the scratch directory, made by scripts/fuzz.sh
  if (seeds == nullptr || chdir(seeds) != 0) {
    std::fprintf(stderr, "fuzz_cli: set XPIPE_FUZZ_FILES to the scratch directory (scripts/fuzz.sh does)\n");
    std::abort();
  }
  if (std::freopen("/dev/null", "w", stdout) == nullptr) std::abort();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 || size > 4096) return 0;
  std::vector<std::string> args = {"xpipe", kCommands[data[0] % 3]};
  std::string arg;
  for (std::size_t i = 1; i <= size; ++i) {
    if (i == size || data[i] == '\n') {
      if (arg.find('/') != std::string::npos || arg.find('\0') != std::string::npos) return 0;
      args.push_back(arg);
      arg.clear();
      if (args.size() > 26) return 0;
    } else {
      arg += static_cast<char>(data[i]);
    }
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The commands' messages go nowhere; libFuzzer's own reports still reach stderr.
  static std::ofstream null("/dev/null");
  std::streambuf* err = std::cerr.rdbuf(null.rdbuf());
  xpipe::cli::Run(static_cast<int>(args.size()), argv.data());
  std::cerr.rdbuf(err);
  return 0;
}
