// Text forms of a schedule.
//
//  - CSV in PyTorch pipelining's convention (_dump_csv/_load_csv): one row per
//    device (rank), one action per cell in the text form ("0F3", "1SEND_B2"),
//    an empty cell is an idle step. Written with the idle steps of the
//    unit-step grid; reading skips empty cells, so the order round-trips.
//    PyTorch has no mini-batches or updates: micro-batch numbers are global
//    (g = b*T + j) and "kU<b>" is xpipe's extension for the optimizer step.
//  - JSON: the header plus every field of every action (weights too).
//  - Grid: the unit-step picture of ../shared/docs/schedules.md
//    ("F1a B1b*": mini-batch from 1, micro-batch as a letter, * = U follows).
#pragma once

#include <string>

#include "common/schedule.h"

namespace xpipe {

std::string ToCsv(const Schedule& s);
// `where` names the file in errors. micro_batches = T for splitting the global
// index; mini_batches and stages are inferred from the actions. Throws InputError.
Schedule ParseCsv(const std::string& text, int micro_batches, const std::string& where);

std::string ToJson(const Schedule& s);
Schedule ParseJson(const std::string& text, const std::string& where);

std::string ToGrid(const Schedule& s);

// Reads a whole file; throws InputError naming it when unreadable.
std::string ReadFile(const std::string& path);
// Writes atomically (temporary file, then rename). Throws InputError.
// Throws InputError(flag, ...) unless a file can be written at `path` (tried
// with its temporary name, which is removed): for outputs a long run writes
// at its end, so a bad path fails before the run, not after it.
void CheckWritable(const std::string& path, const std::string& flag);
void WriteFileAtomic(const std::string& path, const std::string& contents);

}  // namespace xpipe
