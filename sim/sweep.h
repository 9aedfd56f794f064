// What-if sweeps: the cartesian product of values along named axes, each
// point simulated on its own (all cores), one CSV row per point.
//
// Axes: schedule, stages, micro-batches, mini-batches, batch-size,
// bandwidth (GB/s), latency (us), speed (every device), straggler (speed of
// the last device), chunks, data-parallel (replicas). A point that cannot be built (e.g. interleaved
// with T % N != 0) gets its error in the `error` column, not an abort.
#pragma once

#include <string>
#include <vector>

#include "sim/scenario.h"

namespace xpipe {

struct SweepAxis {
  std::string name;
  std::vector<std::string> values;
};

// Parses "stages=2,4,8". Throws InputError naming the flag.
SweepAxis ParseSweepAxis(const std::string& spec);

// Runs every point on `threads` threads (0 = all cores) and returns CSV text
// with a header; rows are in the order of the product (last axis fastest).
std::string RunSweep(const Scenario& base, const std::vector<SweepAxis>& axes, int threads = 0);

}  // namespace xpipe
