// Transcript tests for the SMTP front phase's quirks added with the quirk
// engine: smtp.auth_equals, smtp.helo_only (and the strict default that
// refuses STARTTLS/AUTH after HELO), and retired quirks (plaintext_auth,
// smtp.helo_normalize, smtp.auth_equals, smtp.helo_only) with the admin's
// message in English and Japanese. Each quirk ON and OFF, every input whole,
// byte by byte and at random splits. No I/O.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "protocols/common/base64.h"
#include "protocols/smtp/smtp.h"
#include "tests/unit/phase_harness.h"

namespace mailshim::proto::smtp {
namespace {

using namespace std::string_literals;
using testing::Outcome;
using testing::Split;

const std::string kRetiredEn =
    "Plain-text login was retired on 2027-03-31. Set your mail program to SSL/TLS on port 465: "
    "https://help.example.test/mail";
const std::string kRetiredJa =
    "平文ログインは2027年3月31日に廃止されました。メールソフトで SSL/TLS（ポート465）を選んでください: "
    "https://help.example.test/mail";

const std::string kEhloTls =
    "250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 15728640\r\n250-AUTH PLAIN LOGIN\r\n"
    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 DSN\r\n";
const std::string kEhloTlsAuthEquals =
    "250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 15728640\r\n250-AUTH PLAIN LOGIN\r\n"
    "250-AUTH=PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 DSN\r\n";
const std::string kEhloPlain =
    "250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 15728640\r\n250-STARTTLS\r\n"
    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 DSN\r\n";
const std::string kEhloFirst = "503 5.5.1 Error: send EHLO first (STARTTLS and AUTH are ESMTP extensions)\r\n";

std::string plainIr(std::string_view user, std::string_view pass) {
  return base64Encode("\0"s + std::string(user) + "\0"s + std::string(pass));
}

struct Front {
  Front(SessionContext c, Split s) : split(s), phase(makeSmtpFrontPhase(c)) {
    out.add(phase->start());
    mark = out.down.size();
  }
  // Sends client bytes; returns what the phase answered to them.
  std::string send(std::string_view bytes) {
    testing::feedSplit(bytes, split, seed++, [this](std::string_view b) { return phase->onDownstreamData(b); }, out);
    std::string d = out.down.substr(mark);
    mark = out.down.size();
    return d;
  }
  int uses(Quirk q) const {
    int n = 0;
    for (const auto& u : out.quirks) n += u.quirk == q;
    return n;
  }
  Split split;
  uint32_t seed = 5;
  std::unique_ptr<FrontPhase> phase;
  Outcome out;
  size_t mark = 0;
};

SessionContext ctx(bool tls, std::initializer_list<Quirk> on = {}, std::initializer_list<Quirk> retired = {},
                   std::string message = {}) {
  auto c = testing::defaultContext();
  c.client_tls = tls;
  for (Quirk q : on) c.quirks.add(q);
  for (Quirk q : retired) c.retired_quirks.add(q);
  c.retired_message = std::move(message);
  return c;
}

class SmtpFrontQuirks : public ::testing::TestWithParam<Split> {};

// --- smtp.auth_equals -----------------------------------------------------------

TEST_P(SmtpFrontQuirks, AuthEqualsOffByDefault) {
  Front f(ctx(true), GetParam());
  EXPECT_EQ(f.send("EHLO oe4.example.org\r\n"), kEhloTls);
  EXPECT_TRUE(f.out.quirks.empty());
}

TEST_P(SmtpFrontQuirks, AuthEqualsOnAddsLineOncePerEhlo) {
  Front f(ctx(true, {Quirk::SmtpAuthEquals}), GetParam());
  EXPECT_EQ(f.send("EHLO oe4.example.org\r\n"), kEhloTlsAuthEquals);
  EXPECT_EQ(f.uses(Quirk::SmtpAuthEquals), 1);
  EXPECT_EQ(f.out.quirks[0].detail, "EHLO lists AUTH=PLAIN LOGIN");
  EXPECT_EQ(f.send("NOOP\r\nEHLO oe4.example.org\r\n"), "250 2.0.0 Ok\r\n" + kEhloTlsAuthEquals);
  EXPECT_EQ(f.uses(Quirk::SmtpAuthEquals), 2);
  // HELO shows no capabilities: no use.
  f.send("HELO oe4.example.org\r\n");
  EXPECT_EQ(f.uses(Quirk::SmtpAuthEquals), 2);
}

TEST_P(SmtpFrontQuirks, AuthEqualsNotShownWhenAuthIsNot) {
  // Plaintext without plaintext_auth: no AUTH line, so no AUTH= line either.
  Front f(ctx(false, {Quirk::SmtpAuthEquals}), GetParam());
  EXPECT_EQ(f.send("EHLO oe4.example.org\r\n"), kEhloPlain);
  EXPECT_TRUE(f.out.quirks.empty());
  // With plaintext_auth it is shown on plaintext too.
  Front g(ctx(false, {Quirk::SmtpAuthEquals, Quirk::PlaintextAuth}), GetParam());
  EXPECT_EQ(g.send("EHLO oe4.example.org\r\n"),
            "250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 15728640\r\n250-STARTTLS\r\n"
            "250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 DSN\r\n");
  EXPECT_EQ(g.uses(Quirk::SmtpAuthEquals), 1);
}

TEST_P(SmtpFrontQuirks, AuthEqualsRetiredIsCountedNotShown) {
  Front f(ctx(true, {}, {Quirk::SmtpAuthEquals}, kRetiredEn), GetParam());
  EXPECT_EQ(f.send("EHLO oe4.example.org\r\n"), kEhloTls);
  ASSERT_EQ(f.out.quirks.size(), 1u);
  EXPECT_EQ(f.out.quirks[0].quirk, Quirk::SmtpAuthEquals);
  EXPECT_EQ(f.out.quirks[0].detail, "retired: AUTH=PLAIN LOGIN not listed");
}

// --- smtp.helo_only ---------------------------------------------------------------

TEST_P(SmtpFrontQuirks, HeloThenAuthRefusedByDefault) {
  Front f(ctx(true), GetParam());
  EXPECT_EQ(f.send("HELO printer\r\n"), "250 mail.example.test\r\n");
  EXPECT_EQ(f.send("AUTH PLAIN " + plainIr("scan@example.test", "pw") + "\r\nAUTH LOGIN\r\n"), kEhloFirst + kEhloFirst);
  EXPECT_TRUE(f.out.auths.empty());
  EXPECT_TRUE(f.out.quirks.empty());
  // EHLO makes it an ESMTP session: AUTH works.
  f.send("EHLO printer.example.org\r\nAUTH PLAIN " + plainIr("scan@example.test", "pw") + "\r\n");
  ASSERT_EQ(f.out.auths.size(), 1u);
  EXPECT_TRUE(f.out.auths[0].esmtp);
}

TEST_P(SmtpFrontQuirks, HeloThenStarttlsRefusedByDefault) {
  Front f(ctx(false), GetParam());
  EXPECT_EQ(f.send("HELO printer\r\nSTARTTLS\r\n"), "250 mail.example.test\r\n" + kEhloFirst);
  EXPECT_EQ(f.out.starttls_down, 0);
  // No HELO at all: STARTTLS is still accepted (unchanged).
  Front g(ctx(false), GetParam());
  EXPECT_EQ(g.send("STARTTLS\r\n"), "220 2.0.0 Ready to start TLS\r\n");
  EXPECT_EQ(g.out.starttls_down, 1);
}

TEST_P(SmtpFrontQuirks, HeloOnlyAcceptsStarttlsAndAuthAfterHelo) {
  Front f(ctx(false, {Quirk::SmtpHeloOnly}), GetParam());
  EXPECT_EQ(f.send("HELO printer\r\nSTARTTLS\r\n"), "250 mail.example.test\r\n220 2.0.0 Ready to start TLS\r\n");
  EXPECT_EQ(f.out.starttls_down, 1);
  ASSERT_EQ(f.uses(Quirk::SmtpHeloOnly), 1);
  EXPECT_EQ(f.out.quirks[0].detail, "STARTTLS after HELO");
  f.out.add(f.phase->onDownstreamTls());
  // State is forgotten after TLS: the printer says HELO again.
  EXPECT_EQ(f.send("HELO printer\r\nAUTH LOGIN\r\n"), "250 mail.example.test\r\n334 VXNlcm5hbWU6\r\n");
  f.send(base64Encode("scan@example.test") + "\r\n" + base64Encode("pw") + "\r\n");
  ASSERT_EQ(f.out.auths.size(), 1u);
  EXPECT_TRUE(f.out.auths[0].esmtp);  // XCLIENT PROTO=ESMTP
  EXPECT_EQ(f.out.auths[0].helo, "printer");
  ASSERT_EQ(f.uses(Quirk::SmtpHeloOnly), 2);
  EXPECT_EQ(f.out.quirks[1].detail, "AUTH after HELO");
}

TEST_P(SmtpFrontQuirks, HeloOnlyNotUsedAfterEhlo) {
  Front f(ctx(true, {Quirk::SmtpHeloOnly}), GetParam());
  f.send("EHLO printer.example.org\r\nAUTH PLAIN " + plainIr("scan@example.test", "pw") + "\r\n");
  ASSERT_EQ(f.out.auths.size(), 1u);
  EXPECT_TRUE(f.out.quirks.empty());
}

TEST_P(SmtpFrontQuirks, HeloOnlyStillNeedsPlaintextAuth) {
  Front f(ctx(false, {Quirk::SmtpHeloOnly}), GetParam());
  EXPECT_EQ(f.send("HELO printer\r\nAUTH PLAIN " + plainIr("scan@example.test", "pw") + "\r\n"),
            "250 mail.example.test\r\n530 5.7.0 Must issue a STARTTLS command first\r\n");
  EXPECT_TRUE(f.out.auths.empty());
  EXPECT_TRUE(f.out.quirks.empty());  // the AUTH was not accepted: no use
  Front g(ctx(false, {Quirk::SmtpHeloOnly, Quirk::PlaintextAuth}), GetParam());
  g.send("HELO printer\r\nAUTH PLAIN " + plainIr("scan@example.test", "pw") + "\r\n");
  ASSERT_EQ(g.out.auths.size(), 1u);
  EXPECT_TRUE(g.out.auths[0].esmtp);
  EXPECT_EQ(g.uses(Quirk::SmtpHeloOnly), 1);
  EXPECT_EQ(g.uses(Quirk::PlaintextAuth), 1);
}

TEST_P(SmtpFrontQuirks, HeloOnlyRetiredCarriesMessage) {
  for (const std::string& msg : {kRetiredEn, kRetiredJa}) {
    Front f(ctx(true, {}, {Quirk::SmtpHeloOnly}, msg), GetParam());
    EXPECT_EQ(f.send("HELO printer\r\nAUTH LOGIN\r\n"), "250 mail.example.test\r\n503 5.5.1 " + msg + "\r\n");
    ASSERT_EQ(f.out.quirks.size(), 1u);
    EXPECT_EQ(f.out.quirks[0].quirk, Quirk::SmtpHeloOnly);
    EXPECT_EQ(f.out.quirks[0].detail, "retired: AUTH after HELO refused");
    EXPECT_TRUE(f.out.auths.empty());
  }
  Front g(ctx(false, {}, {Quirk::SmtpHeloOnly}, kRetiredJa), GetParam());
  EXPECT_EQ(g.send("HELO printer\r\nSTARTTLS\r\n"), "250 mail.example.test\r\n503 5.5.1 " + kRetiredJa + "\r\n");
  EXPECT_EQ(g.out.starttls_down, 0);
  EXPECT_EQ(g.out.quirks[0].detail, "retired: STARTTLS after HELO refused");
}

// --- retired plaintext_auth -------------------------------------------------------

TEST_P(SmtpFrontQuirks, PlaintextAuthRetiredCarriesMessageNeverCollects) {
  for (const std::string& msg : {kRetiredEn, kRetiredJa}) {
    Front f(ctx(false, {}, {Quirk::PlaintextAuth}, msg), GetParam());
    // Invariant 5 holds: AUTH is still not advertised on plaintext.
    EXPECT_EQ(f.send("EHLO WIN7-PC\r\n"), kEhloPlain);
    EXPECT_EQ(f.send("AUTH PLAIN " + plainIr("bob@example.test", "secret") + "\r\nAUTH LOGIN\r\n"),
              "530 5.7.0 " + msg + "\r\n530 5.7.0 " + msg + "\r\n");
    EXPECT_TRUE(f.out.auths.empty());
    EXPECT_TRUE(f.out.users.empty());
    ASSERT_EQ(f.out.quirks.size(), 2u);
    for (const auto& u : f.out.quirks) {
      EXPECT_EQ(u.quirk, Quirk::PlaintextAuth);
      EXPECT_EQ(u.detail, "retired: AUTH without TLS refused");
    }
    // A client that skips AUTH and goes for MAIL gets the message too.
    EXPECT_EQ(f.send("MAIL FROM:<bob@example.test>\r\nRCPT TO:<x@example.test>\r\n"),
              "530 5.7.0 " + msg + "\r\n530 5.7.0 Must issue a STARTTLS command first\r\n");
    EXPECT_EQ(f.uses(Quirk::PlaintextAuth), 3);
  }
}

TEST_P(SmtpFrontQuirks, PlaintextAuthRetiredWithoutMessageUsesStandardText) {
  Front f(ctx(false, {}, {Quirk::PlaintextAuth}), GetParam());
  f.send("EHLO WIN7-PC\r\n");
  EXPECT_EQ(f.send("AUTH LOGIN\r\n"), "530 5.7.0 Must issue a STARTTLS command first\r\n");
  EXPECT_EQ(f.uses(Quirk::PlaintextAuth), 1);
}

TEST_P(SmtpFrontQuirks, PlaintextAuthRetiredDoesNotTouchTls) {
  Front f(ctx(true, {}, {Quirk::PlaintextAuth}, kRetiredEn), GetParam());
  f.send("EHLO c.example.org\r\nAUTH PLAIN " + plainIr("bob@example.test", "pw") + "\r\n");
  ASSERT_EQ(f.out.auths.size(), 1u);
  EXPECT_TRUE(f.out.quirks.empty());
}

TEST_P(SmtpFrontQuirks, HeloNormalizeRetiredPassesUnchangedAndCounts) {
  auto c = ctx(true, {}, {Quirk::SmtpHeloNormalize}, kRetiredEn);
  c.client_ip = "127.0.0.2";
  Front f(c, GetParam());
  f.send("EHLO WIN7-PC\r\nEHLO mail.example.org\r\nEHLO WIN7-PC\r\nAUTH PLAIN " + plainIr("u@example.test", "pw") +
         "\r\n");
  ASSERT_EQ(f.out.auths.size(), 1u);
  EXPECT_EQ(f.out.auths[0].helo, "WIN7-PC");
  ASSERT_EQ(f.out.quirks.size(), 2u);
  EXPECT_EQ(f.out.quirks[0].detail, "retired: helo=WIN7-PC passed unchanged");
}

INSTANTIATE_TEST_SUITE_P(Splits, SmtpFrontQuirks, ::testing::ValuesIn(testing::kAllSplits),
                         [](const auto& info) { return std::string(testing::splitName(info.param)); });

}  // namespace
}  // namespace mailshim::proto::smtp
