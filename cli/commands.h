// Subcommands of the `xpipe` front end. Each takes the arguments after its
// name and returns the process exit status; user errors are thrown as
// InputError and turned into exit status 2 by main().
#pragma once

#include <string>
#include <vector>

namespace xpipe::cli {

using Args = std::vector<std::string>;

// The whole front end: argv as main gets it; returns the exit status and
// prints every error as one line (the one boundary for errors).
int Run(int argc, char** argv);

int SimCommand(const Args& args);
int ScheduleCommand(const Args& args);
int ProfileCommand(const Args& args);
int TrainCommand(const Args& args);         // needs LibTorch
int ValidateCommand(const Args& args);      // needs LibTorch
int ProfileModelCommand(const Args& args);  // xpipe profile --model: needs LibTorch

}  // namespace xpipe::cli
