// Transcript tests for the SMTP relay filter's message-level behaviour: the
// bare CR/LF (SMTP smuggling) defence and smtp.bare_lf, smtp.rcpt_strip_quotes,
// smtp.sender_align, smtp.display_name (golden messages compared byte-exact,
// DATA split at every byte), X-Mailer/User-Agent ClientInfo, and retired
// message quirks. Each quirk ON and OFF; every input whole, byte by byte and
// at random splits. No I/O.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "protocols/common/rfc2047.h"
#include "protocols/smtp/smtp_relay_filter.h"
#include "tests/unit/phase_harness.h"

namespace mailshim::proto::smtp {
namespace {

using namespace std::string_literals;
using testing::Outcome;
using testing::Split;

const std::string kRetiredEn = "Bare line ends are no longer accepted since 2027-03-31: https://help.example.test/lf";
const std::string kRetiredJa = "2027年3月31日以降、CRLF 以外の改行は受け付けません: https://help.example.test/lf";
const std::string kJugemu =
    "寿限無寿限無五劫の擦り切れ海砂利水魚の水行末雲来末風来末食う寝る処に住む処やぶら小路の藪柑子パイポパイポパイポのシュ"
    "ーリンガン";
const std::string k550 = "550 5.6.11 Bare CR or LF in message content; use CRLF line ends\r\n";

DirectoryConstSharedPtr testDirectory() {
  return std::make_shared<const Directory>(std::map<std::string, std::string>{
      {"alice@example.test", "Alice Liddell"},
      {"liddell@example.test", "Liddell, Alice"},
      {"yamada@example.test", "山田 太郎"},
      {"jugemu@example.test", kJugemu},
      {"tab@example.test", "Bad\tName"},
      {"blank@example.test", "   "},
  });
}

SessionContext relayContext(std::initializer_list<Quirk> on = {}, std::initializer_list<Quirk> retired = {},
                            std::string message = {}) {
  auto c = testing::defaultContext();
  for (Quirk q : on) c.quirks.add(q);
  for (Quirk q : retired) c.retired_quirks.add(q);
  c.retired_message = std::move(message);
  c.user = "alice@example.test";
  c.directory = testDirectory();
  return c;
}

struct Relay {
  Relay(const SessionContext& c, Split s, uint32_t seed = 3)
      : filter(std::make_unique<SmtpRelayFilter>(c)), split(s), seed_(seed) {}
  void client(std::string_view b) {
    client_bytes += b;
    testing::feedSplit(b, split, seed_++, [this](std::string_view c) { return filter->onDownstreamData(c); }, out);
  }
  void backend(std::string_view b) {
    testing::feedSplit(b, split, seed_++, [this](std::string_view c) { return filter->onUpstreamData(c); }, out);
  }
  int uses(Quirk q) const {
    int n = 0;
    for (const auto& u : out.quirks) n += u.quirk == q;
    return n;
  }
  std::string info(std::string_view key) const {
    for (const auto& i : out.infos)
      if (i.key == key) return i.value;
    return "<none>";
  }
  bool noteContains(std::string_view text) const {
    for (const auto& n : out.notes)
      if (n.text.find(text) != std::string::npos) return true;
    return false;
  }
  std::unique_ptr<SmtpRelayFilter> filter;
  Split split;
  uint32_t seed_;
  Outcome out;
  std::string client_bytes;
};

// One DATA transaction: returns the relay after the backend's 354; `content`
// is sent after it.
std::unique_ptr<Relay> openData(const SessionContext& c, Split s) {
  auto r = std::make_unique<Relay>(c, s);
  r->client("DATA\r\n");
  r->backend("354 End data with <CR><LF>.<CR><LF>\r\n");
  return r;
}

// The upstream bytes of the message content (everything after "DATA\r\n").
std::string content(const Relay& r) { return r.out.up.substr(6); }

// Sends `msg` as DATA content in two writes split at `at`; returns the content
// that went upstream.
std::string contentSplitAt(const SessionContext& c, std::string_view msg, size_t at, Outcome* out = nullptr) {
  SmtpRelayFilter f(c);
  Outcome o;
  o.add(f.onDownstreamData("DATA\r\n"));
  o.add(f.onUpstreamData("354 go\r\n"));
  o.add(f.onDownstreamData(msg.substr(0, at)));
  o.add(f.onDownstreamData(msg.substr(at)));
  if (out) *out = o;
  return o.up.substr(6);
}

bool hasBareLineEnd(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return true;
    if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n')) return true;
  }
  return false;
}

class RelayQuirks : public ::testing::TestWithParam<Split> {};

// --- the bare CR/LF defence (smtp.bare_lf off) -----------------------------------

struct SmuggleCase {
  const char* name;
  std::string msg;         // content after the 354
  std::string safe_prefix; // longest content that may have reached the backend
};

TEST_P(RelayQuirks, BareLineEndsRefusedNeverForwarded) {
  const std::string smuggled = "MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\n"
                               "From: ceo@example.test\r\n\r\nforged\r\n.\r\n";
  // Lines longer than 16 bytes take the scanner's vectorised path.
  const std::string longl = std::string(37, 'L') + "\r\n" + std::string(53, 'M') + "\r\n" + ".." + std::string(20, 'd') + "\r\n";
  const SmuggleCase cases[] = {
      {"long-bare-lf-midline", "Subject: x\r\n\r\n" + longl + std::string(21, 'n') + "\nlo\r\n.\r\n" + smuggled,
       "Subject: x\r\n\r\n" + longl + std::string(21, 'n')},
      {"long-bare-cr-midline", "Subject: x\r\n\r\n" + longl + std::string(33, 'n') + "\rlo\r\n.\r\n" + smuggled,
       "Subject: x\r\n\r\n" + longl + std::string(33, 'n')},
      {"long-crlf-lf-dot-lf", "Subject: x\r\n\r\n" + longl + "\n.\n" + smuggled, "Subject: x\r\n\r\n" + longl},
      {"lf-dot-lf", "Subject: x\r\n\r\nhello\n.\n" + smuggled, "Subject: x\r\n\r\nhello"},
      {"cr-dot-cr", "Subject: x\r\n\r\nhello\r.\r" + smuggled, "Subject: x\r\n\r\nhello"},
      {"lf-dot-crlf", "Subject: x\r\n\r\nhello\n.\r\n" + smuggled, "Subject: x\r\n\r\nhello"},
      {"crlf-dot-lf", "Subject: x\r\n\r\nhello\r\n.\n" + smuggled, "Subject: x\r\n\r\nhello\r\n"},
      {"crlf-dot-cr", "Subject: x\r\n\r\nhello\r\n.\r" + smuggled, "Subject: x\r\n\r\nhello\r\n"},
      {"cr-dot-crlf", "Subject: x\r\n\r\nhello\r.\r\n" + smuggled, "Subject: x\r\n\r\nhello"},
      {"bare-lf-midline", "Subject: x\r\n\r\nhel\nlo\r\nmore\r\n.\r\n" + smuggled, "Subject: x\r\n\r\nhel"},
      {"bare-cr-midline", "Subject: x\r\n\r\nhel\rlo\r\nmore\r\n.\r\n" + smuggled, "Subject: x\r\n\r\nhel"},
      {"bare-lf-in-header", "Subject: x\nFrom: a@example.test\r\n\r\nbody\r\n.\r\n" + smuggled, ""},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    auto r = openData(relayContext(), GetParam());
    r->client(tc.msg);
    const std::string up = content(*r);
    // Nothing after the bare line end, no bare line end, no "." line.
    EXPECT_TRUE(tc.safe_prefix.starts_with(up)) << up;
    EXPECT_FALSE(hasBareLineEnd(up));
    EXPECT_EQ(up.find("evil"), std::string::npos);
    EXPECT_EQ(up.find("\r\n.\r\n"), std::string::npos);
    EXPECT_EQ(r->out.down, "354 End data with <CR><LF>.<CR><LF>\r\n" + k550);
    ASSERT_TRUE(r->out.close);
    EXPECT_EQ(*r->out.close, CloseReason::MessageRefused);
    EXPECT_EQ(r->out.trace.back(), "CLOSE");
    EXPECT_TRUE(r->noteContains("SMTP smuggling defence"));
    EXPECT_TRUE(r->out.quirks.empty());
    // The filter is done: nothing more either way.
    EXPECT_TRUE(r->filter->onDownstreamData("RSET\r\n").empty());
    EXPECT_TRUE(r->filter->onUpstreamData("250 2.0.0 Ok\r\n").empty());
  }
}

TEST_P(RelayQuirks, RefusedMessageEndsOnlyAtItsDotLine) {
  // The client keeps sending after the bare LF: no reply until its "." line.
  auto r = openData(relayContext(), GetParam());
  r->client("Subject: x\r\n\r\nline one\nline two\r\n");
  EXPECT_EQ(r->out.down, "354 End data with <CR><LF>.<CR><LF>\r\n");
  EXPECT_FALSE(r->out.close);
  r->client("..not the end\r\nstill\r\n");
  EXPECT_FALSE(r->out.close);
  r->client(".\r\nQUIT\r\n");
  EXPECT_TRUE(r->out.down.ends_with(k550));
  EXPECT_EQ(*r->out.close, CloseReason::MessageRefused);
  EXPECT_EQ(content(*r).find("QUIT"), std::string::npos);
}

TEST(RelayQuirksStrict, CrIsHeldUntilItsLfArrives) {
  SmtpRelayFilter f(relayContext());
  Outcome o;
  o.add(f.onDownstreamData("DATA\r\n"));
  o.add(f.onUpstreamData("354 go\r\n"));
  o.add(f.onDownstreamData("Subject: s\r\n\r\nhello"));
  EXPECT_EQ(o.up, "DATA\r\nSubject: s\r\n\r\nhello");  // the body streams
  o.add(f.onDownstreamData("\r"));
  EXPECT_EQ(o.up, "DATA\r\nSubject: s\r\n\r\nhello");  // the CR waits: it might be bare
  o.add(f.onDownstreamData("\n."));
  EXPECT_EQ(o.up, "DATA\r\nSubject: s\r\n\r\nhello\r\n");  // the dot waits: it might end the message
  o.add(f.onDownstreamData("\r"));
  EXPECT_EQ(o.up, "DATA\r\nSubject: s\r\n\r\nhello\r\n");
  o.add(f.onDownstreamData("\n"));
  EXPECT_EQ(o.up, "DATA\r\nSubject: s\r\n\r\nhello\r\n.\r\n");
  EXPECT_FALSE(o.close);
}

TEST_P(RelayQuirks, BareLfRetiredCarriesMessage) {
  for (const std::string& msg : {kRetiredEn, kRetiredJa}) {
    auto r = openData(relayContext({}, {Quirk::SmtpBareLf}, msg), GetParam());
    r->client("Subject: x\n\nbody\n.\n");
    EXPECT_EQ(r->out.down, "354 End data with <CR><LF>.<CR><LF>\r\n550 5.6.11 " + msg + "\r\n");
    EXPECT_EQ(*r->out.close, CloseReason::MessageRefused);
    ASSERT_EQ(r->uses(Quirk::SmtpBareLf), 1);
    EXPECT_EQ(r->out.quirks[0].detail, "retired: bare LF in message content refused");
  }
}

TEST_P(RelayQuirks, CrLfMessagesUnaffectedByTheDefence) {
  const std::string msg = "Subject: x\r\n\r\n..stuffed\r\n.x\r\n\r\n\tindented\r\n.\r\n";
  auto r = openData(relayContext(), GetParam());
  r->client(msg + "QUIT\r\n");
  EXPECT_EQ(content(*r), msg + "QUIT\r\n");
  EXPECT_FALSE(r->out.close);
}

// --- smtp.bare_lf on -----------------------------------------------------------------

TEST_P(RelayQuirks, BareLfNormalisedAndLfDotLfEndsData) {
  auto r = openData(relayContext({Quirk::SmtpBareLf}), GetParam());
  r->client("Subject: x\nFrom: Scanner <scan@example.test>\n\nline1\n..stuffed\nline2\n.\nQUIT\n");
  EXPECT_EQ(content(*r),
            "Subject: x\r\nFrom: Scanner <scan@example.test>\r\n\r\nline1\r\n..stuffed\r\nline2\r\n.\r\nQUIT\n");
  ASSERT_EQ(r->uses(Quirk::SmtpBareLf), 1);
  EXPECT_EQ(r->out.quirks[0].detail, "normalised 7 bare LF and 0 bare CR line ends to CRLF");
  r->backend("250 2.0.0 Ok: queued as N1\r\n221 2.0.0 Bye\r\n");
  EXPECT_TRUE(r->noteContains("message accepted: 2.0.0 Ok: queued as N1"));
  EXPECT_FALSE(r->out.close);
}

TEST_P(RelayQuirks, BareLfQuirkLeavesCrLfMessagesByteExact) {
  const std::string msg = "Subject: x\r\n\r\n..stuffed\r\nline\r\n.\r\n";
  auto r = openData(relayContext({Quirk::SmtpBareLf}), GetParam());
  r->client(msg + "NOOP\r\n");
  EXPECT_EQ(content(*r), msg + "NOOP\r\n");
  EXPECT_TRUE(r->out.quirks.empty());
}

TEST_P(RelayQuirks, BareCrNormalisedAndCrDotCrEndsData) {
  auto r = openData(relayContext({Quirk::SmtpBareLf}), GetParam());
  r->client("a\rb\r\nc\r.\rNOOP\r\n");
  // Mailshim and the backend read the same thing: the end of data, then NOOP.
  EXPECT_EQ(content(*r), "a\r\nb\r\nc\r\n.\r\nNOOP\r\n");
  ASSERT_EQ(r->uses(Quirk::SmtpBareLf), 1);
  EXPECT_EQ(r->out.quirks[0].detail, "normalised 0 bare LF and 2 bare CR line ends to CRLF");
  r->backend("250 2.0.0 Ok: queued as C1\r\n250 2.0.0 Ok\r\n");
  EXPECT_TRUE(r->noteContains("message accepted: 2.0.0 Ok: queued as C1"));
}

TEST_P(RelayQuirks, BareLfQuirkReadsSmugglingAttemptLikeTheBackend) {
  // With the quirk the "\n.\n" IS the end of data for mailshim too: what
  // follows is a command it forwards and expects a reply for — the same
  // reading the backend gets from the normalised bytes.
  auto r = openData(relayContext({Quirk::SmtpBareLf}), GetParam());
  r->client("hello\n.\nMAIL FROM:<other@example.test>\r\n");
  EXPECT_EQ(content(*r), "hello\r\n.\r\nMAIL FROM:<other@example.test>\r\n");
  r->backend("250 2.0.0 Ok: queued as S1\r\n250 2.1.0 Ok\r\n");
  EXPECT_TRUE(r->noteContains("message accepted"));
}

TEST(RelayQuirksLenient, EveryTwoWaySplitGivesTheSameBytes) {
  const std::string msg = "From: alice@example.test\nSubject: x\r\n\r\nl1\rl2\n..s\r\n.\r";
  const std::string want = "From: Alice Liddell <alice@example.test>\r\nSubject: x\r\n\r\nl1\r\nl2\r\n..s\r\n.\r\n";
  auto c = relayContext({Quirk::SmtpBareLf, Quirk::SmtpDisplayName});
  for (size_t at = 0; at <= msg.size(); ++at) EXPECT_EQ(contentSplitAt(c, msg, at), want) << "split at " << at;
}

// --- smtp.rcpt_strip_quotes ------------------------------------------------------------

TEST_P(RelayQuirks, RcptStripQuotesOnOffRetired) {
  const std::string cmds = "RCPT TO:<'bob@example.test'> NOTIFY=NEVER\r\nrcpt to:  <'carol@example.test'>\r\n"
                           "RCPT TO:<dave@example.test>\r\n";
  {
    Relay r(relayContext({Quirk::SmtpRcptStripQuotes}), GetParam());
    r.client(cmds);
    EXPECT_EQ(r.out.up, "RCPT TO:<bob@example.test> NOTIFY=NEVER\r\nrcpt to:  <carol@example.test>\r\n"
                        "RCPT TO:<dave@example.test>\r\n");
    ASSERT_EQ(r.uses(Quirk::SmtpRcptStripQuotes), 2);
    EXPECT_EQ(r.out.quirks[0].detail, "RCPT TO:<'bob@example.test'> -> <bob@example.test>");
    r.backend("250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n");
    EXPECT_EQ(r.out.down, "250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n");
  }
  {
    Relay r(relayContext(), GetParam());
    r.client(cmds);
    EXPECT_EQ(r.out.up, cmds);
    EXPECT_TRUE(r.out.quirks.empty());
  }
  {
    Relay r(relayContext({}, {Quirk::SmtpRcptStripQuotes}, kRetiredEn), GetParam());
    r.client(cmds);
    EXPECT_EQ(r.out.up, cmds);
    ASSERT_EQ(r.uses(Quirk::SmtpRcptStripQuotes), 2);
    EXPECT_EQ(r.out.quirks[1].detail, "retired: RCPT TO:<'carol@example.test'> passed unchanged");
  }
}

// --- smtp.sender_align -------------------------------------------------------------------

TEST_P(RelayQuirks, SenderAlignKeepsParametersByteExact) {
  Relay r(relayContext({Quirk::SmtpSenderAlign}), GetParam());
  r.client("MAIL FROM:<noreply@example.test> SIZE=1234 BODY=8BITMIME RET=HDRS ENVID=QQ+2B1 AUTH=<>\r\n");
  EXPECT_EQ(r.out.up, "MAIL FROM:<alice@example.test> SIZE=1234 BODY=8BITMIME RET=HDRS ENVID=QQ+2B1 AUTH=<>\r\n");
  ASSERT_EQ(r.uses(Quirk::SmtpSenderAlign), 1);
  EXPECT_EQ(r.out.quirks[0].detail, "MAIL FROM:<noreply@example.test> -> <alice@example.test>");
}

TEST_P(RelayQuirks, SenderAlignLeavesNullSenderSameAddressAndHeaderAlone) {
  Relay r(relayContext({Quirk::SmtpSenderAlign}), GetParam());
  const std::string cmds = "MAIL FROM:<>\r\nMAIL FROM:<Alice@Example.TEST> SIZE=10\r\nmail from: <scan@example.test>\r\n"
                           "MAIL FROM:form@example.test BODY=7BIT\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n";
  r.client(cmds);
  EXPECT_EQ(r.out.up, "MAIL FROM:<>\r\nMAIL FROM:<Alice@Example.TEST> SIZE=10\r\nmail from: <alice@example.test>\r\n"
                      "MAIL FROM:<alice@example.test> BODY=7BIT\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
  EXPECT_EQ(r.uses(Quirk::SmtpSenderAlign), 2);
  r.backend("250 a\r\n250 b\r\n250 c\r\n250 d\r\n250 e\r\n354 go\r\n");
  const std::string msg = "From: Scanner <scan@example.test>\r\n\r\nscan\r\n.\r\n";
  r.client(msg);
  EXPECT_TRUE(r.out.up.ends_with("DATA\r\n" + msg));  // header From untouched
}

TEST_P(RelayQuirks, SenderAlignOffRetiredAndNonAddressLogin) {
  const std::string cmd = "MAIL FROM:<noreply@example.test> SIZE=1\r\n";
  {
    Relay r(relayContext(), GetParam());
    r.client(cmd);
    EXPECT_EQ(r.out.up, cmd);
    EXPECT_TRUE(r.out.quirks.empty());
  }
  {
    Relay r(relayContext({}, {Quirk::SmtpSenderAlign}, kRetiredJa), GetParam());
    r.client(cmd);
    EXPECT_EQ(r.out.up, cmd);
    ASSERT_EQ(r.uses(Quirk::SmtpSenderAlign), 1);
    EXPECT_EQ(r.out.quirks[0].detail,
              "retired: MAIL FROM:<noreply@example.test> left unaligned (login <alice@example.test>)");
  }
  {
    auto c = relayContext({Quirk::SmtpSenderAlign});
    c.user = "alice";
    Relay r(c, GetParam());
    r.client(cmd + cmd);
    EXPECT_EQ(r.out.up, cmd + cmd);
    EXPECT_TRUE(r.out.quirks.empty());
    int warns = 0;
    for (const auto& n : r.out.notes) warns += n.text.find("not an address") != std::string::npos;
    EXPECT_EQ(warns, 1);
  }
}

// --- smtp.display_name ------------------------------------------------------------------

const std::string kGoldenIn =
    "Received: from client (client [192.0.2.1])\r\n"
    "\tby mail.example.test; Sat, 1 Jan 2028 00:00:00 +0900\r\n"
    "From: alice@example.test\r\n"
    "To: Bob <bob@example.test>,\r\n"
    " Carol <carol@example.test>\r\n"
    "Subject: =?UTF-8?B?5LiA?= test\r\n"
    "X-Mailer: Microsoft Outlook 16.0\r\n"
    "\r\n"
    "Hello\r\n"
    "From: alice@example.test\r\n"
    "..dot-stuffed line\r\n"
    "\r\n"
    ".\r\n";
std::string goldenOut(std::string_view from_field) {
  std::string s = kGoldenIn;
  const std::string old = "From: alice@example.test\r\n";
  s.replace(s.find(old), old.size(), from_field);
  return s;
}

TEST_P(RelayQuirks, DisplayNameGoldenMessage) {
  auto r = openData(relayContext({Quirk::SmtpDisplayName}), GetParam());
  r->client(kGoldenIn);
  EXPECT_EQ(content(*r), goldenOut("From: Alice Liddell <alice@example.test>\r\n"));
  ASSERT_EQ(r->uses(Quirk::SmtpDisplayName), 1);
  EXPECT_EQ(r->out.quirks[0].detail, "From: <alice@example.test> -> \"Alice Liddell\"");
  EXPECT_EQ(r->info("x-mailer"), "Microsoft Outlook 16.0");
  r->backend("250 2.0.0 Ok: queued as G1\r\n");
  EXPECT_TRUE(r->noteContains("message accepted"));
}

TEST_P(RelayQuirks, DisplayNameOffForwardsByteExactButReportsMailer) {
  auto r = openData(relayContext(), GetParam());
  r->client(kGoldenIn);
  EXPECT_EQ(content(*r), kGoldenIn);
  EXPECT_TRUE(r->out.quirks.empty());
  EXPECT_EQ(r->info("x-mailer"), "Microsoft Outlook 16.0");
}

TEST_P(RelayQuirks, DisplayNameRetiredCountedUnchanged) {
  auto r = openData(relayContext({}, {Quirk::SmtpDisplayName}, kRetiredEn), GetParam());
  r->client(kGoldenIn);
  EXPECT_EQ(content(*r), kGoldenIn);
  ASSERT_EQ(r->uses(Quirk::SmtpDisplayName), 1);
  EXPECT_EQ(r->out.quirks[0].detail, "retired: From: <alice@example.test> has no display name; left unchanged");
}

TEST(RelayQuirksDisplayName, GoldenAtEverySplitPoint) {
  const auto c = relayContext({Quirk::SmtpDisplayName});
  const std::string want = goldenOut("From: Alice Liddell <alice@example.test>\r\n");
  for (size_t at = 0; at <= kGoldenIn.size(); ++at) {
    Outcome o;
    ASSERT_EQ(contentSplitAt(c, kGoldenIn, at, &o), want) << "split at " << at;
    ASSERT_EQ(o.quirks.size(), 1u);
  }
  const std::string ja = "From: yamada@example.test\r\nSubject: s\r\n\r\n.x\r\n.\r\n";
  const std::string ja_want =
      "From: =?UTF-8?B?5bGx55SwIOWkqumDjg==?= <yamada@example.test>\r\nSubject: s\r\n\r\n.x\r\n.\r\n";
  for (size_t at = 0; at <= ja.size(); ++at) ASSERT_EQ(contentSplitAt(c, ja, at), ja_want) << "split at " << at;
}

struct FromCase {
  const char* in;    // the From field as sent
  const char* want;  // as forwarded
};

TEST_P(RelayQuirks, DisplayNameFromForms) {
  const FromCase cases[] = {
      {"From: alice@example.test\r\n", "From: Alice Liddell <alice@example.test>\r\n"},
      {"From: <alice@example.test>\r\n", "From: Alice Liddell <alice@example.test>\r\n"},
      {"From: \"\" <alice@example.test>\r\n", "From: Alice Liddell <alice@example.test>\r\n"},
      {"from:alice@example.test\r\n", "from: Alice Liddell <alice@example.test>\r\n"},
      {"FROM : alice@example.test  \r\n", "FROM: Alice Liddell <alice@example.test>\r\n"},
      {"From:\r\n alice@example.test\r\n", "From: Alice Liddell <alice@example.test>\r\n"},
      {"From: <\r\n\talice@example.test>\r\n", "From: Alice Liddell <alice@example.test>\r\n"},
      {"From: liddell@example.test\r\n", "From: \"Liddell, Alice\" <liddell@example.test>\r\n"},
      {"From: yamada@example.test\r\n", "From: =?UTF-8?B?5bGx55SwIOWkqumDjg==?= <yamada@example.test>\r\n"},
      {"From: Yamada@Example.TEST\r\n", "From: =?UTF-8?B?5bGx55SwIOWkqumDjg==?= <Yamada@Example.TEST>\r\n"},
      // Left alone: a name, a comment, a list, a group, encoded words, odd addresses.
      {"From: Alice <alice@example.test>\r\n", nullptr},
      {"From: \"Alice\" <alice@example.test>\r\n", nullptr},
      {"From: alice@example.test (Alice)\r\n", nullptr},
      {"From: (Alice) alice@example.test\r\n", nullptr},
      {"From: alice@example.test, liddell@example.test\r\n", nullptr},
      {"From: team: alice@example.test;\r\n", nullptr},
      {"From: =?UTF-8?B?5bGx55Sw?= <yamada@example.test>\r\n", nullptr},
      {"From: \"al ice\"@example.test\r\n", nullptr},
      {"From: alice@[192.0.2.1]\r\n", nullptr},
      {"From:\r\n", nullptr},
      // Unknown, or the directory's name is unusable: left alone.
      {"From: nobody@example.test\r\n", nullptr},
      {"From: tab@example.test\r\n", nullptr},
      {"From: blank@example.test\r\n", nullptr},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.in);
    const std::string msg = "Date: Sat, 1 Jan 2028 00:00:00 +0900\r\n"s + tc.in + "Subject: s\r\n\r\nbody\r\n.\r\n";
    auto r = openData(relayContext({Quirk::SmtpDisplayName}), GetParam());
    r->client(msg);
    std::string want = msg;
    if (tc.want) want.replace(want.find(tc.in), std::string(tc.in).size(), tc.want);
    EXPECT_EQ(content(*r), want);
    EXPECT_EQ(r->uses(Quirk::SmtpDisplayName), tc.want ? 1 : 0);
  }
}

TEST_P(RelayQuirks, DisplayNameOnlyTheFirstFromHeader) {
  const std::string two_bare = "From: alice@example.test\r\nFrom: liddell@example.test\r\n\r\nx\r\n.\r\n";
  auto r = openData(relayContext({Quirk::SmtpDisplayName}), GetParam());
  r->client(two_bare);
  EXPECT_EQ(content(*r), "From: Alice Liddell <alice@example.test>\r\nFrom: liddell@example.test\r\n\r\nx\r\n.\r\n");
  EXPECT_EQ(r->uses(Quirk::SmtpDisplayName), 1);
  const std::string named_first = "From: Al <alice@example.test>\r\nFrom: liddell@example.test\r\n\r\nx\r\n.\r\n";
  auto s = openData(relayContext({Quirk::SmtpDisplayName}), GetParam());
  s->client(named_first);
  EXPECT_EQ(content(*s), named_first);
  EXPECT_TRUE(s->out.quirks.empty());
}

TEST_P(RelayQuirks, DisplayNameNeverTouchesTheBody) {
  const std::string msgs[] = {
      "Subject: s\r\n\r\nFrom: alice@example.test\r\n.\r\n",                       // From only in the body
      "Subject: s\r\nnot a header line\r\nFrom: alice@example.test\r\n\r\n.\r\n",  // after a non-header line
      "From alice@example.test Sat Jan  1 00:00:00 2028\r\nFrom: alice@example.test\r\n\r\n.\r\n",  // mbox From_
      " From: alice@example.test\r\n\r\n.\r\n",  // a continuation with nothing to continue
      "hello\r\n.\r\n",
      ".\r\n",
      "..From: alice@example.test\r\n\r\n.\r\n",
  };
  for (const auto& msg : msgs) {
    SCOPED_TRACE(msg);
    auto r = openData(relayContext({Quirk::SmtpDisplayName}), GetParam());
    r->client(msg);
    EXPECT_EQ(content(*r), msg);
    EXPECT_TRUE(r->out.quirks.empty());
  }
}

TEST_P(RelayQuirks, DisplayNameHeaderOnlyMessage) {
  auto r = openData(relayContext({Quirk::SmtpDisplayName}), GetParam());
  r->client("Subject: s\r\nFrom: alice@example.test\r\n.\r\n");
  EXPECT_EQ(content(*r), "Subject: s\r\nFrom: Alice Liddell <alice@example.test>\r\n.\r\n");
}

TEST_P(RelayQuirks, DisplayNameHeaderBlockBound) {
  const std::string header = "From: alice@example.test\r\nSubject: bound\r\n\r\n";
  const std::string msg = header + "body\r\n.\r\n";
  {
    auto c = relayContext({Quirk::SmtpDisplayName});
    c.max_header_bytes = header.size();  // exactly at the bound: processed
    auto r = openData(c, GetParam());
    r->client(msg);
    EXPECT_EQ(content(*r), "From: Alice Liddell <alice@example.test>\r\nSubject: bound\r\n\r\nbody\r\n.\r\n");
  }
  {
    auto c = relayContext({Quirk::SmtpDisplayName});
    c.max_header_bytes = header.size() - 1;  // one byte over: unchanged
    auto r = openData(c, GetParam());
    r->client(msg);
    EXPECT_EQ(content(*r), msg);
    EXPECT_TRUE(r->out.quirks.empty());
    EXPECT_TRUE(r->noteContains("header section larger than"));
    r->backend("250 2.0.0 Ok: queued as B\r\n");
    EXPECT_TRUE(r->noteContains("message accepted"));
  }
}

TEST(RelayQuirksDisplayName, LargeHeaderStreamsOnAndNextMessageIsProcessed) {
  auto c = relayContext({Quirk::SmtpDisplayName});
  c.max_header_bytes = 1024;
  SmtpRelayFilter f(c);
  Outcome o;
  o.add(f.onDownstreamData("DATA\r\n"));
  o.add(f.onUpstreamData("354 go\r\n"));
  std::string big = "From: alice@example.test\r\n";
  for (int i = 0; i < 100; ++i) big += "X-Filler-" + std::to_string(i) + ": 0123456789012345678901234567890123\r\n";
  big += "\r\nbody\r\n";
  o.add(f.onDownstreamData(big));
  EXPECT_EQ(o.up, "DATA\r\n" + big);  // flushed once over the bound, not held
  o.add(f.onDownstreamData(".\r\nDATA\r\n"));
  o.add(f.onUpstreamData("250 2.0.0 Ok: queued as L1\r\n354 go\r\n"));
  o.add(f.onDownstreamData("From: alice@example.test\r\n\r\nb\r\n.\r\n"));
  EXPECT_TRUE(o.up.ends_with("DATA\r\nFrom: Alice Liddell <alice@example.test>\r\n\r\nb\r\n.\r\n"));
  EXPECT_EQ(o.quirks.size(), 1u);
}

TEST_P(RelayQuirks, DisplayNameFallbackToLocalPart) {
  auto c = relayContext({Quirk::SmtpDisplayName});
  c.display_name_fallback_local_part = true;
  auto r = openData(c, GetParam());
  r->client("From: john.smith@other.test\r\n\r\nx\r\n.\r\n");
  EXPECT_EQ(content(*r), "From: \"john.smith\" <john.smith@other.test>\r\n\r\nx\r\n.\r\n");
  ASSERT_EQ(r->uses(Quirk::SmtpDisplayName), 1);
  EXPECT_EQ(r->out.quirks[0].detail, "From: <john.smith@other.test> -> \"john.smith\" (local part)");
  // Without a directory at all the fallback still works; without both, nothing.
  c.directory = nullptr;
  auto s = openData(c, GetParam());
  s->client("From: scan@example.test\r\n\r\nx\r\n.\r\n");
  EXPECT_EQ(content(*s), "From: scan <scan@example.test>\r\n\r\nx\r\n.\r\n");
  c.display_name_fallback_local_part = false;
  auto t = openData(c, GetParam());
  t->client("From: scan@example.test\r\n\r\nx\r\n.\r\n");
  EXPECT_EQ(content(*t), "From: scan@example.test\r\n\r\nx\r\n.\r\n");
  EXPECT_TRUE(t->noteContains("no name known for <scan@example.test>"));
}

TEST_P(RelayQuirks, DisplayNameLongJapaneseNameIsFoldedEncodedWords) {
  auto r = openData(relayContext({Quirk::SmtpDisplayName}), GetParam());
  r->client("Subject: s\r\nFrom: jugemu@example.test\r\nTo: x@example.test\r\n\r\nx\r\n.\r\n");
  const std::string up = content(*r);
  ASSERT_TRUE(up.starts_with("Subject: s\r\nFrom: =?UTF-8?B?"));
  const size_t from = up.find("From: ");
  const size_t to = up.find("To: x@example.test\r\n\r\nx\r\n.\r\n");
  ASSERT_NE(to, std::string::npos);
  const std::string field = up.substr(from, to - from);
  // Lines of at most 78 characters, continuation lines start with a space.
  std::string decoded;
  size_t pos = 0;
  int lines = 0;
  while (pos < field.size()) {
    size_t end = field.find("\r\n", pos);
    ASSERT_NE(end, std::string::npos);
    std::string line = field.substr(pos, end - pos);
    EXPECT_LE(line.size(), 78u) << line;
    if (lines++ > 0) {
      EXPECT_EQ(line[0], ' ');
    }
    std::string word = line.substr(line[0] == ' ' ? 1 : 6);
    if (word.starts_with("=?")) {
      size_t sp = word.find(' ');
      std::string w = word.substr(0, sp);
      EXPECT_LE(w.size(), 75u);
      auto d = rfc2047::decodeWord(w);
      ASSERT_TRUE(d);
      EXPECT_TRUE(rfc2047::isValidUtf8(*d));  // whole characters in each word
      decoded += *d;
    }
    pos = end + 2;
  }
  EXPECT_GT(lines, 3);
  EXPECT_EQ(decoded, kJugemu);
  EXPECT_TRUE(field.ends_with(" <jugemu@example.test>\r\n"));
}

TEST_P(RelayQuirks, DisplayNameWithBareLfQuirk) {
  auto r = openData(relayContext({Quirk::SmtpDisplayName, Quirk::SmtpBareLf}), GetParam());
  r->client("From: alice@example.test\nSubject: x\n\nbody\n.\n");
  EXPECT_EQ(content(*r), "From: Alice Liddell <alice@example.test>\r\nSubject: x\r\n\r\nbody\r\n.\r\n");
  EXPECT_EQ(r->uses(Quirk::SmtpDisplayName), 1);
  EXPECT_EQ(r->uses(Quirk::SmtpBareLf), 1);
}

TEST_P(RelayQuirks, DisplayNameTwoMessagesOneSession) {
  Relay r(relayContext({Quirk::SmtpDisplayName}), GetParam());
  r.client("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
  r.backend("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
  r.client("From: alice@example.test\r\n\r\none\r\n.\r\nMAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
           "DATA\r\n");
  r.backend("250 2.0.0 Ok: queued as M1\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
  r.client("From: <alice@example.test>\r\nUser-Agent: Thunderbird\r\n\r\ntwo\r\n.\r\n");
  r.backend("250 2.0.0 Ok: queued as M2\r\n");
  EXPECT_EQ(r.out.up, "MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
                      "From: Alice Liddell <alice@example.test>\r\n\r\none\r\n.\r\n"
                      "MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
                      "From: Alice Liddell <alice@example.test>\r\nUser-Agent: Thunderbird\r\n\r\ntwo\r\n.\r\n");
  EXPECT_EQ(r.uses(Quirk::SmtpDisplayName), 2);
  EXPECT_EQ(r.info("user-agent"), "Thunderbird");
}

TEST_P(RelayQuirks, MailerAndAgentSanitisedAndBounded) {
  auto r = openData(relayContext(), GetParam());
  const std::string long_value(500, 'v');
  r->client("User-Agent: Mozilla/5.0\r\n\t(Windows NT 10.0)\x01 Thunderbird/115\r\nX-Mailer: " + long_value +
            "\r\nX-Mailer: second\r\n\r\nX-Mailer: body\r\n.\r\n");
  EXPECT_EQ(r->info("user-agent"), "Mozilla/5.0 (Windows NT 10.0)? Thunderbird/115");
  EXPECT_EQ(r->info("x-mailer"), std::string(200, 'v'));
  EXPECT_EQ(r->out.infos.size(), 2u);
}

TEST_P(RelayQuirks, BdatContentIsNotRewritten) {
  Relay r(relayContext({Quirk::SmtpDisplayName}), GetParam());
  const std::string chunk = "From: alice@example.test\r\n\r\nx\n";
  r.client("BDAT " + std::to_string(chunk.size()) + " LAST\r\n" + chunk);
  EXPECT_EQ(r.out.up, r.client_bytes);
  EXPECT_TRUE(r.out.quirks.empty());
  EXPECT_FALSE(r.out.close);
}

INSTANTIATE_TEST_SUITE_P(Splits, RelayQuirks, ::testing::ValuesIn(testing::kAllSplits),
                         [](const auto& info) { return std::string(testing::splitName(info.param)); });

}  // namespace
}  // namespace mailshim::proto::smtp
