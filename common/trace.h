// Action trace: when each action ran (or was modelled to run), in one format
// for the simulator and the executor, written as a Chrome / Perfetto trace
// (the JSON "traceEvents" format): one track per device's compute and per
// link, actions named in the IR's text form, memory as counter events.
#pragma once

#include <string>
#include <vector>

#include "common/schedule.h"
#include "common/units.h"

namespace xpipe {

struct ActionSpan {
  std::int32_t track = 0;  // device d, or num_devices + i for transfer_tracks[i]
  TimeNs start_ns = 0, end_ns = 0;
  Action action;
  Bytes bytes = 0;  // transfers only
};

struct MemorySample {
  std::int32_t stage = 0;
  TimeNs time_ns = 0;
  Bytes bytes = 0;
};

struct Trace {
  std::vector<ActionSpan> spans;
  // Names of the transfer tracks. Spans on one track never overlap (Perfetto
  // shows only properly nested slices), so the simulator gives each channel
  // (sender -> receiver) a track: "link d0->d1", or "bus d0->d1".
  std::vector<std::string> transfer_tracks;
  std::vector<MemorySample> memory;
};

// Times in the file are microseconds.
std::string ToChromeTrace(const Schedule& s, const Trace& t);

// Several timelines of one schedule in one file (say, predicted and
// measured): each named section gets its own processes ("NAME compute",
// "NAME links", "NAME memory"), so they line up one above the other.
struct TraceSection {
  std::string name;
  const Trace* trace = nullptr;
};
std::string ToChromeTrace(const Schedule& s, const std::vector<TraceSection>& sections);

// Time per mini-batch in steady state, from the times stage 0 finished its
// updates (one per mini-batch, in order): the mean interval over the middle
// half of the mini-batches when there are at least 4, else makespan / M.
// One rule for the simulator's prediction and the executor's measurement.
TimeNs SteadyMiniBatchNs(const std::vector<TimeNs>& stage0_updates_ns, int mini_batches, TimeNs makespan_ns);

}  // namespace xpipe
