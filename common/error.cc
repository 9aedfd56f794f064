#include "common/error.h"

#include <cstdio>
#include <cstdlib>

namespace xpipe {

void CheckFailed(const char* file, int line, const char* expr, const std::string& msg) {
  std::fprintf(stderr, "%s:%d: invariant broken: %s (%s)\n", file, line, expr, msg.c_str());
  std::abort();
}

}  // namespace xpipe
