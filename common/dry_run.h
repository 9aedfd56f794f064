// DryRun: runs a schedule on a virtual clock with a fixed cost per action and
// returns every action's start and end time, or the cells where it deadlocks.
//
// This is the one statement of what an action waits for:
//   - the previous action on its device (each device runs its list in order);
//   - F(s, g) on the forward output of F(s-1, g); B/I(s, g) on the backward
//     output of B/I(s+1, g). In a lowered schedule (with SEND/RECV actions)
//     RECV_F(s, g) waits for SEND_F(s-1, g) instead and compute waits on
//     nothing remote; sends never block (buffered channels).
// With unit costs (F = B = I = W = 1, U = 0, free transfers) this is the
// "unit-step grid" of ../shared/docs/schedules.md.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "common/schedule.h"
#include "common/units.h"

namespace xpipe {

struct DryRunResult {
  // Same shape as Schedule::device_actions (empty unless record_times);
  // valid only where completed.
  std::vector<std::vector<TimeNs>> start;
  std::vector<std::vector<TimeNs>> end;
  // Deadlock: for each device that could not finish, the index of the action
  // it is stuck on. Empty when the run completed.
  std::vector<std::pair<int, std::size_t>> stuck;
  TimeNs makespan_ns = 0;  // end of the last action that ran
  bool ok() const { return stuck.empty(); }
  TimeNs Makespan() const { return makespan_ns; }
};

using CostFn = std::function<TimeNs(int device, const Action&)>;
// Extra delay on a cross-device dependency (producer action, from, to).
using TransferFn = std::function<TimeNs(const Action& producer, int from_device, int to_device)>;

// Cost 1 for F, B, I, W; 0 for U and communication actions.
TimeNs UnitCost(int device, const Action& a);

// REQUIRES: s.stage_device and s.device_actions consistent (see Validate); an
// action whose stage or micro-batch is out of range is reported as stuck.
// record_times = false keeps only the verdict and the makespan (the
// validator's use: no per-action memory).
DryRunResult DryRun(const Schedule& s, const CostFn& cost = UnitCost, const TransferFn& transfer = nullptr,
                    bool record_times = true);

}  // namespace xpipe
