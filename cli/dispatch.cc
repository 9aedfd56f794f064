// xpipe: the one command-line front end, and the one boundary for errors:
// whatever a command throws becomes one line on stderr (its first line only,
// control characters escaped: no backtraces, nothing echoed raw from input)
// and exit status 2. Training failures are turned into exit 1 by the commands
// that train.
#include <boost/program_options/errors.hpp>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "common/error.h"

namespace {

// The first line of a message, with control characters escaped.
std::string OneLine(const std::string& what) { return xpipe::EscapeControl(what.substr(0, what.find('\n'))); }

constexpr const char* kUsage =
    "usage: xpipe <command> [options]   (xpipe <command> --help for its options)\n"
    "\n"
    "commands:\n"
    "  sim       simulate schedules on a profile and cluster; compare them or sweep\n"
    "  schedule  print, convert or check a pipeline schedule\n"
    "  profile   import a PipeDream profile, compute a transformer's, or measure a model's\n"
    "  train     train a model with a pipeline schedule on LibTorch\n"
    "  validate  compare the simulator's prediction with a measured executor run\n";

}  // namespace

namespace xpipe::cli {

int Run(int argc, char** argv) {
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
    std::cerr << "xpipe: unknown command '" << OneLine(command) << "' (xpipe --help lists them)\n";
    return 2;
  } catch (const xpipe::InputError& e) {
    std::cerr << "xpipe " << command << ": " << OneLine(e.what()) << "\n";
  } catch (const boost::program_options::error& e) {
    std::cerr << "xpipe " << command << ": " << OneLine(e.what()) << "\n";
  } catch (const std::bad_alloc&) {
    std::cerr << "xpipe " << command << ": out of memory\n";
  } catch (const std::exception& e) {  // a library's error (LibTorch, JSON, the file system)
    std::cerr << "xpipe " << command << ": " << OneLine(e.what()) << "\n";
  } catch (...) {
    std::cerr << "xpipe " << command << ": failed (unknown error)\n";
  }
  return 2;
}

}  // namespace xpipe::cli
