#include "cli/options.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "common/error.h"

namespace xpipe::cli {

bool Parse(const Args& args, const po::options_description& desc, po::variables_map& vm,
           const std::string& usage, const po::positional_options_description* positional) {
  // Boost substitutes these into its messages until none is left: an
  // argument that contains one would never finish its error message.
  for (const std::string& a : args)
    for (const char* token :
         {"%value%", "%canonical_option%", "%option%", "%prefix_option%", "%original_token%"})
      if (a.find(token) != std::string::npos)
        throw InputError("arguments", std::string("may not contain '") + token + "'");
  po::command_line_parser parser(args);
  parser.options(desc);
  if (positional != nullptr) parser.positional(*positional);
  po::store(parser.run(), vm);
  if (vm.count("help")) {
    std::cout << usage << "\n" << desc;
    return false;
  }
  po::notify(vm);
  return true;
}

double InRange(const std::string& flag, double x, double lo, double hi) {
  if (!std::isfinite(x) || x < lo || x > hi) {
    std::ostringstream range;
    range << "must be between " << lo << " and " << hi;
    throw InputError(flag, range.str());
  }
  return x;
}

std::vector<std::string> StringList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::vector<double> DoubleList(const std::string& flag, const std::string& text) {
  std::vector<double> out;
  for (const std::string& s : StringList(text)) {
    char* end = nullptr;
    const double x = std::strtod(s.c_str(), &end);
    if (end == s.c_str() || *end != '\0' || !std::isfinite(x))
      throw InputError(flag, "bad number '" + s.substr(0, 32) + "'");
    out.push_back(x);
  }
  return out;
}

std::vector<int> IntList(const std::string& flag, const std::string& text) {
  std::vector<int> out;
  for (double x : DoubleList(flag, text)) {
    if (!(x >= INT32_MIN && x <= INT32_MAX) || x != std::floor(x))
      throw InputError(flag, "expected whole numbers");
    out.push_back(static_cast<int>(x));
  }
  return out;
}

}  // namespace xpipe::cli
