// Unit tests for LineReader (CRLF framing, bounds, split invariance). No I/O.
#include "protocols/common/line_reader.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/phase_harness.h"

namespace mailshim::proto {
namespace {

using testing::Split;

// Feeds `input` in the chosen split and returns the events: "L:<line>" or "TOOLONG".
std::vector<std::string> run(std::string_view input, size_t max, Split split, uint32_t seed = 1) {
  LineReader r(max);
  std::vector<std::string> ev;
  testing::Outcome unused;
  testing::feedSplit(
      input, split, seed,
      [&](std::string_view chunk) {
        r.feed(chunk);
        std::string_view line;
        for (;;) {
          auto st = r.next(line);
          if (st == LineReader::Status::NeedMore) break;
          ev.push_back(st == LineReader::Status::Line ? "L:" + std::string(line) : "TOOLONG");
        }
        return Actions{};
      },
      unused);
  return ev;
}

class LineReaderSplit : public ::testing::TestWithParam<Split> {};

TEST_P(LineReaderSplit, CrlfAndBareLfEndLines) {
  auto ev = run("EHLO a\r\nNOOP\nQUIT\r\n", 100, GetParam());
  EXPECT_EQ(ev, (std::vector<std::string>{"L:EHLO a", "L:NOOP", "L:QUIT"}));
}

TEST_P(LineReaderSplit, EmptyLinesAndBareCrKept) {
  auto ev = run("\r\na\rb\r\n\n", 100, GetParam());
  EXPECT_EQ(ev, (std::vector<std::string>{"L:", "L:a\rb", "L:"}));
}

TEST_P(LineReaderSplit, OverlongLineReportedOnceThenSkipped) {
  std::string input = std::string(50, 'x') + "\r\nNOOP\r\n";
  auto ev = run(input, 10, GetParam());
  EXPECT_EQ(ev, (std::vector<std::string>{"TOOLONG", "L:NOOP"}));
}

TEST_P(LineReaderSplit, LineExactlyAtBoundIsAccepted) {
  std::string line(10, 'y');
  auto ev = run(line + "\r\n" + line + "y\r\n", 10, GetParam());
  EXPECT_EQ(ev, (std::vector<std::string>{"L:" + line, "TOOLONG"}));
}

TEST_P(LineReaderSplit, PartialLineStaysPending) {
  auto ev = run("NOOP\r\nPART", 100, GetParam());
  EXPECT_EQ(ev, (std::vector<std::string>{"L:NOOP"}));
}

INSTANTIATE_TEST_SUITE_P(Splits, LineReaderSplit, ::testing::ValuesIn(testing::kAllSplits),
                         [](const auto& info) { return std::string(testing::splitName(info.param)); });

TEST(LineReader, PendingClearAndTakeRaw) {
  LineReader r(100);
  r.feed("A\r\nSTARTTLS-INJECT");
  std::string_view line;
  ASSERT_EQ(r.next(line), LineReader::Status::Line);
  EXPECT_EQ(line, "A");
  EXPECT_EQ(r.pending(), "STARTTLS-INJECT");
  EXPECT_TRUE(r.hasPending());
  EXPECT_EQ(r.takeRaw(8), "STARTTLS");
  EXPECT_EQ(r.pending(), "-INJECT");
  r.clear();
  EXPECT_FALSE(r.hasPending());
  EXPECT_EQ(r.next(line), LineReader::Status::NeedMore);
  EXPECT_EQ(r.takeRaw(5), "");
  EXPECT_EQ(r.maxLineBytes(), 100u);
}

TEST(LineReader, ClearResetsSkippingOfOverlongLine) {
  LineReader r(4);
  r.feed("xxxxxxxx");
  std::string_view line;
  EXPECT_EQ(r.next(line), LineReader::Status::TooLong);
  r.clear();
  r.feed("ok\r\n");
  ASSERT_EQ(r.next(line), LineReader::Status::Line);
  EXPECT_EQ(line, "ok");
}

TEST(LineReader, ManySmallLinesCompactBuffer) {
  LineReader r(16);
  std::string_view line;
  for (int i = 0; i < 10000; ++i) {
    r.feed("NOOP\r\n");
    ASSERT_EQ(r.next(line), LineReader::Status::Line);
    ASSERT_EQ(line, "NOOP");
  }
  EXPECT_FALSE(r.hasPending());
}

}  // namespace
}  // namespace mailshim::proto
