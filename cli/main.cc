// xpipe: the one command-line front end. Maps user errors to one line on
// stderr and exit status 2.
#include <boost/program_options/errors.hpp>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "common/error.h"

namespace {

constexpr const char* kUsage =
    "usage: xpipe <command> [options]   (xpipe <command> --help for its options)\n"
    "\n"
    "commands:\n"
    "  sim       simulate schedules on a profile and cluster; compare them or sweep\n"
    "  schedule  print, convert or check a pipeline schedule\n"
    "  profile   import a PipeDream profile graph as an xpipe JSON profile\n"
    "  train     train a model with a pipeline schedule on LibTorch\n"
    "  validate  compare the simulator's prediction with a measured executor run\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  const xpipe::cli::Args args(argv + 2, argv + argc);
  try {
    if (command == "sim") return xpipe::cli::SimCommand(args);
    if (command == "schedule") return xpipe::cli::ScheduleCommand(args);
    if (command == "profile") return xpipe::cli::ProfileCommand(args);
    if (command == "train") return xpipe::cli::TrainCommand(args);
    if (command == "validate") return xpipe::cli::ValidateCommand(args);
    std::cerr << "xpipe: unknown command '" << command << "' (xpipe --help lists them)\n";
    return 2;
  } catch (const xpipe::InputError& e) {
    std::cerr << "xpipe " << command << ": " << e.what() << "\n";
    return 2;
  } catch (const boost::program_options::error& e) {
    std::cerr << "xpipe " << command << ": " << e.what() << "\n";
    return 2;
  }
}
