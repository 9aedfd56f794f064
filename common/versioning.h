// Versioning pass: which weight version every pass sees, its staleness and its
// prediction horizon under each target of ../shared/docs/schedules.md, and the
// annotation of each pass with the weights it must use.
//
// All of it is a pure function of each stage's action order (and, for the
// round-trip horizon, of the unit-step grid), never of real timing. The
// executor reads the annotations; it never re-derives them.
#pragma once

#include <cstdint>
#include <vector>

#include "common/schedule.h"

namespace xpipe {

// Facts about one compute pass (F, B, I or W). Aligned with device_actions;
// entries for U and communication actions are all zero.
struct PassInfo {
  int version_seen = 0;  // v_k when the pass starts: U actions of its stage before it
  int staleness = 0;     // mini_batch - version_seen
  int round_trip = 0;    // exact round-trip horizon on the unit-step grid
  int closed_form = 0;   // XPipe paper's closed form (F: s_f, B/I/W: s_b)
  int synchronous = 0;   // b - v_k, never negative
  int own_backward = 0;  // F only: U actions between it and its own B/I
};

struct VersionAnalysis {
  std::vector<std::vector<PassInfo>> passes;  // same shape as device_actions
};

// REQUIRES: s passes Validate() (complete, dead-lock free). Lowered schedules
// are accepted; their comm actions get zero entries.
VersionAnalysis AnalyzeVersions(const Schedule& s);

// Paper closed forms for stage k of N with T micro-batches (round half up).
int ClosedFormForwardHorizon(int N, int T, int k);
int ClosedFormBackwardHorizon(int N, int T, int k);

// Fills weights / version / horizon / reuse_prediction of every F, B, I, W
// according to PolicyOf(s.kind); `target` chooses the horizon for predicting
// schedules (XPipe, SpecTrain; PipeOptim always predicts its own backward).
// Where a backward pass's weights differ from its forward's, both get
// weight_switch = `strategy` (and the W of a split backward its I's).
// `base`: what XPipe's passes after the bellwether predict from.
// REQUIRES: strategy != WeightSwitch::kNone.
void AnnotateWeights(Schedule& s, PredictionTarget target, WeightSwitch strategy = WeightSwitch::kSwap,
                     PredictionBase base = PredictionBase::kLive);

// The weights a compute pass reads, as (version, horizon): two passes with the
// same key read the same numbers (a prediction 0 steps ahead is W_v itself).
std::pair<int, int> WeightKey(const Action& a);

// Per stage, the most weight versions that must be held at once: the live
// version plus every replaced version a later pass still reads (stashes,
// buffers). Reads the annotations. REQUIRES: annotated schedule.
std::vector<int> VersionsKept(const Schedule& s);
// Weight sets each action copies or computes (aligned with device_actions), as
// the executor does: a prediction is made once per distinct (version, horizon)
// on a stage, by the first pass that reads it; a swap copies twice (the
// forward's weights into a private set, the backward's into it); an update
// copies the version it replaces when a later pass on its stage still reads
// it (stashing, buffering, or a graph a later backward will use). Live
// weights read at their own version are not copied. REQUIRES: annotated.
std::vector<std::vector<std::uint8_t>> WeightCopies(const Schedule& s);
// The same work by kind: `predictions` made and plain `copies` (swaps and
// copies on write), which cost differently; copies + predictions == WeightCopies.
struct WeightWork {
  std::vector<std::vector<std::uint8_t>> copies, predictions;
};
WeightWork WeightWorkOf(const Schedule& s);

// Per stage, scratch copies of predicted weights held at once (0, 1 or 2).
std::vector<int> PredictionScratch(const Schedule& s);

// Steady-state facts for reports: the values of the bellwether (micro-batch 0)
// of the middle mini-batch, per stage.
struct StageVersionSummary {
  int forward_staleness = 0;
  int backward_staleness = 0;
  int forward_horizon = 0;  // as annotated (0 if the schedule does not predict)
  int backward_horizon = 0;
};
std::vector<StageVersionSummary> SteadyStateSummary(const Schedule& s, const VersionAnalysis& v);

}  // namespace xpipe
