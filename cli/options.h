// Helpers shared by the subcommands for parsing flags.
#pragma once

#include <boost/program_options.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace xpipe::cli {

namespace po = boost::program_options;

// Parses args against desc (positional names optional). Returns false and
// prints usage when --help was given.
bool Parse(const Args& args, const po::options_description& desc, po::variables_map& vm,
           const std::string& usage, const po::positional_options_description* positional = nullptr);

// "1,2,3" -> {1, 2, 3}; throws InputError naming the flag.
std::vector<int> IntList(const std::string& flag, const std::string& text);
std::vector<double> DoubleList(const std::string& flag, const std::string& text);
std::vector<std::string> StringList(const std::string& text);
// x itself when finite and in [lo, hi]; else InputError naming the flag.
double InRange(const std::string& flag, double x, double lo, double hi);

// --predict-from, as sim, schedule and train describe it.
inline constexpr const char* kPredictFromHelp =
    "what XPipe's passes after its bellwether predict from: live (the live weights, toward the "
    "bellwether's target) or bellwether (its prediction, made once per mini-batch: XPipe's paper)";

}  // namespace xpipe::cli
