// Unit tests for the IMAP command parser, the backend response splitter and
// the astring encoder: every input whole, byte by byte, at random splits and
// split at every single position.
#include "protocols/imap/imap_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/phase_harness.h"

namespace mailshim::proto::imap {
namespace {

using mailshim::testing::feedSplit;
using mailshim::testing::kAllSplits;
using mailshim::testing::Outcome;
using mailshim::testing::Split;
using mailshim::testing::splitName;
using namespace std::string_literals;

// One parser event rendered as text, e.g. "CMD a LOGIN [A:bob][Q:pw]", "CONT",
// "ERR * InvalidTag".
std::string render(const ImapArg& a) {
  switch (a.kind) {
    case ImapArg::Kind::Atom:
      return "[A:" + a.value + "]";
    case ImapArg::Kind::Quoted:
      return "[Q:" + a.value + "]";
    case ImapArg::Kind::Literal:
      return "[L:" + a.value + "]";
    case ImapArg::Kind::List: {
      std::string s = "(";
      for (const auto& i : a.items) s += render(i);
      return s + ")";
    }
  }
  return "?";
}

const char* errName(ImapParseError e) {
  switch (e) {
    case ImapParseError::InvalidTag:
      return "InvalidTag";
    case ImapParseError::MissingCommand:
      return "MissingCommand";
    case ImapParseError::Syntax:
      return "Syntax";
    case ImapParseError::LineTooLong:
      return "LineTooLong";
    case ImapParseError::LiteralTooLarge:
      return "LiteralTooLarge";
    case ImapParseError::TooManyArguments:
      return "TooManyArguments";
  }
  return "?";
}

void drain(ImapParser& p, std::vector<std::string>& ev) {
  for (;;) {
    auto st = p.next();
    if (st == ImapParser::Status::NeedMore) return;
    if (st == ImapParser::Status::NeedContinuation) {
      ev.push_back("CONT");
    } else if (st == ImapParser::Status::Error) {
      ev.push_back(std::string("ERR ") + p.errorTag() + " " + errName(p.error()) +
                   (p.errorIsFatal() ? " FATAL" : ""));
    } else {
      std::string s = "CMD " + p.command().tag + " " + p.command().name;
      if (!p.command().args.empty()) s += " ";
      for (const auto& a : p.command().args) s += render(a);
      ev.push_back(s);
    }
  }
}

ImapParser::Limits smallLimits() {
  ImapParser::Limits l;
  l.max_line_bytes = 64;
  l.max_literal_bytes = 32;
  l.max_args = 8;
  l.max_depth = 2;
  return l;
}

std::vector<std::string> parse(std::string_view input, Split split, ImapParser::Limits limits = {}) {
  ImapParser p(limits);
  std::vector<std::string> ev;
  Outcome unused;
  feedSplit(
      input, split, 7,
      [&](std::string_view b) {
        p.feed(b);
        drain(p, ev);
        return Actions{};
      },
      unused);
  return ev;
}

// Asserts the same events for every split, including a cut at each position.
void expectEvents(std::string_view input, const std::vector<std::string>& want,
                  ImapParser::Limits limits = {}) {
  for (Split s : kAllSplits) {
    SCOPED_TRACE(splitName(s));
    EXPECT_EQ(parse(input, s, limits), want);
  }
  for (size_t cut = 1; cut < input.size(); ++cut) {
    ImapParser p(limits);
    std::vector<std::string> ev;
    p.feed(input.substr(0, cut));
    drain(p, ev);
    p.feed(input.substr(cut));
    drain(p, ev);
    ASSERT_EQ(ev, want) << "cut at " << cut;
  }
}

TEST(ImapParser, AtomsAndCaseOfName) {
  expectEvents("a1 login bob secret\r\n", {"CMD a1 login [A:bob][A:secret]"});
  expectEvents("A.2 NOOP\r\n", {"CMD A.2 NOOP"});
}

TEST(ImapParser, BareLfEndsALineAndEmptyLinesAreIgnored) {
  expectEvents("\r\n\na NOOP\nb NOOP\r\n", {"CMD a NOOP", "CMD b NOOP"});
}

TEST(ImapParser, QuotedStringsWithEscapes) {
  expectEvents("a LOGIN \"bob\" \"b0b pa\\\"ss\\\\wd\"\r\n", {"CMD a LOGIN [Q:bob][Q:b0b pa\"ss\\wd]"});
  expectEvents("a LOGIN \"\" \"\"\r\n", {"CMD a LOGIN [Q:][Q:]"});
}

TEST(ImapParser, SynchronizingLiteralsAskForContinuationAtEverySplit) {
  expectEvents("a LOGIN {3}\r\nbob {12}\r\nb0b pa\"ss\\wd\r\n",
               {"CONT", "CONT", "CMD a LOGIN [L:bob][L:b0b pa\"ss\\wd]"});
}

TEST(ImapParser, NonSynchronizingLiteralsDoNot) {
  expectEvents("a LOGIN {3+}\r\nbob {12+}\r\nb0b pa\"ss\\wd\r\n", {"CMD a LOGIN [L:bob][L:b0b pa\"ss\\wd]"});
}

TEST(ImapParser, LiteralMayHoldLineEndsAndEmptyLiteral) {
  expectEvents("a X {4+}\r\na\r\nb {0}\r\n\r\n", {"CONT", "CMD a X [L:a\r\nb][L:]"});
}

TEST(ImapParser, IdListAndNil) {
  expectEvents("a ID (\"name\" \"Thunderbird\" \"version\" NIL)\r\nb ID NIL\r\nc ID ()\r\n",
               {"CMD a ID ([Q:name][Q:Thunderbird][Q:version][A:NIL])", "CMD b ID [A:NIL]", "CMD c ID ()"});
  ImapParser p({});
  p.feed("a ID (nil \"NIL\")\r\n");
  ASSERT_EQ(p.next(), ImapParser::Status::Command);
  EXPECT_TRUE(p.command().args[0].items[0].isNil());
  EXPECT_FALSE(p.command().args[0].items[1].isNil());
}

TEST(ImapParser, ListNestingIsCapped) {
  expectEvents("a X ((x))\r\nb X (((x)))\r\nc NOOP\r\n", {"CMD a X (([A:x]))", "ERR b Syntax", "CMD c NOOP"},
               smallLimits());
  expectEvents("a X (x\r\nb X x)\r\n", {"ERR a Syntax", "ERR b Syntax"});
}

TEST(ImapParser, InvalidTags) {
  expectEvents(
      "* LOGIN a b\r\n+ x\r\n\"a\" NOOP\r\n x\r\nok NOOP\r\n",
      {"ERR * InvalidTag", "ERR * InvalidTag", "ERR * InvalidTag", "ERR * InvalidTag", "CMD ok NOOP"});
}

TEST(ImapParser, MissingCommand) {
  expectEvents("abc\r\nabc \r\nx NOOP\r\n",
               {"ERR abc MissingCommand", "ERR abc MissingCommand", "CMD x NOOP"});
}

TEST(ImapParser, SyntaxErrorsResynchroniseAtTheLineEnd) {
  expectEvents("a LOGIN \"unterminated\r\nb LOGIN x\"y\r\nc NOOP\r\n",
               {"ERR a Syntax", "ERR b Syntax", "CMD c NOOP"});
  expectEvents("a LOGIN \"x\0y\" z\r\nb NOOP\r\n"s, {"ERR a Syntax", "CMD b NOOP"});
  expectEvents("a NOOP\rb NOOP\r\nc NOOP\r\n", {"ERR a Syntax", "CMD c NOOP"});  // bare CR
  expectEvents("a X {}\r\nb X {+}\r\nc X {5}x\r\nd NOOP\r\n",
               {"ERR a Syntax", "ERR b Syntax", "ERR c Syntax", "CMD d NOOP"});
}

TEST(ImapParser, OverLongLineIsReportedOnceAndSkipped) {
  std::string longline = "a LOGIN " + std::string(200, 'x') + "\r\nb NOOP\r\n";
  expectEvents(longline, {"ERR a LineTooLong", "CMD b NOOP"}, smallLimits());
  std::string untagged = std::string(200, 'x') + "\r\nb NOOP\r\n";
  expectEvents(untagged, {"ERR * LineTooLong", "CMD b NOOP"}, smallLimits());
}

TEST(ImapParser, LineBoundCountsFromEachCommandStart) {
  // Two commands of 60 bytes each stay below a 64-byte bound.
  std::string one = "a X " + std::string(56, 'y') + "\r\n";
  std::string two = "b X " + std::string(56, 'z') + "\r\n";
  auto ev = parse(one + two, Split::Whole, smallLimits());
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].substr(0, 8), "CMD b X ");
}

TEST(ImapParser, HugeSynchronizingLiteralIsRefusedWithoutReadingIt) {
  expectEvents("a LOGIN bob {2147483648}\r\nb NOOP\r\n", {"ERR a LiteralTooLarge", "CMD b NOOP"});
  expectEvents("a LOGIN bob {99999999999999999999999}\r\nb NOOP\r\n",
               {"ERR a LiteralTooLarge", "CMD b NOOP"});
  expectEvents("a X {20}\r\n01234567890123456789 {20}\r\nb NOOP\r\n",
               {"CONT", "ERR a LiteralTooLarge", "CMD b NOOP"}, smallLimits());
}

TEST(ImapParser, HugeNonSynchronizingLiteralIsFatal) {
  auto ev = parse("a LOGIN bob {2147483648+}\r\nxxxx", Split::Whole);
  EXPECT_EQ(ev, (std::vector<std::string>{"ERR a LiteralTooLarge FATAL"}));
}

TEST(ImapParser, TooManyArguments) {
  expectEvents("a X 1 2 3 4 5 6 7 8 9\r\nb NOOP\r\n", {"ERR a TooManyArguments", "CMD b NOOP"},
               smallLimits());
}

TEST(ImapParser, StopsAfterEachCommandAndKeepsTheRestPending) {
  ImapParser p({});
  p.feed("a AUTHENTICATE PLAIN AGJvYgB4\r\nb CAPABILITY\r\nc NO");
  ASSERT_EQ(p.next(), ImapParser::Status::Command);
  EXPECT_EQ(p.command().name, "AUTHENTICATE");
  EXPECT_TRUE(p.atCommandStart());
  EXPECT_EQ(p.takePending(), "b CAPABILITY\r\nc NO");
  EXPECT_EQ(p.pendingBytes(), 0u);
}

TEST(ImapParser, RawLinesForSaslResponses) {
  ImapParser p(smallLimits());
  std::string line;
  p.feed("AGJvYgB4\r\n*\n" + std::string(100, 'x'));
  EXPECT_EQ(p.nextLine(line), ImapParser::LineStatus::Line);
  EXPECT_EQ(line, "AGJvYgB4");
  EXPECT_EQ(p.nextLine(line), ImapParser::LineStatus::Line);
  EXPECT_EQ(line, "*");
  EXPECT_EQ(p.nextLine(line), ImapParser::LineStatus::TooLong);
  p.feed("yyy\r\nz NOOP\r\n");
  EXPECT_EQ(p.next(), ImapParser::Status::Command);
  EXPECT_EQ(p.command().tag, "z");
}

TEST(ImapParser, RawLineOfExactlyTheBoundSplitBetweenCrAndLf) {
  ImapParser p(smallLimits());
  std::string line;
  p.feed(std::string(64, 'a') + "\r");
  EXPECT_EQ(p.nextLine(line), ImapParser::LineStatus::NeedMore);
  p.feed("\n");
  EXPECT_EQ(p.nextLine(line), ImapParser::LineStatus::Line);
  EXPECT_EQ(line.size(), 64u);
}

TEST(ImapParser, ClearDropsEverything) {
  ImapParser p({});
  p.feed("a STARTTLS\r\nb CAPABILITY\r\n");
  ASSERT_EQ(p.next(), ImapParser::Status::Command);
  p.clear();
  EXPECT_EQ(p.pendingBytes(), 0u);
  EXPECT_EQ(p.next(), ImapParser::Status::NeedMore);
}

TEST(ImapResponse, SplitsBackendLines) {
  auto r = parseResponseLine("* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready.");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, ImapResponseLine::Kind::Untagged);
  EXPECT_EQ(r->word, "OK");
  EXPECT_EQ(r->code, "CAPABILITY IMAP4rev1 STARTTLS");
  r = parseResponseLine("m4 NO [AUTHENTICATIONFAILED] Authentication failed.");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, ImapResponseLine::Kind::Tagged);
  EXPECT_EQ(r->tag, "m4");
  EXPECT_EQ(r->rest, "[AUTHENTICATIONFAILED] Authentication failed.");
  r = parseResponseLine("+ ");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, ImapResponseLine::Kind::Continuation);
  EXPECT_FALSE(parseResponseLine(""));
  EXPECT_FALSE(parseResponseLine("m1"));
  EXPECT_EQ(parseCapabilities("IMAP4rev1  sasl-ir AUTH=PLAIN"),
            (std::vector<std::string>{"IMAP4REV1", "SASL-IR", "AUTH=PLAIN"}));
  EXPECT_EQ(trailingLiteral("* ID (\"name\" {7}"), 7u);
  EXPECT_EQ(trailingLiteral("* ID (\"name\" {7+}"), 7u);
  EXPECT_FALSE(trailingLiteral("* OK {x}"));
  EXPECT_FALSE(trailingLiteral("* OK done"));
}

TEST(ImapEncoder, QuotesWhenPossible) {
  EXPECT_EQ(quoteString("bob"), "\"bob\"");
  EXPECT_EQ(quoteString("b0b pa\"ss\\wd"), "\"b0b pa\\\"ss\\\\wd\"");
  EXPECT_EQ(quoteString("NIL"), "\"NIL\"");
  EXPECT_FALSE(quoteString("p\xc3\xa4ss"));
  EXPECT_FALSE(quoteString("a\tb"));
}

TEST(ImapEncoder, LiteralsForEightBitAndRefusalForLineBreaks) {
  std::vector<std::string> segs{"m1 LOGIN "};
  ASSERT_TRUE(appendAstring(segs, "bob", true));
  segs.back() += ' ';
  ASSERT_TRUE(appendAstring(segs, "p\xc3\xa4ss", true));
  EXPECT_EQ(segs, (std::vector<std::string>{"m1 LOGIN \"bob\" {5+}\r\np\xc3\xa4ss"}));

  segs = {"m1 LOGIN "};
  ASSERT_TRUE(appendAstring(segs, "p\xc3\xa4ss", false));
  segs.back() += ' ';
  ASSERT_TRUE(appendAstring(segs, "x", false));
  EXPECT_EQ(segs, (std::vector<std::string>{"m1 LOGIN {5}\r\n", "p\xc3\xa4ss \"x\""}));

  segs = {"x "};
  EXPECT_FALSE(appendAstring(segs, "a\r\nb", true));
  EXPECT_FALSE(appendAstring(segs, std::string("a\0b", 3), true));
  EXPECT_EQ(segs, (std::vector<std::string>{"x "}));
}

// The encoder's output parses back to the same value.
TEST(ImapEncoder, RoundTripsThroughTheParser) {
  for (std::string v : {std::string("b0b pa\"ss\\wd"), std::string("p\xc3\xa4ss"), std::string(""),
                        std::string("{5}"), std::string("a b")}) {
    std::vector<std::string> segs{"t LOGIN u "};
    ASSERT_TRUE(appendAstring(segs, v, true));
    segs.back() += "\r\n";
    ImapParser p({});
    p.feed(segs[0]);
    ASSERT_EQ(p.next(), ImapParser::Status::Command) << v;
    ASSERT_EQ(p.command().args.size(), 2u);
    EXPECT_EQ(p.command().args[1].value, v);
  }
}

}  // namespace
}  // namespace mailshim::proto::imap
