#include "sim/baseline.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_util.h"

namespace xpipe {
namespace {

using nlohmann::json;

// The figures compared, from one schedule's results: throughput (higher is
// better), the largest stage's peak memory and the largest staleness (lower).
struct Figures {
  double samples_per_sec = 0, peak_memory_bytes = 0, staleness = 0;
};

const json& Field(const json& o, const char* name, const std::string& at) {
  if (!o.is_object() || !o.contains(name)) throw InputError(at, std::string("missing field '") + name + "'");
  return o.at(name);
}

double Number(const json& v, const std::string& at) {
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0)
    throw InputError(at, "expected a finite number >= 0");
  return v.get<double>();
}

Figures Read(const json& o, const std::string& at) {
  Figures f;
  f.samples_per_sec = Number(Field(o, "samples_per_sec", at), at + ".samples_per_sec");
  const json& memory = Field(o, "peak_memory_bytes", at);
  if (!memory.is_array()) throw InputError(at + ".peak_memory_bytes", "expected an array");
  for (const json& m : memory)
    f.peak_memory_bytes = std::max(f.peak_memory_bytes, Number(m, at + ".peak_memory_bytes"));
  const json& steady = Field(o, "steady_state", at);
  if (!steady.is_array()) throw InputError(at + ".steady_state", "expected an array");
  for (std::size_t k = 0; k < steady.size(); ++k) {
    const std::string sat = at + ".steady_state[" + std::to_string(k) + "]";
    f.staleness = std::max({f.staleness, Number(Field(steady[k], "forward_staleness", sat), sat),
                            Number(Field(steady[k], "backward_staleness", sat), sat)});
  }
  return f;
}

}  // namespace

double ParseTolerance(const std::string& text) {
  std::string t = text;
  const bool percent = !t.empty() && t.back() == '%';
  if (percent) t.pop_back();
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(t, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (t.empty() || used != t.size() || !std::isfinite(v))
    throw InputError("--tolerance", "expected a fraction (0.02) or a percentage (2%), got '" + text + "'");
  if (percent) v /= 100;
  if (v < 0 || v >= 1) throw InputError("--tolerance", "must be at least 0 and below 100%");
  return v;
}

bool BaselineReport::ok() const {
  return missing.empty() &&
         std::none_of(rows.begin(), rows.end(), [](const BaselineRow& r) { return r.worse; });
}

std::string BaselineReport::Table() const {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-28s %-18s %16s %16s %8s\n", "schedule", "figure", "baseline", "now",
                "ratio");
  out += line;
  for (const BaselineRow& r : rows) {
    const double ratio = r.baseline > 0 ? r.now / r.baseline : (r.now > 0 ? INFINITY : 1.0);
    std::snprintf(line, sizeof line, "%-28s %-18s %16.6g %16.6g %8.4f%s\n", r.schedule.c_str(),
                  r.figure.c_str(), r.baseline, r.now, ratio, r.worse ? "  WORSE" : "");
    out += line;
  }
  for (const std::string& m : missing) out += m + ": in the baseline, not in this run  WORSE\n";
  return out;
}

BaselineReport CompareWithBaseline(const std::vector<NamedResult>& results, const std::string& baseline_text,
                                   const std::string& where, double tolerance) {
  const json base = ParseJsonText(baseline_text, where);
  if (!base.is_array()) throw InputError(where, "expected the JSON array `xpipe sim --json` prints");
  const json now = json::parse(ResultsJson(results));
  BaselineReport report;
  for (std::size_t i = 0; i < base.size(); ++i) {
    const std::string at = where + ": [" + std::to_string(i) + "]";
    const json& name = Field(base[i], "schedule", at);
    if (!name.is_string()) throw InputError(at + ".schedule", "expected a string");
    const Figures b = Read(base[i], at);
    const auto it =
        std::find_if(now.begin(), now.end(), [&](const json& o) { return o.at("schedule") == name; });
    if (it == now.end()) {
      report.missing.push_back(name.get<std::string>());
      continue;
    }
    const Figures n = Read(*it, "this run");
    const std::string s = name.get<std::string>();
    report.rows.push_back({s, "samples/s", b.samples_per_sec, n.samples_per_sec,
                           n.samples_per_sec < b.samples_per_sec * (1 - tolerance)});
    report.rows.push_back({s, "peak memory (B)", b.peak_memory_bytes, n.peak_memory_bytes,
                           n.peak_memory_bytes > b.peak_memory_bytes * (1 + tolerance)});
    report.rows.push_back(
        {s, "staleness", b.staleness, n.staleness, n.staleness > b.staleness * (1 + tolerance)});
  }
  return report;
}

}  // namespace xpipe
