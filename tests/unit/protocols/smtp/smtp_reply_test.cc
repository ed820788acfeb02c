// Unit tests for the SMTP reply codec: the incremental ReplyParser (multi-line
// replies, code consistency, bounds, control characters, any byte split),
// enhanced status codes (RFC 3463) and the reply encoders. No I/O.
#include "protocols/smtp/smtp_reply.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/phase_harness.h"

namespace mailshim::proto::smtp {
namespace {

using namespace std::string_literals;
using testing::Split;

struct Parsed {
  std::vector<Reply> replies;
  bool error = false;
  std::string pending;
};

Parsed parseAll(std::string_view input, Split split, uint32_t seed = 7, size_t max_line = 2048, size_t max_lines = 100) {
  ReplyParser p(max_line, max_lines);
  Parsed out;
  testing::Outcome unused;
  testing::feedSplit(
      input, split, seed,
      [&](std::string_view chunk) {
        p.feed(chunk);
        Reply r;
        for (;;) {
          auto st = p.next(r);
          if (st == ReplyParser::Status::Reply) {
            out.replies.push_back(r);
            continue;
          }
          if (st == ReplyParser::Status::Error) out.error = true;
          break;
        }
        return Actions{};
      },
      unused);
  out.pending = std::string(p.pending());
  return out;
}

class ReplyParserSplit : public ::testing::TestWithParam<Split> {};

TEST_P(ReplyParserSplit, MultiLineEhloReply) {
  const std::string ehlo =
      "250-mail.example.com\r\n250-PIPELINING\r\n250-SIZE 15728640\r\n250-ETRN\r\n250-STARTTLS\r\n"
      "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 DSN\r\n";
  auto p = parseAll(ehlo + "220 2.0.0 Ready to start TLS\r\n", GetParam());
  ASSERT_FALSE(p.error);
  ASSERT_EQ(p.replies.size(), 2u);
  EXPECT_EQ(p.replies[0].code, 250);
  EXPECT_EQ(p.replies[0].lines.size(), 8u);
  EXPECT_EQ(p.replies[0].lines[0], "mail.example.com");
  EXPECT_EQ(p.replies[0].lines[4], "STARTTLS");
  EXPECT_EQ(p.replies[0].lastText(), "DSN");
  EXPECT_EQ(p.replies[0].raw, ehlo);
  EXPECT_EQ(p.replies[0].enhanced, "");
  EXPECT_EQ(p.replies[1].code, 220);
  EXPECT_EQ(p.replies[1].enhanced, "2.0.0");
  EXPECT_EQ(p.replies[1].lastText(), "2.0.0 Ready to start TLS");
  EXPECT_TRUE(p.pending.empty());
}

TEST_P(ReplyParserSplit, BareCodeTabsAnd8BitText) {
  auto p = parseAll("250\r\n250 \r\n535 5.7.8 Error:\tauthentication failed \xc3\xa9\r\n", GetParam());
  ASSERT_FALSE(p.error);
  ASSERT_EQ(p.replies.size(), 3u);
  EXPECT_EQ(p.replies[0].lastText(), "");
  EXPECT_EQ(p.replies[1].lastText(), "");
  EXPECT_EQ(p.replies[2].code, 535);
  EXPECT_EQ(p.replies[2].enhanced, "5.7.8");
  EXPECT_FALSE(p.replies[2].positive());
}

TEST_P(ReplyParserSplit, BareLfToleratedRawKept) {
  auto p = parseAll("250-a\n250 b\n", GetParam());
  ASSERT_FALSE(p.error);
  ASSERT_EQ(p.replies.size(), 1u);
  EXPECT_EQ(p.replies[0].raw, "250-a\n250 b\n");
  EXPECT_EQ(p.replies[0].lines, (std::vector<std::string>{"a", "b"}));
}

TEST_P(ReplyParserSplit, PartialReplyStaysPending) {
  auto p = parseAll("250 ok\r\n250-more\r\n250 ", GetParam());
  ASSERT_FALSE(p.error);
  ASSERT_EQ(p.replies.size(), 1u);
  EXPECT_EQ(p.pending, "250-more\r\n250 ");
}

TEST_P(ReplyParserSplit, CodeChangeInsideMultiLineIsError) {
  auto p = parseAll("250-first\r\n251 second\r\n", GetParam());
  EXPECT_TRUE(p.error);
  EXPECT_TRUE(p.replies.empty());
}

TEST_P(ReplyParserSplit, MalformedLinesAreErrors) {
  for (const std::string& bad : {"hello\r\n"s, "25\r\n"s, "2500 x\r\n"s, "250x\r\n"s, "199 x\r\n"s, "600 x\r\n"s,
                                "250 a\x01z\r\n"s, "250 a\rb\r\n"s, "250 a\x7f\r\n"s, "250 a\0b\r\n"s, "\r\n"s,
                                "\x16\x03\x01\x00\x05\r\n"s}) {
    auto p = parseAll(bad, GetParam());
    EXPECT_TRUE(p.error) << bad;
    EXPECT_TRUE(p.replies.empty()) << bad;
  }
}

TEST_P(ReplyParserSplit, LineLengthBound) {
  std::string ok = "250 " + std::string(60, 'x') + "\r\n";
  auto p = parseAll(ok, GetParam(), 3, 64);
  EXPECT_FALSE(p.error);
  EXPECT_EQ(p.replies.size(), 1u);
  std::string longer = "250 " + std::string(61, 'x') + "\r\n";
  EXPECT_TRUE(parseAll(longer, GetParam(), 3, 64).error);
  // Without a line end, the bound still applies (no unbounded buffering).
  EXPECT_TRUE(parseAll("250 " + std::string(1000, 'x'), GetParam(), 3, 64).error);
}

TEST_P(ReplyParserSplit, LineCountBound) {
  std::string three = "250-a\r\n250-b\r\n250 c\r\n";
  EXPECT_FALSE(parseAll(three, GetParam(), 3, 2048, 3).error);
  std::string four = "250-a\r\n250-b\r\n250-c\r\n250 d\r\n";
  EXPECT_TRUE(parseAll(four, GetParam(), 3, 2048, 3).error);
}

INSTANTIATE_TEST_SUITE_P(Splits, ReplyParserSplit, ::testing::ValuesIn(testing::kAllSplits),
                         [](const auto& info) { return std::string(testing::splitName(info.param)); });

TEST(ReplyParser, ErrorIsStickyAndPendingKept) {
  ReplyParser p;
  p.feed("garbage\r\n250 ok\r\n");
  Reply r;
  EXPECT_EQ(p.next(r), ReplyParser::Status::Error);
  EXPECT_TRUE(p.failed());
  EXPECT_NE(p.error().find("malformed"), std::string_view::npos);
  EXPECT_EQ(p.pending(), "garbage\r\n250 ok\r\n");
  p.feed("250 more\r\n");
  EXPECT_EQ(p.next(r), ReplyParser::Status::Error);
}

TEST(ReplyParser, ErrorMessageIsLogSafe) {
  ReplyParser p;
  p.feed("25\x1b[31m\r\n");
  Reply r;
  ASSERT_EQ(p.next(r), ReplyParser::Status::Error);
  EXPECT_EQ(std::string(p.error()).find('\x1b'), std::string::npos);
}

TEST(ReplyParser, ClearDropsInjectedBytes) {
  ReplyParser p;
  p.feed("220 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n");
  Reply r;
  ASSERT_EQ(p.next(r), ReplyParser::Status::Reply);
  EXPECT_TRUE(p.hasPending());
  p.clear();
  EXPECT_FALSE(p.hasPending());
  EXPECT_EQ(p.next(r), ReplyParser::Status::NeedMore);
}

TEST(EnhancedCode, Recognised) {
  EXPECT_EQ(enhancedCodeLength("2.0.0 Ok"), 5u);
  EXPECT_EQ(enhancedCodeLength("5.7.8"), 5u);
  EXPECT_EQ(enhancedCodeLength("4.123.456 x"), 9u);
  EXPECT_EQ(enhancedCodeLength("3.0.0 x"), 0u);
  EXPECT_EQ(enhancedCodeLength("2.0 x"), 0u);
  EXPECT_EQ(enhancedCodeLength("2.0.0x"), 0u);
  EXPECT_EQ(enhancedCodeLength("2.1234.0 x"), 0u);
  EXPECT_EQ(enhancedCodeLength("Ok"), 0u);
  EXPECT_EQ(enhancedCodeLength(""), 0u);
}

TEST(ReplyEncoder, FormatsAndRefuses) {
  EXPECT_EQ(formatReply(250, "2.0.0 Ok"), "250 2.0.0 Ok\r\n");
  EXPECT_EQ(formatReply(334, ""), "334\r\n");
  EXPECT_FALSE(formatReply(250, "a\r\n250 injected"));
  EXPECT_FALSE(formatReply(250, "a\nb"));
  EXPECT_FALSE(formatReply(250, "a\0b"s));
  EXPECT_FALSE(formatReply(199, "x"));
  EXPECT_FALSE(formatReply(600, "x"));
  EXPECT_EQ(formatMultiline(250, {"a", "b", "c"}), "250-a\r\n250-b\r\n250 c\r\n");
  EXPECT_EQ(formatMultiline(250, {"only"}), "250 only\r\n");
  EXPECT_FALSE(formatMultiline(250, {}));
  EXPECT_FALSE(formatMultiline(250, {"a", "b\r\n"}));
  EXPECT_EQ(parseReplyCode("535"), 535);
  EXPECT_FALSE(parseReplyCode("35"));
  EXPECT_FALSE(parseReplyCode("135"));
  EXPECT_FALSE(parseReplyCode("5x5"));
  EXPECT_FALSE(parseReplyCode(""));
}

}  // namespace
}  // namespace mailshim::proto::smtp
