// Hand-broken schedules are rejected with the grid pointing at the right
// cell; hand-written PyTorch-format CSVs load, validate and round-trip.
#include "common/validate.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "common/lowering.h"
#include "common/schedule_io.h"
#include "tests/common/test_util.h"

namespace xpipe {
namespace {

using testing::Make;

Schedule Csv(const std::string& text, int T) { return ParseCsv(text, T, "test.csv"); }

void ExpectRejectedAt(const Schedule& s, int device, std::size_t step, const std::string& words) {
  const ValidationResult r = Validate(s);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.device, device) << r.error << "\n" << r.grid;
  EXPECT_EQ(r.step, step) << r.error << "\n" << r.grid;
  EXPECT_NE(r.error.find(words), std::string::npos) << r.error;
  const std::string cell = "[" + ToText(s.device_actions[device][step], s.micro_batches) + "]";
  EXPECT_NE(r.grid.find(cell), std::string::npos) << r.grid;
}

TEST(Validate, MissingBackward) {
  // Stage 1 forgets B1: pointed at its F1.
  const Schedule s = Csv("0F0,0F1,,,0B0,0B1\n,1F0,1B0,1F1\n", 2);
  ExpectRejectedAt(s, 1, 2, "no B for micro-batch 1");  // empty cells are idle, not steps
}

TEST(Validate, BackwardBeforeForward) {
  const Schedule s = Csv("0F0,0B0\n1B0,1F0\n", 1);
  ExpectRejectedAt(s, 1, 0, "backward before its forward");
}

TEST(Validate, MismatchedSendRecv) {
  // Stage 0 sends 0 then 1; stage 1 receives 1 first.
  const Schedule s =
      Csv("0F0,0SEND_F0,0F1,0SEND_F1,0RECV_B0,0B0,0RECV_B1,0B1\n"
          "1RECV_F1,1F1,1RECV_F0,1F0,1B0,1SEND_B0,1B1,1SEND_B1\n",
          2);
  ExpectRejectedAt(
      s, 1, 0,
      "where the sender's next message on channel device 0 -> 1 is the activation of stage 0 micro-batch 0");
}

TEST(Validate, CyclicWait) {
  // Each stage waits for the other before it sends: stage 0 wants the
  // gradient of 0 before sending activation 1, stage 1 wants activation 1
  // before it runs B0 and sends that gradient.
  const Schedule s =
      Csv("0F0,0SEND_F0,0RECV_B0,0F1,0SEND_F1,0B0,0RECV_B1,0B1\n"
          "1RECV_F0,1F0,1RECV_F1,1F1,1B0,1SEND_B0,1B1,1SEND_B1\n",
          2);
  ExpectRejectedAt(s, 0, 2, "deadlock");
}

TEST(Validate, UpdateBeforeLastBackward) {
  Schedule s = Make(ScheduleKind::kGPipe, 2, 2, 1);
  // GPipe row: F0 F1 B1 B0 U. Move U before B0.
  std::swap(s.device_actions[0][3], s.device_actions[0][4]);
  ExpectRejectedAt(s, 0, 3, "update before all 2 backward passes");
}

TEST(Validate, StageOnTwoDevices) {
  Schedule s = Make(ScheduleKind::kGPipe, 2, 1, 1);
  s.device_actions[1][0].stage = 0;
  ExpectRejectedAt(s, 1, 0, "belongs to device 0");
}

// Written by hand from PyTorch pipelining's CSV conventions: one row per rank,
// actions "<stage><kind><micro-batch>", empty cells idle, no optimizer step.
TEST(PyTorchCsv, GPipeTwoRanksLoadsValidatesRoundTrips) {
  const std::string text =
      "0F0,0SEND_F0,0F1,0SEND_F1,,,,0RECV_B1,0B1,0RECV_B0,0B0\n"
      ",1RECV_F0,1F0,1RECV_F1,1F1,1B1,1SEND_B1,1B0,1SEND_B0\n";
  const Schedule s = Csv(text, 2);
  EXPECT_EQ(s.num_devices, 2);
  EXPECT_EQ(s.num_stages, 2);
  EXPECT_EQ(s.mini_batches, 1);
  const ValidationResult r = Validate(s);
  ASSERT_TRUE(r.ok) << r.error << "\n" << r.grid;
  EXPECT_EQ(Csv(ToCsv(s), 2), s);
  EXPECT_EQ(StripCommunication(s).device_actions[0].size(), 5u);  // 2 F, 2 B and the U added
}

TEST(PyTorchCsv, ZeroBubbleSplitBackwardLoadsValidatesRoundTrips) {
  const std::string text =
      "0F0,0F1,0F2,0I0,0W0,0I1,0W1,0I2,0W2\n"
      ",1F0,1I0,1F1,1I1,1F2,1I2,1W0,1W1,1W2\n";
  const Schedule s = Csv(text, 3);
  const ValidationResult r = Validate(s);
  ASSERT_TRUE(r.ok) << r.error << "\n" << r.grid;
  EXPECT_EQ(Csv(ToCsv(s), 3), s);
}

TEST(PyTorchCsv, BadCellNamesFileLineAndColumn) {
  try {
    Csv("0F0,0X1\n", 1);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("test.csv:1:2"), std::string::npos) << e.what();
  }
}

TEST(ScheduleJson, MissingFieldIsNamed) {
  try {
    ParseJson(R"({"kind":"gpipe","devices":1})", "s.json");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("s.json: missing field 'stages'"), std::string::npos) << e.what();
  }
}

TEST(Grid, MatchesTheSpecExample) {
  const Schedule s = Make(ScheduleKind::kXPipe, 4, 2, 4);
  const std::string grid = ToGrid(s);
  // First steps of the example in schedules.md.
  EXPECT_NE(grid.find("GPU0 F1a  F1b  F2a  F2b  .    .    .    B1a  F3a  B1b* F3b  B2a  F4a  B2b*"),
            std::string::npos)
      << grid;
  EXPECT_NE(grid.find("GPU3 .    .    .    F1a  B1a  F1b  B1b* F2a  B2a  F2b  B2b* F3a  B3a  F3b"),
            std::string::npos)
      << grid;
}

}  // namespace
}  // namespace xpipe
