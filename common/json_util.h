// Reading JSON input: one place that turns a parse failure into an
// InputError naming the file.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/error.h"

namespace xpipe {

// Throws InputError(where, "not valid JSON (...)").
inline nlohmann::json ParseJsonText(const std::string& text, const std::string& where) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(where, std::string("not valid JSON (") + e.what() + ")");
  }
}

}  // namespace xpipe
