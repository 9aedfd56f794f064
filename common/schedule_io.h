// Text forms of a schedule.
//
//  - CSV in PyTorch pipelining's convention (_dump_csv/_load_csv): one row per
//    device (rank), one action per cell in the text form ("0F3", "1SEND_B2"),
//    an empty cell is an idle step. PyTorch has no mini-batches or updates:
//    micro-batch numbers are global (g = b*T + j). Written (CsvFlavour::
//    kPyTorch) so that PyTorch's _load_csv reads it: no U cells; the idle
//    steps of the unit-step grid in compute-only files, none in lowered ones
//    (PyTorch's compute_comms loader refuses empty cells). xpipe's flavour
//    (kXPipe) adds "kU<b>", the optimizer step of mini-batch b.
//    Read as PyTorch 2.x writes it, compute-only or lowered: UNSHARD, RESHARD
//    and REDUCE_GRAD (FSDP, data parallelism) are dropped with a note,
//    "(0F3;3B1)OVERLAP_F_B" is its passes in order; T and the stage count are
//    inferred; a file without U gets one after each stage's last backward of
//    each mini-batch.
//  - JSON: the header plus every field of every action (weights too).
//  - Grid: the unit-step picture of ../shared/docs/schedules.md
//    ("F1a B1b*": mini-batch from 1, micro-batch as a letter, * = U follows).
#pragma once

#include <string>
#include <vector>

#include "common/schedule.h"

namespace xpipe {

enum class CsvFlavour { kPyTorch, kXPipe };
std::string ToCsv(const Schedule& s, CsvFlavour flavour = CsvFlavour::kPyTorch);
// `where` names the file in errors. micro_batches = T for splitting the global
// index, 0 to infer it: from the U cells (T = micro-batches / mini-batches),
// else the whole file is one mini-batch. Stages and devices come from the
// actions. What was dropped or inferred goes to `notes`, one line each.
// Throws InputError.
Schedule ParseCsv(const std::string& text, int micro_batches, const std::string& where,
                  std::vector<std::string>* notes = nullptr);

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
