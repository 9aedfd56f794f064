// Validator: checks that a schedule is complete, well ordered and runs to the
// end, and on failure says where, with a device x step grid of the
// neighbourhood and the offending cell in [brackets].
//
// Checks: stage/device map; every action in range and on its stage's device;
// per stage exactly one F per micro-batch, one B or one I + W, one U per
// mini-batch; F before its B/I, I before its W, U(b) after every backward pass
// of mini-batch b on that stage; SEND/RECV pairs match in posting order per
// ordered device pair (a channel: NCCL and FIFOs have no tags); and a dry run that detects deadlock
// (common/dry_run.h).
#pragma once

#include <cstddef>
#include <string>

#include "common/schedule.h"

namespace xpipe {

struct ValidationResult {
  bool ok = true;
  std::string error;  // one line: what is wrong and where ("device 1 step 4 (1B0): ...")
  std::string grid;   // multi-line picture of the neighbourhood, bad cell in [ ]
  int device = 0;
  std::size_t step = 0;
};

ValidationResult Validate(const Schedule& s);

// The device x step picture used in errors: columns first_step.. of each
// device's list, cells in the text form, `mark` (device, step) bracketed.
std::string RenderGrid(const Schedule& s, std::size_t first_step, std::size_t num_steps, int mark_device,
                       std::size_t mark_step);

}  // namespace xpipe
