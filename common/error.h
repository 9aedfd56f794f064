// Error conventions.
//
// InputError is the one type for bad input from a user: a profile, a schedule
// file, a flag. Its message names where (file, flag or field) and what was
// expected; the command line prints it as one line on stderr and exits 2.
// Broken invariants are XPIPE_CHECK failures: they print file and line and
// abort, because they are bugs, not input problems.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace xpipe {

class InputError : public std::runtime_error {
 public:
  // `where` names the file, flag or field; `what` says what was wrong.
  InputError(const std::string& where, const std::string& what) : std::runtime_error(where + ": " + what) {}
};

// `text` made safe to print inside a one-line message: control characters
// (newlines, escapes) as \xNN, and cut after `max` bytes with "...".
std::string EscapeControl(std::string_view text, std::size_t max = 2000);

[[noreturn]] void CheckFailed(const char* file, int line, const char* expr, const std::string& msg);

}  // namespace xpipe

#define XPIPE_CHECK(cond, msg)                                           \
  do {                                                                   \
    if (!(cond)) ::xpipe::CheckFailed(__FILE__, __LINE__, #cond, (msg)); \
  } while (0)
