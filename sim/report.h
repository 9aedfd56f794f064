// Human and machine reports of simulation results.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "sim/scenario.h"

namespace xpipe {

using NamedResult = std::pair<std::string, ScenarioResult>;

// One row per schedule: time per mini-batch, throughput and speed-up over the
// first synchronous schedule in the list, bubble, peak memory, versions,
// staleness and horizons per stage.
std::string CompareTable(const std::vector<NamedResult>& results);
// Per-stage detail of one run: layers, costs, memory, utilisation, links.
std::string StageTable(const ScenarioResult& r);
std::string ResultsJson(const std::vector<NamedResult>& results);

}  // namespace xpipe
