#include "common/error.h"

#include <cstdio>
#include <cstdlib>

namespace xpipe {

std::string EscapeControl(std::string_view text, std::size_t max) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : text.substr(0, max)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  if (text.size() > max) out += "...";
  return out;
}

void CheckFailed(const char* file, int line, const char* expr, const std::string& msg) {
  std::fprintf(stderr, "%s:%d: invariant broken: %s (%s)\n", file, line, expr, msg.c_str());
  std::abort();
}

}  // namespace xpipe
