// Chrome / Perfetto trace of a simulation (the JSON "traceEvents" format):
// one track per device's compute and per link, actions named in the IR's
// text form, memory per stage as counter events. Times in microseconds.
#pragma once

#include <string>

#include "common/schedule.h"
#include "sim/simulator.h"

namespace xpipe {

// REQUIRES: r was produced with record_trace.
std::string ToChromeTrace(const Schedule& s, const SimResult& r);

}  // namespace xpipe
