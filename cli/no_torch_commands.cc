// Subcommands that need the LibTorch executor, in a build without it: --help
// still prints their usage; anything else is one line and exit status 2.
#include <iostream>

#include "cli/commands.h"

namespace xpipe::cli {
namespace {

int NeedsTorch(const char* command, const Args& args) {
  for (const auto& a : args)
    if (a == "--help" || a == "-h") {
      std::cout
          << "usage: xpipe " << command << " [options]\n"
          << "  (this build has no LibTorch executor; configure with -DXPIPE_WITH_TORCH=ON, see README)\n";
      return 0;
    }
  std::cerr << "xpipe " << command << ": this build has no LibTorch executor "
            << "(configure with -DXPIPE_WITH_TORCH=ON; see README)\n";
  return 2;
}

}  // namespace

int TrainCommand(const Args& args) { return NeedsTorch("train", args); }
int ValidateCommand(const Args& args) { return NeedsTorch("validate", args); }
int ProfileModelCommand(const Args& args) { return NeedsTorch("profile --model", args); }

}  // namespace xpipe::cli
