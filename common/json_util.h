// Reading JSON input: one checked accessor for every JSON file xpipe reads
// (profiles, clusters, schedules). A parse failure, a number out of range, a
// missing or mistyped field, an unknown key (with the nearest known one
// named) or a value outside what the field can mean is an InputError naming
// the file and the field's path.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace xpipe {

// Throws InputError(where, "not valid JSON (...)"), also for numbers that do
// not fit a double (1e400).
inline nlohmann::json ParseJsonText(const std::string& text, const std::string& where) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(where, std::string("not valid JSON (") + e.what() + ")");
  }
}

// Edit distance, for "did you mean" (short keys only).
inline std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// A JSON object being read, with the path that names it in errors.
class JsonObject {
 public:
  // REQUIRES nothing; throws InputError when `j` is not an object or has a
  // key outside `known`.
  JsonObject(const nlohmann::json& j, std::string where, std::initializer_list<std::string_view> known)
      : j_(j), where_(std::move(where)) {
    if (!j_.is_object()) throw InputError(where_, "expected an object");
    for (const auto& [key, value] : j_.items()) {
      std::string_view nearest;
      std::size_t best = 0;
      bool found = false;
      for (std::string_view k : known) {
        if (k == key) found = true;
        const std::size_t d = EditDistance(key, k);
        if (nearest.empty() || d < best) nearest = k, best = d;
      }
      if (found) continue;
      std::string hint = best <= std::max<std::size_t>(2, key.size() / 3) && !nearest.empty()
                             ? " (did you mean '" + std::string(nearest) + "'?)"
                             : "";
      throw InputError(where_, "unknown field '" + Printable(key) + "'" + hint);
    }
  }

  const std::string& where() const { return where_; }
  std::string At(std::string_view field) const { return where_ + "." + std::string(field); }
  bool Has(const char* field) const { return j_.contains(field); }
  const nlohmann::json& Get(const char* field) const {
    if (!j_.contains(field)) throw InputError(where_, std::string("missing field '") + field + "'");
    return j_.at(field);
  }
  // A finite number in [lo, hi].
  double Number(const char* field, double lo, double hi) const {
    const nlohmann::json& v = Get(field);
    if (!v.is_number()) throw InputError(At(field), "expected a number");
    const double x = v.get<double>();
    if (!std::isfinite(x) || x < lo || x > hi)
      throw InputError(At(field), x < lo && lo == 0 ? "must not be negative"
                                                    : "must be between " + Short(lo) + " and " + Short(hi));
    return x;
  }
  double Number(const char* field, double lo, double hi, double fallback) const {
    return Has(field) ? Number(field, lo, hi) : fallback;
  }
  // An integer in [lo, hi].
  long long Integer(const char* field, long long lo, long long hi) const {
    const double x = Number(field, static_cast<double>(lo), static_cast<double>(hi));
    if (x != std::floor(x)) throw InputError(At(field), "expected a whole number");
    return static_cast<long long>(x);
  }
  std::string Text(const char* field) const {
    const nlohmann::json& v = Get(field);
    if (!v.is_string()) throw InputError(At(field), "expected a string");
    return v.get<std::string>();
  }
  std::string Text(const char* field, const std::string& fallback) const {
    return Has(field) ? Text(field) : fallback;
  }
  bool Bool(const char* field, bool fallback) const {
    if (!Has(field)) return fallback;
    const nlohmann::json& v = Get(field);
    if (!v.is_boolean()) throw InputError(At(field), "expected true or false");
    return v.get<bool>();
  }
  const nlohmann::json& Array(const char* field) const {
    const nlohmann::json& v = Get(field);
    if (!v.is_array()) throw InputError(At(field), "expected an array");
    return v;
  }

  // Input echoed in a message: one line, at most 64 bytes.
  static std::string Printable(std::string_view s) { return EscapeControl(s, 64); }

 private:
  static std::string Short(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", x);
    return buf;
  }
  const nlohmann::json& j_;
  std::string where_;
};

}  // namespace xpipe
