// Schedule files as PyTorch 2.x writes them (compute-only and lowered, with
// FSDP actions and OVERLAP_F_B), T inferred, U added, files PyTorch reads
// back, and a file's schedule repeated for training. The expected orders
// are written out by hand or come from the generators' own definitions.
#include "common/schedule_file.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "common/error.h"
#include "common/lowering.h"
#include "common/schedule_io.h"
#include "common/validate.h"
#include "tests/common/test_util.h"

namespace xpipe {
namespace {

std::string Row(const Schedule& s, int d) {
  std::string out;
  for (const Action& a : s.device_actions[d]) out += (out.empty() ? "" : " ") + ToText(a, s.micro_batches);
  return out;
}

TEST(PyTorchCsv, OverlapIsItsPassesAndFsdpActionsAreDropped) {
  std::vector<std::string> notes;
  const Schedule s = ParseCsv(
      "0UNSHARD,3UNSHARD,0F0,0F1,3F0,3B0,(3F1;0B0)OVERLAP_F_B,3B1,3REDUCE_GRAD,0B1,0REDUCE_GRAD,0RESHARD\n"
      "1F0,2F0,1F1,2B0,2F1,1B0,2B1,1B1\n",
      0, "v.csv", &notes);
  EXPECT_EQ(s.num_stages, 4);
  EXPECT_EQ(s.micro_batches, 2);  // no U: the whole file is one mini-batch
  EXPECT_EQ(s.mini_batches, 1);
  EXPECT_EQ(s.stage_device, (std::vector<int>{0, 1, 1, 0}));
  // U after each stage's last backward; 0F0 ... as global indices.
  EXPECT_EQ(Row(s, 0), "0F0 0F1 3F0 3B0 3F1 0B0 3B1 3U0 0B1 0U0");
  EXPECT_EQ(Row(s, 1), "1F0 2F0 1F1 2B0 2F1 1B0 2B1 2U0 1B1 1U0");
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_NE(notes[0].find("dropped 5 UNSHARD/RESHARD/REDUCE_GRAD"), std::string::npos) << notes[0];
  EXPECT_TRUE(Validate(s).ok);
}

TEST(PyTorchCsv, MicroBatchesSplitAFileWithoutUpdates) {
  // Four micro-batches as two mini-batches of two: U(b) after the last
  // backward of mini-batch b (including its send).
  const Schedule s = ParseCsv(
      "0F0,0SEND_F0,0F1,0SEND_F1,0RECV_B0,0B0,0RECV_B1,0B1,0F2,0SEND_F2,0F3,0SEND_F3,0RECV_B2,0B2,0RECV_B3,"
      "0B3\n"
      "1RECV_F0,1F0,1B0,1SEND_B0,1RECV_F1,1F1,1B1,1SEND_B1,1RECV_F2,1F2,1B2,1SEND_B2,1RECV_F3,1F3,1B3,1SEND_"
      "B3\n",
      2, "g.csv");
  EXPECT_EQ(s.mini_batches, 2);
  EXPECT_EQ(
      Row(s, 1),
      "1RECV_F0 1F0 1B0 1SEND_B0 1RECV_F1 1F1 1B1 1SEND_B1 1U0 1RECV_F2 1F2 1B2 1SEND_B2 1RECV_F3 1F3 1B3 "
      "1SEND_B3 1U1");
  EXPECT_TRUE(Validate(s).ok) << Validate(s).error;
}

TEST(PyTorchCsv, MicroBatchesAreInferredFromUpdatesAndCheckedAgainstTheFlag) {
  const std::string text = "0F0,0F1,0F2,0F3,0B0,0B1,0U0,0B2,0B3,0U1\n";
  EXPECT_EQ(ParseCsv(text, 0, "x.csv").micro_batches, 2);
  try {
    ParseCsv(text, 4, "x.csv");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(),
                 "--micro-batches: 4 per mini-batch, but x.csv holds 4 micro-batches in 2 "
                 "mini-batches (T = 2)");
  }
}

TEST(PyTorchCsv, AMissingForwardIsNamed) {
  // PyTorch 2.11's own Schedule1F1B IR for N = 2, T = 2: the last rank runs
  // forwards 1..T instead of 0..T-1 (PyTorch's validator refuses it too,
  // "Running Full Backward for stage 1, microbatch 0 without first running
  // Forward"). No stage has all its backwards, so no U hides that.
  const Schedule s = ParseCsv("0F0,0B0,0F1,0B1\n1F1,1B0,1F2,1B1\n", 0, "1f1b.csv");
  const ValidationResult r = Validate(s);
  EXPECT_EQ(r.error, "device 1 step 1 (1B0): backward before its forward");
}

TEST(PyTorchCsv, WrittenWithoutUpdatesOrLocalHandOffsOrIdleCellsWhenLowered) {
  const Schedule s = testing::Make(ScheduleKind::kInterleaved1F1B, 2, 2, 1, 2);
  const std::string plain = ToCsv(s);
  EXPECT_EQ(plain.find('U'), std::string::npos) << plain;
  EXPECT_NE(ToCsv(s, CsvFlavour::kXPipe).find("0U0"), std::string::npos);
  const std::string lowered = ToCsv(LowerCommunication(s));
  EXPECT_EQ(lowered.find(",,"), std::string::npos) << lowered;
  EXPECT_NE(lowered.find("SEND_F"), std::string::npos) << lowered;
  // Read back: the same order (U aside: each stage's comes after its own last
  // backward, where PyTorch reduces, not at the end of the device's row).
  const auto passes = [](Schedule x) {
    for (auto& row : x.device_actions)
      row.erase(std::remove_if(row.begin(), row.end(),
                               [](const Action& a) { return a.kind == ActionKind::kUpdate; }),
                row.end());
    return x.device_actions;
  };
  EXPECT_EQ(passes(ParseCsv(plain, 0, "i.csv")), passes(s));
}

TEST(PyTorchCsv, VShapeLoweredHasNoMessageBetweenStagesOfOneRank) {
  // Stages 1 and 2 share device 1: PyTorch posts nothing between them.
  const Schedule s = ParseCsv("0F0,0B0\n1F0,2F0,2B0,1B0\n", 0, "v.csv");
  const std::string lowered = ToCsv(LowerCommunication(s));
  EXPECT_EQ(lowered.find("2RECV_F0"), std::string::npos) << lowered;
  EXPECT_NE(lowered.find("1RECV_F0"), std::string::npos) << lowered;
}

TEST(ScheduleFile, LoweredInAnotherPostingOrderIsReordered) {
  // Device 1 receives the gradient before the second activation its peer
  // sent first: PyTorch matches by tag, xpipe's channel by posting order.
  const std::string path = ::testing::TempDir() + "reorder.csv";
  std::ofstream(path) << "0F0,0SEND_F0,0F1,0SEND_F1,0RECV_B0,0B0,0RECV_B1,0B1\n"
                         "1RECV_F0,1F0,1B0,1SEND_B0,1RECV_F1,1F1,1B1,1SEND_B1\n"
                         "\n";
  ScheduleFile f = ReadScheduleFile(path, 0);
  EXPECT_TRUE(Validate(f.schedule).ok);
  // Already in posting order: kept, with no note about it.
  for (const auto& n : f.notes) EXPECT_EQ(n.find("reordered"), std::string::npos) << n;
  std::ofstream(path) << "0F0,0SEND_F0,0F1,0SEND_F1,0RECV_B0,0B0,0RECV_B1,0B1\n"
                         "1RECV_F0,1RECV_F1,1F0,1B0,1SEND_B0,1F1,1B1,1SEND_B1\n";
  f = ReadScheduleFile(path, 0);
  EXPECT_TRUE(Validate(f.schedule).ok);
  std::ofstream(path) << "0F0,0SEND_F0,0F1,0SEND_F1,0RECV_B1,0B1,0RECV_B0,0B0\n"
                         "1RECV_F0,1F0,1B0,1SEND_B0,1RECV_F1,1F1,1B1,1SEND_B1\n";
  ASSERT_FALSE(Validate(ParseCsv(ReadFile(path), 0, path)).ok);  // as written: B1's RECV posted first
  f = ReadScheduleFile(path, 0);
  EXPECT_TRUE(Validate(f.schedule).ok) << Validate(f.schedule).error;
  ASSERT_FALSE(f.notes.empty());
  EXPECT_NE(f.notes.back().find("SEND/RECV reordered"), std::string::npos) << f.notes.back();
  // The compute order is the file's.
  EXPECT_EQ(Row(StripCommunication(f.schedule), 0), "0F0 0F1 0B1 0B0 0U0");
  std::remove(path.c_str());
}

TEST(ScheduleFile, GPipeBackwardOrderFollowsPyTorchOnRequest) {
  ScheduleParams p;
  p.kind = ScheduleKind::kGPipe;
  p.devices = 2;
  p.micro_batches = 3;
  EXPECT_EQ(Row(Generate(p), 1), "1F0 1F1 1F2 1B2 1B1 1B0 1U0");
  p.gpipe_backward_forward_order = true;
  EXPECT_EQ(Row(Generate(p), 1), "1F0 1F1 1F2 1B0 1B1 1B2 1U0");
}

// Synchronous schedules flush after each mini-batch, so K of them are one
// mini-batch's order K times: a file of one mini-batch, repeated and
// annotated, is the generated schedule.
TEST(ScheduleFile, RepeatingOneFlushedMiniBatchIsTheGeneratedSchedule) {
  for (ScheduleKind k : {ScheduleKind::kGPipe, ScheduleKind::kOneFOneBFlush, ScheduleKind::kZeroBubbleH1}) {
    Schedule one = testing::Make(k, 3, 4, 1);
    one.kind = ScheduleKind::kCustom;
    Schedule repeated = RepeatSchedule(one, 5);
    AnnotateWeights(repeated, PredictionTarget::kRoundTrip);
    Schedule generated = testing::Make(k, 3, 4, 5);
    generated.kind = ScheduleKind::kCustom;
    EXPECT_EQ(repeated, generated) << ScheduleName(k);
  }
}

TEST(ScheduleFile, PolicyAnnotatesAFileAsTheNamedScheduleWouldBe) {
  // XPipe's own order written as xpipe's CSV and read with --policy xpipe
  // gets the generated schedule's versions and horizons.
  const Schedule x = testing::Make(ScheduleKind::kXPipe, 4, 2, 6);
  const std::string path = ::testing::TempDir() + "xpipe.csv";
  std::ofstream(path) << ToCsv(x, CsvFlavour::kXPipe);
  ScheduleFileOptions o;
  o.policy = "xpipe";
  EXPECT_EQ(LoadScheduleFile(path, o).schedule, x);
  o.policy = "pipedream-2bw";  // T = 2 < N - 1: two buffers do not suffice
  try {
    LoadScheduleFile(path, o);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--policy: pipedream-2bw keeps two versions"), std::string::npos)
        << e.what();
  }
  std::remove(path.c_str());
}

}  // namespace
}  // namespace xpipe
