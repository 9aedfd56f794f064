// A schedule read from a file and made ready to run: what `xpipe schedule
// --check`, `xpipe sim --schedule-file` and `xpipe train --schedule-file`
// share, so a file's schedule gets the same checks and the same annotation
// pass (versions, horizons, weight switches) as a generated one.
#pragma once

#include <string>
#include <vector>

#include "common/schedule.h"

namespace xpipe {

struct ScheduleFileOptions {
  int micro_batches = 0;  // T; 0 = inferred from the file
  // The schedule whose weight semantics the passes get ("xpipe": bellwether
  // prediction, "pipedream": stashing, "gpipe": the live weights, ...);
  // empty = the JSON's kind, else the live weights.
  std::string policy;
  PredictionTarget target = PredictionTarget::kRoundTrip;
  PredictionBase prediction_base = PredictionBase::kLive;
  WeightSwitch backward_weights = WeightSwitch::kSwap;
};

struct ScheduleFile {
  Schedule schedule;
  std::vector<std::string> notes;  // what reading dropped, inferred or re-derived, one line each
};

// Parses a file: JSON when the name ends in .json or the text starts with
// '{', else CSV (schedule_io.h). A lowered file whose SEND/RECV are exactly
// the messages xpipe's lowering posts, in another order (PyTorch matches by
// tag, xpipe's channels by posting order), gets xpipe's order, with a note.
// Throws InputError.
ScheduleFile ReadScheduleFile(const std::string& path, int micro_batches);

// Validates (InputError naming the file, with the validator's line), sets the
// weight policy and annotates every pass. Throws InputError.
void PrepareSchedule(ScheduleFile& file, const std::string& path, const ScheduleFileOptions& options);

// ReadScheduleFile, then PrepareSchedule.
ScheduleFile LoadScheduleFile(const std::string& path, const ScheduleFileOptions& options);

// The schedule's order `times` times back to back on each device, mini-batch
// numbers running on (what a training run does with a file's schedule).
// Weight fields are cleared: annotate the result again, since passes at the
// seams may see other versions than in one run.
Schedule RepeatSchedule(const Schedule& s, int times);

}  // namespace xpipe
