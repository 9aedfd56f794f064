// Regression checks against a saved simulation: `xpipe sim ... --json >
// baseline.json` once, then `xpipe sim ... --baseline baseline.json
// --tolerance 2%` in CI compares every schedule's throughput, peak memory
// and staleness with it and fails when any is worse by more than the
// tolerance.
#pragma once

#include <string>
#include <vector>

#include "sim/report.h"

namespace xpipe {

struct BaselineRow {
  std::string schedule, figure;
  double baseline = 0, now = 0;
  bool worse = false;
};

struct BaselineReport {
  std::vector<BaselineRow> rows;
  std::vector<std::string> missing;  // schedules of the baseline this run does not have
  bool ok() const;
  std::string Table() const;  // one row per figure, ratio now / baseline, WORSE marked
};

// `baseline_text` is what `xpipe sim --json` printed; `where` names it in
// errors. tolerance is a fraction (0.02 = 2 %). Throws InputError for a
// baseline that is not such a file.
BaselineReport CompareWithBaseline(const std::vector<NamedResult>& results, const std::string& baseline_text,
                                   const std::string& where, double tolerance);

// "2%" or "0.02" -> 0.02. Throws InputError naming --tolerance.
double ParseTolerance(const std::string& text);

}  // namespace xpipe
