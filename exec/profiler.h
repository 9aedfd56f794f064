// Profiler: measures a model's layers on this machine (forward and backward
// time of one micro-batch, output and parameter bytes) and returns them as an
// xpipe Profile, the format the simulator and the partitioner read. This is
// how `xpipe train` balances its stages (`--partition auto`) and how
// `--profile-out` hands a measured model to `xpipe sim`.
#pragma once

#include <torch/types.h>

#include <string>

#include "common/profile.h"
#include "exec/model.h"

namespace xpipe::exec {

// Times each layer on `sample` (a micro-batch on `device`), best of `repeats`
// after one warm-up; single-threaded as a stage thread runs.
Profile ProfileModel(const std::string& name, const Model& model, const torch::Tensor& sample,
                     int repeats = 5);

// The same profile with costs counted instead of timed: each layer's
// multiply-accumulates as its forward time (backward twice that). Deterministic
// and machine-independent, for partitions that must not vary between runs.
Profile CountedProfile(const std::string& name, const Model& model, const torch::Tensor& sample);

// Layers per stage minimising the slowest stage of `profile` (transfers in
// memory cost nothing); REQUIRES stages <= model layers.
std::vector<int> BalancedPartition(const Profile& profile, int stages);

}  // namespace xpipe::exec
