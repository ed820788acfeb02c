// Transcript tests for SmtpFrontPhase: greeting, EHLO/HELO, STARTTLS (incl.
// the command-injection discard and state reset), AUTH PLAIN/LOGIN, the
// plaintext_auth and smtp.helo_normalize quirks, pipelining, login results,
// error limits and timeouts. Every client input is fed whole, byte by byte
// and at random split points. No I/O.
#include "protocols/smtp/smtp_front_phase.h"

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

const std::string kGreeting = "220 mail.example.test ESMTP\r\n";
const std::string kEhloPlain =
    "250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 15728640\r\n250-STARTTLS\r\n"
    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 DSN\r\n";
const std::string kEhloTls =
    "250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 15728640\r\n250-AUTH PLAIN LOGIN\r\n"
    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 DSN\r\n";
const std::string kEhloPlainQuirk =
    "250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 15728640\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n"
    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 DSN\r\n";
const std::string kBobPass = "b0b pa\"ss\\wd";

std::string plainIr(std::string_view user, std::string_view pass) {
  return base64Encode("\0"s + std::string(user) + "\0"s + std::string(pass));
}

// One front phase plus everything it has emitted so far.
struct Front {
  explicit Front(SessionContext c, Split s = Split::Whole, uint32_t seed = 1)
      : ctx(std::move(c)), split(s), rng_seed(seed), phase(makeSmtpFrontPhase(ctx)) {
    out.add(phase->start());
  }
  void send(std::string_view client_bytes) {
    testing::feedSplit(client_bytes, split, rng_seed++,
                       [this](std::string_view b) { return phase->onDownstreamData(b); }, out);
  }
  void tlsUp() { out.add(phase->onDownstreamTls()); }
  void result(LoginResult::Kind kind, std::string code = {}, std::string text = {}) {
    LoginResult r;
    r.kind = kind;
    r.code = std::move(code);
    r.text = std::move(text);
    out.add(phase->onLoginResult(r));
  }
  // Downstream bytes emitted after the mark.
  std::string downSinceMark() const { return out.down.substr(mark_); }
  void mark() { mark_ = out.down.size(); }

  SessionContext ctx;
  Split split;
  uint32_t rng_seed;
  std::unique_ptr<FrontPhase> phase;
  Outcome out;
  size_t mark_ = 0;
};

SessionContext tlsContext() {
  auto c = testing::defaultContext();
  c.client_tls = true;
  return c;
}

SessionContext quirkContext(Quirk q) {
  auto c = testing::defaultContext();
  c.quirks.add(q);
  return c;
}

class SmtpFront : public ::testing::TestWithParam<Split> {
 protected:
  Front make(SessionContext c) { return Front(std::move(c), GetParam(), 11); }
};

TEST_P(SmtpFront, GreetingArmsTimer) {
  auto f = make(testing::defaultContext());
  EXPECT_EQ(f.out.down, kGreeting);
  EXPECT_EQ(f.out.timers, std::vector<uint32_t>{60000});
  EXPECT_FALSE(f.out.close);
}

TEST_P(SmtpFront, EhloPlaintextOffersStarttlsNotAuth) {
  auto f = make(testing::defaultContext());
  f.send("EHLO client.example.org\r\n");
  EXPECT_EQ(f.out.down, kGreeting + kEhloPlain);
  ASSERT_EQ(f.out.infos.size(), 1u);
  EXPECT_EQ(f.out.infos[0].key, "helo");
  EXPECT_EQ(f.out.infos[0].value, "client.example.org");
}

TEST_P(SmtpFront, EhloWithPlaintextAuthQuirkOffersAuth) {
  auto f = make(quirkContext(Quirk::PlaintextAuth));
  f.send("EHLO client.example.org\r\n");
  EXPECT_EQ(f.out.down, kGreeting + kEhloPlainQuirk);
}

TEST_P(SmtpFront, EhloOnImplicitTlsOffersAuthNotStarttls) {
  auto f = make(tlsContext());
  f.send("ehlo client.example.org\r\n");
  EXPECT_EQ(f.out.down, kGreeting + kEhloTls);
}

TEST_P(SmtpFront, EhloWithoutSizeAndStarttls) {
  auto c = testing::defaultContext();
  c.max_message_bytes = 0;
  c.starttls_available = false;
  auto f = make(c);
  f.send("EHLO x.example.org\r\n");
  EXPECT_EQ(f.out.down, kGreeting +
                            "250-mail.example.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n"
                            "250-8BITMIME\r\n250 DSN\r\n");
}

TEST_P(SmtpFront, HeloAndMissingArguments) {
  auto f = make(testing::defaultContext());
  f.send("HELO printer.example.org\r\nEHLO\r\nHELO \r\n");
  EXPECT_EQ(f.out.down, kGreeting + "250 mail.example.test\r\n501 5.5.4 Syntax: EHLO hostname\r\n" +
                            "501 5.5.4 Syntax: HELO hostname\r\n");
}

TEST_P(SmtpFront, HeloControlBytesSanitised) {
  auto f = make(tlsContext());
  f.send("EHLO \x01\xc3\xa9x trailing words\r\n");
  ASSERT_EQ(f.out.infos.size(), 1u);
  EXPECT_EQ(f.out.infos[0].value, "???x");
}

TEST_P(SmtpFront, ModernClientStarttlsEhloAuthPlain) {
  auto f = make(testing::defaultContext());
  f.send("EHLO client.example.org\r\n");
  f.send("STARTTLS\r\n");
  EXPECT_EQ(f.out.down, kGreeting + kEhloPlain + "220 2.0.0 Ready to start TLS\r\n");
  EXPECT_EQ(f.out.starttls_down, 1);
  f.tlsUp();
  f.send("EHLO client.example.org\r\n");
  f.send("AUTH PLAIN " + plainIr("bob@example.com", kBobPass) + "\r\n");
  EXPECT_EQ(f.out.down, kGreeting + kEhloPlain + "220 2.0.0 Ready to start TLS\r\n" + kEhloTls);
  ASSERT_EQ(f.out.auths.size(), 1u);
  const auto& a = f.out.auths[0];
  EXPECT_EQ(a.creds.user, "bob@example.com");
  EXPECT_EQ(a.creds.password.reveal(), kBobPass);
  EXPECT_EQ(a.creds.method, AuthMethod::Plain);
  EXPECT_EQ(a.helo, "client.example.org");
  EXPECT_TRUE(a.esmtp);
  EXPECT_EQ(f.out.users, std::vector<std::string>{"bob@example.com"});
  EXPECT_TRUE(f.out.quirks.empty());

  f.result(LoginResult::Kind::Ok, "235", "2.7.0 Authentication successful");
  EXPECT_TRUE(f.out.down.ends_with("235 2.7.0 Authentication successful\r\n"));
  ASSERT_TRUE(f.out.relay);
  EXPECT_EQ(f.out.relay->to_upstream, "");
  EXPECT_EQ(f.out.trace.back(), "RELAY");
  // The phase is done: nothing more comes out of it.
  EXPECT_TRUE(f.phase->onDownstreamData("NOOP\r\n").empty());
  EXPECT_TRUE(f.phase->onTimeout().empty());
}

TEST_P(SmtpFront, AuthPlainWithoutInitialResponse) {
  auto f = make(tlsContext());
  f.send("EHLO c.example.org\r\nAUTH PLAIN\r\n");
  EXPECT_TRUE(f.out.down.ends_with("250 DSN\r\n334 \r\n"));
  EXPECT_TRUE(f.out.auths.empty());
  f.send(plainIr("alice@example.com", "pw") + "\r\n");
  ASSERT_EQ(f.out.auths.size(), 1u);
  EXPECT_EQ(f.out.auths[0].creds.user, "alice@example.com");
  EXPECT_EQ(f.out.auths[0].creds.password.reveal(), "pw");
}

TEST_P(SmtpFront, AuthPlainEmptyInitialResponseIsUndecodable) {
  auto f = make(tlsContext());
  f.send("EHLO c.example.org\r\n");
  f.mark();
  f.send("AUTH PLAIN =\r\n");
  EXPECT_EQ(f.downSinceMark(), "501 5.5.2 Cannot decode response\r\n");
  EXPECT_TRUE(f.out.auths.empty());
}

TEST_P(SmtpFront, AuthLoginExactPrompts) {
  auto f = make(tlsContext());
  f.send("EHLO XC-B8C463\r\n");
  f.mark();
  f.send("auth login\r\n");
  EXPECT_EQ(f.downSinceMark(), "334 VXNlcm5hbWU6\r\n");
  f.send(base64Encode("scanner@example.com") + "\r\n");
  EXPECT_EQ(f.downSinceMark(), "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n");
  EXPECT_TRUE(f.out.auths.empty());
  f.send(base64Encode(kBobPass) + "\r\n");
  ASSERT_EQ(f.out.auths.size(), 1u);
  EXPECT_EQ(f.out.auths[0].creds.user, "scanner@example.com");
  EXPECT_EQ(f.out.auths[0].creds.password.reveal(), kBobPass);
  EXPECT_EQ(f.out.auths[0].creds.method, AuthMethod::Login);
  EXPECT_EQ(f.downSinceMark(), "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n");
}

TEST_P(SmtpFront, AuthLoginWithInitialUserName) {
  auto f = make(tlsContext());
  f.send("EHLO app.example.org\r\n");
  f.mark();
  f.send("AUTH LOGIN " + base64Encode("web@example.com") + "\r\n");
  EXPECT_EQ(f.downSinceMark(), "334 UGFzc3dvcmQ6\r\n");
  f.send(base64Encode("pw") + "\r\n");
  ASSERT_EQ(f.out.auths.size(), 1u);
  EXPECT_EQ(f.out.auths[0].creds.user, "web@example.com");
}

TEST_P(SmtpFront, AuthCancelAndUndecodable) {
  auto f = make(tlsContext());
  f.send("EHLO c.example.org\r\n");
  f.mark();
  f.send("AUTH LOGIN\r\n*\r\nAUTH PLAIN\r\n*\r\nAUTH LOGIN\r\n!!!!\r\nAUTH PLAIN not-base64\r\n");
  EXPECT_EQ(f.downSinceMark(),
            "334 VXNlcm5hbWU6\r\n501 5.7.0 Authentication aborted\r\n"
            "334 \r\n501 5.7.0 Authentication aborted\r\n"
            "334 VXNlcm5hbWU6\r\n501 5.5.2 Cannot decode response\r\n"
            "501 5.5.2 Cannot decode response\r\n");
  EXPECT_TRUE(f.out.auths.empty());
  EXPECT_FALSE(f.out.close);
}

TEST_P(SmtpFront, AuthPasswordWithLineBreakRefused) {
  auto f = make(tlsContext());
  f.send("EHLO c.example.org\r\n");
  f.mark();
  f.send("AUTH PLAIN " + plainIr("u@example.com", "a\r\nb") + "\r\n");
  EXPECT_EQ(f.downSinceMark(), "501 5.5.2 Cannot decode response\r\n");
  EXPECT_TRUE(f.out.auths.empty());
}

TEST_P(SmtpFront, AuthOrderingErrors) {
  auto f = make(tlsContext());
  f.send("AUTH PLAIN " + plainIr("u@example.com", "pw") + "\r\n");
  f.send("EHLO c.example.org\r\nAUTH CRAM-MD5\r\nAUTH\r\nAUTH PLAIN a b\r\n");
  EXPECT_EQ(f.out.down, kGreeting + "503 5.5.1 Error: send HELO/EHLO first\r\n" + kEhloTls +
                            "504 5.5.4 Unsupported authentication mechanism\r\n"
                            "501 5.5.4 Syntax: AUTH mechanism\r\n501 5.5.4 Syntax: AUTH mechanism\r\n");
  EXPECT_TRUE(f.out.auths.empty());
}

TEST_P(SmtpFront, PlaintextAuthRefusedWithoutQuirk) {
  auto f = make(testing::defaultContext());
  f.send("EHLO WIN7-PC\r\n");
  f.mark();
  f.send("AUTH PLAIN " + plainIr("bob@example.com", kBobPass) + "\r\nAUTH LOGIN\r\n");
  EXPECT_EQ(f.downSinceMark(), "530 5.7.0 Must issue a STARTTLS command first\r\n"
                               "530 5.7.0 Must issue a STARTTLS command first\r\n");
  EXPECT_TRUE(f.out.auths.empty());
  EXPECT_TRUE(f.out.users.empty());
  EXPECT_TRUE(f.out.quirks.empty());
}

TEST_P(SmtpFront, PlaintextAuthAllowedWithQuirk) {
  auto f = make(quirkContext(Quirk::PlaintextAuth));
  f.send("EHLO WIN7-PC\r\n");
  f.send("AUTH LOGIN\r\n" + base64Encode("bob@example.com") + "\r\n" + base64Encode(kBobPass) + "\r\n");
  ASSERT_EQ(f.out.auths.size(), 1u);
  EXPECT_EQ(f.out.auths[0].creds.user, "bob@example.com");
  ASSERT_EQ(f.out.quirks.size(), 1u);
  EXPECT_EQ(f.out.quirks[0].quirk, Quirk::PlaintextAuth);
  EXPECT_EQ(f.out.quirks[0].detail, "AUTH LOGIN without TLS");
  // No helo_normalize quirk: the argument goes on unchanged.
  EXPECT_EQ(f.out.auths[0].helo, "WIN7-PC");
}

TEST_P(SmtpFront, PlaintextAuthQuirkNotReportedOnTls) {
  auto c = tlsContext();
  c.quirks.add(Quirk::PlaintextAuth);
  auto f = make(c);
  f.send("EHLO c.example.org\r\nAUTH PLAIN " + plainIr("u@example.com", "pw") + "\r\n");
  ASSERT_EQ(f.out.auths.size(), 1u);
  EXPECT_TRUE(f.out.quirks.empty());
}

struct HeloCase {
  const char* arg;
  bool quirk;
  const char* expect_helo;
  bool used;
};

TEST_P(SmtpFront, HeloNormalizeTable) {
  const HeloCase kCases[] = {
      {"WIN7-PC", true, "[127.0.0.2]", true},
      {"WIN7-PC", false, "WIN7-PC", false},
      {"localhost", true, "[127.0.0.2]", true},
      {"localhost", false, "localhost", false},
      {"x.local", true, "[127.0.0.2]", true},
      {"x.local", false, "x.local", false},
      {"mail.example.com", true, "mail.example.com", false},
      {"mail.example.com", false, "mail.example.com", false},
      {"[1.2.3.4]", true, "[1.2.3.4]", false},
      {"[1.2.3.4]", false, "[1.2.3.4]", false},
      {"[IPv6:2001:db8::1]", true, "[IPv6:2001:db8::1]", false},
      {"127.0.0.1", true, "[127.0.0.2]", true},
  };
  for (const auto& tc : kCases) {
    auto c = tlsContext();
    c.client_ip = "127.0.0.2";
    if (tc.quirk) c.quirks.add(Quirk::SmtpHeloNormalize);
    auto f = make(c);
    f.send("EHLO "s + tc.arg + "\r\nAUTH PLAIN " + plainIr("u@example.com", "pw") + "\r\n");
    ASSERT_EQ(f.out.auths.size(), 1u) << tc.arg;
    EXPECT_EQ(f.out.auths[0].helo, tc.expect_helo) << tc.arg << " quirk=" << tc.quirk;
    EXPECT_EQ(f.out.hasQuirk(Quirk::SmtpHeloNormalize), tc.used) << tc.arg;
    ASSERT_EQ(f.out.infos.size(), 1u);
    EXPECT_EQ(f.out.infos[0].value, tc.arg);  // the log keeps what the client said
    if (tc.used) {
      ASSERT_EQ(f.out.quirks.size(), 1u);
      EXPECT_EQ(f.out.quirks[0].detail, "helo="s + tc.arg + " -> [127.0.0.2]");
    }
  }
}

TEST_P(SmtpFront, HeloNormalizeIpv6AndHeloCommand) {
  // Changed deliberately: AUTH after HELO now needs smtp.helo_only, and the
  // session is then ESMTP toward the backend (it used to be esmtp=false).
  auto c = tlsContext();
  c.client_ip = "::1";
  c.quirks.add(Quirk::SmtpHeloNormalize);
  c.quirks.add(Quirk::SmtpHeloOnly);
  auto f = make(c);
  f.send("HELO medea\r\nAUTH PLAIN " + plainIr("u@example.com", "pw") + "\r\n");
  ASSERT_EQ(f.out.auths.size(), 1u) << f.out.down;
  EXPECT_EQ(f.out.auths[0].helo, "[IPv6:::1]");
  EXPECT_TRUE(f.out.auths[0].esmtp);
  ASSERT_EQ(f.out.quirks.size(), 2u);
  EXPECT_EQ(f.out.quirks[0].detail, "helo=medea -> [IPv6:::1]");
  EXPECT_EQ(f.out.quirks[1].quirk, Quirk::SmtpHeloOnly);
}

TEST_P(SmtpFront, HeloNormalizeOncePerEhlo) {
  auto c = tlsContext();
  c.client_ip = "127.0.0.2";
  c.quirks.add(Quirk::SmtpHeloNormalize);
  auto f = make(c);
  f.send("EHLO WIN7-PC\r\nNOOP\r\nEHLO WIN7-PC\r\n");
  EXPECT_EQ(f.out.quirks.size(), 2u);
}

TEST_P(SmtpFront, StarttlsInjectionDiscarded) {
  auto f = make(testing::defaultContext());
  f.send("EHLO t.example.org\r\n");
  f.mark();
  f.send("STARTTLS\r\nNOOP\r\n");
  EXPECT_EQ(f.downSinceMark(), "220 2.0.0 Ready to start TLS\r\n");
  EXPECT_EQ(f.out.starttls_down, 1);
  // Nothing at all is sent after the go-ahead.
  ASSERT_EQ(f.out.trace.back(), "TLS-DOWN");
  ASSERT_FALSE(f.out.notes.empty());
  EXPECT_EQ(f.out.notes.back().level, LogNote::Level::Warn);
  if (GetParam() == Split::Whole) {
    EXPECT_EQ(f.out.notes.back().text, "discarded 6 bytes pipelined after STARTTLS (command injection attempt)");
  }
  // After the handshake: everything learned before is forgotten.
  f.tlsUp();
  f.mark();
  f.send("NOOP\r\nAUTH PLAIN " + plainIr("u@example.com", "pw") + "\r\n");
  EXPECT_EQ(f.downSinceMark(), "250 2.0.0 Ok\r\n503 5.5.1 Error: send HELO/EHLO first\r\n");
  EXPECT_TRUE(f.out.auths.empty());
}

TEST_P(SmtpFront, StarttlsCredentialTheftVariant) {
  // client-quirks 6.A.2: nothing after STARTTLS is executed.
  auto f = make(testing::defaultContext());
  f.send("EHLO t.example.org\r\n");
  f.mark();
  f.send("STARTTLS\r\nAUTH PLAIN " + plainIr("attacker@example.net", "x") +
         "\r\nMAIL FROM:<a@x>\r\nRCPT TO:<attacker@example.net>\r\nDATA\r\n");
  EXPECT_EQ(f.downSinceMark(), "220 2.0.0 Ready to start TLS\r\n");
  f.tlsUp();
  EXPECT_TRUE(f.out.auths.empty());
  f.send("EHLO victim.example.org\r\n");
  EXPECT_TRUE(f.out.auths.empty());
  EXPECT_TRUE(f.out.down.ends_with(kEhloTls));
}

TEST_P(SmtpFront, PipelinedEhloStarttls) {
  auto f = make(testing::defaultContext());
  f.send("EHLO t.example.org\r\nSTARTTLS\r\n");
  EXPECT_EQ(f.out.down, kGreeting + kEhloPlain + "220 2.0.0 Ready to start TLS\r\n");
  EXPECT_EQ(f.out.trace.back(), "TLS-DOWN");
  if (GetParam() == Split::Whole) {
    // Both replies in one write, before the handshake starts.
    ASSERT_EQ(f.out.trace.size(), 3u);
    EXPECT_EQ(f.out.trace[1], "D:" + kEhloPlain + "220 2.0.0 Ready to start TLS\r\n");
  }
  f.tlsUp();
  f.send("EHLO t.example.org\r\n");
  EXPECT_TRUE(f.out.down.ends_with(kEhloTls));
}

TEST_P(SmtpFront, StarttlsErrors) {
  auto f = make(testing::defaultContext());
  f.send("STARTTLS now\r\n");
  auto c = testing::defaultContext();
  c.starttls_available = false;
  auto g = make(c);
  g.send("STARTTLS\r\n");
  auto h = make(tlsContext());
  h.send("STARTTLS\r\n");
  EXPECT_EQ(f.out.down, kGreeting + "501 5.5.4 Syntax: STARTTLS\r\n");
  EXPECT_EQ(g.out.down, kGreeting + "502 5.5.1 Error: command not implemented\r\n");
  EXPECT_EQ(h.out.down, kGreeting + "554 5.5.1 Error: TLS already active\r\n");
  EXPECT_EQ(f.out.starttls_down + g.out.starttls_down + h.out.starttls_down, 0);
}

TEST_P(SmtpFront, SecondStarttlsAfterTlsRefused) {
  auto f = make(testing::defaultContext());
  f.send("STARTTLS\r\n");
  f.tlsUp();
  f.mark();
  f.send("STARTTLS\r\n");
  EXPECT_EQ(f.downSinceMark(), "554 5.5.1 Error: TLS already active\r\n");
  EXPECT_EQ(f.out.starttls_down, 1);
}

TEST_P(SmtpFront, InputDuringHandshakeIsDiscarded) {
  auto f = make(testing::defaultContext());
  f.send("STARTTLS\r\n");
  f.mark();
  f.send("RSET\r\n");
  EXPECT_EQ(f.downSinceMark(), "");
  f.tlsUp();
  f.send("NOOP\r\n");
  EXPECT_EQ(f.downSinceMark(), "250 2.0.0 Ok\r\n");
  // A second onDownstreamTls is ignored.
  EXPECT_TRUE(f.phase->onDownstreamTls().empty());
}

TEST_P(SmtpFront, PipelinedMailAfterAuthGoesToRelay) {
  auto f = make(tlsContext());
  f.send("EHLO c.example.org\r\n");
  const std::string tail = "MAIL FROM:<bob@example.com>\r\nRCPT TO:<alice@example.com>\nDATA\r\n";
  f.mark();
  f.send("AUTH PLAIN " + plainIr("bob@example.com", kBobPass) + "\r\n" + tail);
  EXPECT_EQ(f.downSinceMark(), "");
  ASSERT_EQ(f.out.auths.size(), 1u);
  f.result(LoginResult::Kind::Ok, "235", "2.7.0 Authentication successful");
  EXPECT_EQ(f.downSinceMark(), "235 2.7.0 Authentication successful\r\n");
  ASSERT_TRUE(f.out.relay);
  EXPECT_EQ(f.out.relay->to_upstream, tail);
}

TEST_P(SmtpFront, InputArrivingWhileLoginPendingIsKept) {
  auto f = make(tlsContext());
  f.send("EHLO c.example.org\r\nAUTH PLAIN " + plainIr("u@example.com", "pw") + "\r\n");
  f.send("MAIL FROM:<u@example.com>\r\n");
  f.send("RCPT TO:<v@example.com>\r\n");
  f.result(LoginResult::Kind::Ok, "235", "x");
  ASSERT_TRUE(f.out.relay);
  EXPECT_EQ(f.out.relay->to_upstream, "MAIL FROM:<u@example.com>\r\nRCPT TO:<v@example.com>\r\n");
}

TEST_P(SmtpFront, AuthFailedThenBufferedInputProcessedThenRetry) {
  auto f = make(tlsContext());
  f.send("EHLO c.example.org\r\nAUTH PLAIN " + plainIr("u@example.com", "bad") + "\r\nNOOP\r\n");
  f.mark();
  f.result(LoginResult::Kind::AuthFailed, "535", "5.7.8 Error: authentication failed: authentication failure");
  EXPECT_EQ(f.downSinceMark(), "535 5.7.8 Error: authentication failed: authentication failure\r\n250 2.0.0 Ok\r\n");
  EXPECT_FALSE(f.out.relay);
  f.send("AUTH PLAIN " + plainIr("u@example.com", "good") + "\r\n");
  ASSERT_EQ(f.out.auths.size(), 2u);
  EXPECT_EQ(f.out.auths[1].creds.password.reveal(), "good");
  f.result(LoginResult::Kind::Ok, "235", "ok");
  EXPECT_TRUE(f.out.relay);
}

TEST_P(SmtpFront, TempFailWithCodeContinues) {
  auto f = make(tlsContext());
  f.send("EHLO c.example.org\r\nAUTH PLAIN " + plainIr("u@example.com", "pw") + "\r\n");
  f.mark();
  f.result(LoginResult::Kind::TempFail, "454", "4.7.0 Temporary authentication failure: try later");
  EXPECT_EQ(f.downSinceMark(), "454 4.7.0 Temporary authentication failure: try later\r\n");
  EXPECT_FALSE(f.out.close);
  f.send("NOOP\r\n");
  EXPECT_TRUE(f.out.down.ends_with("250 2.0.0 Ok\r\n"));
}

TEST_P(SmtpFront, TempFailWithoutCodeCloses) {
  auto f = make(tlsContext());
  f.send("EHLO c.example.org\r\nAUTH PLAIN " + plainIr("u@example.com", "pw") + "\r\nNOOP\r\n");
  f.mark();
  f.result(LoginResult::Kind::TempFail);
  EXPECT_EQ(f.downSinceMark(), "421 4.3.2 mail.example.test Service not available, closing transmission channel\r\n");
  ASSERT_TRUE(f.out.close);
  EXPECT_EQ(*f.out.close, CloseReason::UpstreamUnavailable);
  EXPECT_EQ(f.out.trace.back(), "CLOSE");
  EXPECT_TRUE(f.phase->onDownstreamData("NOOP\r\n").empty());
}

TEST_P(SmtpFront, BackendTextSanitisedOrReplaced) {
  auto f = make(tlsContext());
  f.send("EHLO c.example.org\r\nAUTH PLAIN " + plainIr("u@example.com", "pw") + "\r\n");
  f.mark();
  f.result(LoginResult::Kind::AuthFailed, "535", "evil\r\n250 fake");
  EXPECT_EQ(f.downSinceMark(), "535 5.7.8 Error: authentication failed\r\n");
  f.send("AUTH PLAIN " + plainIr("u@example.com", "pw") + "\r\n");
  f.mark();
  f.result(LoginResult::Kind::AuthFailed, "2xx", "no enhanced code");
  EXPECT_EQ(f.downSinceMark(), "535 5.7.8 no enhanced code\r\n");
}

TEST_P(SmtpFront, LoginResultIgnoredWhenNotPending) {
  auto f = make(tlsContext());
  LoginResult r;
  r.kind = LoginResult::Kind::Ok;
  EXPECT_TRUE(f.phase->onLoginResult(r).empty());
  EXPECT_FALSE(f.out.relay);
}

TEST_P(SmtpFront, MailBeforeAuth) {
  auto f = make(testing::defaultContext());
  f.send("EHLO c.example.org\r\nMAIL FROM:<a@b.example>\r\nVRFY x\r\n");
  EXPECT_TRUE(f.out.down.ends_with("530 5.7.0 Must issue a STARTTLS command first\r\n"
                                   "530 5.7.0 Must issue a STARTTLS command first\r\n"));
  auto g = make(tlsContext());
  g.send("RCPT TO:<a@b.example>\r\nDATA\r\nBDAT 10 LAST\r\nEXPN x\r\nETRN x\r\n");
  EXPECT_EQ(g.out.down, kGreeting + "530 5.7.0 Authentication required\r\n530 5.7.0 Authentication required\r\n"
                                    "530 5.7.0 Authentication required\r\n530 5.7.0 Authentication required\r\n"
                                    "530 5.7.0 Authentication required\r\n");
  auto h = make(quirkContext(Quirk::PlaintextAuth));
  h.send("MAIL FROM:<a@b.example>\r\n");
  EXPECT_EQ(h.out.down, kGreeting + "530 5.7.0 Authentication required\r\n");
}

TEST_P(SmtpFront, SimpleCommands) {
  auto f = make(testing::defaultContext());
  f.send("NOOP\r\nrset\r\nHELP\r\nFOO bar\r\nXCLIENT ADDR=1.2.3.4\r\nQUIT\r\nNOOP\r\n");
  EXPECT_EQ(f.out.down, kGreeting +
                            "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n214 2.0.0 See RFC 5321\r\n"
                            "502 5.5.2 Error: command not recognized\r\n502 5.5.2 Error: command not recognized\r\n"
                            "221 2.0.0 Bye\r\n");
  ASSERT_TRUE(f.out.close);
  EXPECT_EQ(*f.out.close, CloseReason::ClientQuit);
}

TEST_P(SmtpFront, BadLines) {
  auto c = testing::defaultContext();
  c.max_line_bytes = 64;
  auto f = make(c);
  f.send(std::string(200, 'A') + "\r\nNO\0OP\r\nNO\rOP\r\n\r\nNOOP\r\n"s);
  EXPECT_EQ(f.out.down, kGreeting +
                            "500 5.5.0 Error: line too long\r\n500 5.5.2 Error: bad syntax\r\n"
                            "500 5.5.2 Error: bad syntax\r\n500 5.5.2 Error: bad syntax\r\n250 2.0.0 Ok\r\n");
}

TEST_P(SmtpFront, TlsClientHelloOnPlainPortIsJustErrors) {
  auto f = make(testing::defaultContext());
  f.send("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"s + "\n");
  EXPECT_EQ(f.out.down, kGreeting + "500 5.5.2 Error: bad syntax\r\n");
  EXPECT_TRUE(f.out.auths.empty());
}

TEST_P(SmtpFront, OverlongAuthResponseAbortsAuth) {
  auto c = tlsContext();
  c.max_line_bytes = 64;
  auto f = make(c);
  f.send("EHLO c.example.org\r\n");
  f.mark();
  f.send("AUTH LOGIN\r\n" + std::string(100, 'Q') + "\r\nNOOP\r\n");
  EXPECT_EQ(f.downSinceMark(), "334 VXNlcm5hbWU6\r\n500 5.5.0 Error: line too long\r\n250 2.0.0 Ok\r\n");
}

TEST_P(SmtpFront, TooManyErrors) {
  auto c = testing::defaultContext();
  c.max_errors = 3;
  auto f = make(c);
  f.send("FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n");
  EXPECT_EQ(f.out.down, kGreeting +
                            "502 5.5.2 Error: command not recognized\r\n502 5.5.2 Error: command not recognized\r\n"
                            "502 5.5.2 Error: command not recognized\r\n"
                            "421 4.7.0 mail.example.test Error: too many errors\r\n");
  ASSERT_TRUE(f.out.close);
  EXPECT_EQ(*f.out.close, CloseReason::TooManyErrors);
  EXPECT_TRUE(f.phase->onDownstreamData("NOOP\r\n").empty());
}

TEST_P(SmtpFront, FailedLoginsCountAsErrors) {
  auto c = tlsContext();
  c.max_errors = 2;
  auto f = make(c);
  f.send("EHLO c.example.org\r\nFOO\r\nAUTH PLAIN " + plainIr("u@example.com", "x") + "\r\n");
  f.result(LoginResult::Kind::AuthFailed, "535", "5.7.8 Error: authentication failed");
  EXPECT_TRUE(f.out.down.ends_with("535 5.7.8 Error: authentication failed\r\n"
                                   "421 4.7.0 mail.example.test Error: too many errors\r\n"));
  EXPECT_EQ(*f.out.close, CloseReason::TooManyErrors);
}

TEST_P(SmtpFront, Timeout) {
  auto f = make(testing::defaultContext());
  f.send("EHLO c.example.org\r\n");
  f.out.add(f.phase->onTimeout());
  EXPECT_TRUE(f.out.down.ends_with("421 4.4.2 mail.example.test Error: timeout exceeded\r\n"));
  ASSERT_TRUE(f.out.close);
  EXPECT_EQ(*f.out.close, CloseReason::Timeout);
  EXPECT_TRUE(f.phase->onTimeout().empty());
}

TEST_P(SmtpFront, TimeoutDuringHandshakeClosesSilently) {
  // Regression (fuzz): a 421 written after the STARTTLS go-ahead would be
  // plaintext where the client expects a TLS record.
  auto f = make(testing::defaultContext());
  f.send("EHLO t.example.org\r\nSTARTTLS\r\n");
  f.mark();
  f.out.add(f.phase->onTimeout());
  EXPECT_EQ(f.downSinceMark(), "");
  ASSERT_TRUE(f.out.close);
  EXPECT_EQ(*f.out.close, CloseReason::Timeout);
  EXPECT_EQ(f.out.trace.back(), "CLOSE");
  EXPECT_TRUE(f.phase->onDownstreamTls().empty());
}

TEST_P(SmtpFront, TimerRearmedPerCommand) {
  auto f = make(testing::defaultContext());
  size_t before = f.out.timers.size();
  f.send("NOOP\r\n");
  EXPECT_GT(f.out.timers.size(), before);
  before = f.out.timers.size();
  f.send("NOO");  // incomplete: no re-arm
  EXPECT_EQ(f.out.timers.size(), before);
  for (auto t : f.out.timers) EXPECT_EQ(t, 60000u);
}

TEST_P(SmtpFront, TooMuchPipelinedWhileLoginPending) {
  auto f = make(tlsContext());
  f.send("EHLO c.example.org\r\nAUTH PLAIN " + plainIr("u@example.com", "pw") + "\r\n");
  f.mark();
  f.send(std::string(SmtpFrontPhase::kMaxPipelinedBytes + 1, 'x'));
  EXPECT_EQ(f.downSinceMark(), "421 4.7.0 mail.example.test Error: too much pipelined input\r\n");
  EXPECT_EQ(*f.out.close, CloseReason::LineTooLong);
}

TEST_P(SmtpFront, SecretsNeverLogged) {
  auto c = quirkContext(Quirk::PlaintextAuth);
  c.quirks.add(Quirk::SmtpHeloNormalize);
  c.client_ip = "127.0.0.2";
  auto f = make(c);
  const std::string secret = "Sup3r-S3cret-Pw";
  f.send("EHLO WIN7-PC\r\nAUTH PLAIN " + plainIr("u@example.com", secret) + "\r\n");
  f.result(LoginResult::Kind::AuthFailed, "535", "5.7.8 Error: authentication failed");
  f.send("AUTH LOGIN " + base64Encode("u@example.com") + "\r\n" + base64Encode(secret) + "\r\n");
  f.send("STARTTLS\r\n" + plainIr("u", secret) + "\r\n");
  ASSERT_EQ(f.out.auths.size(), 2u);
  auto clean = [&](const std::string& s) {
    return s.find(secret) == std::string::npos && s.find(base64Encode(secret)) == std::string::npos &&
           s.find(plainIr("u@example.com", secret)) == std::string::npos;
  };
  for (const auto& n : f.out.notes) EXPECT_TRUE(clean(n.text)) << n.text;
  for (const auto& q : f.out.quirks) EXPECT_TRUE(clean(q.detail)) << q.detail;
  for (const auto& i : f.out.infos) EXPECT_TRUE(clean(i.value));
  for (const auto& u : f.out.users) EXPECT_TRUE(clean(u));
  EXPECT_TRUE(clean(f.out.down));
}

INSTANTIATE_TEST_SUITE_P(Splits, SmtpFront, ::testing::ValuesIn(testing::kAllSplits),
                         [](const auto& info) { return std::string(testing::splitName(info.param)); });

TEST(SmtpFrontBatching, OneSendDownstreamPerCall) {
  Front f(testing::defaultContext());
  f.out = Outcome{};
  f.out.add(f.phase->onDownstreamData("EHLO a.example.org\r\nNOOP\r\nRSET\r\nHELP\r\nFOO\r\nMAIL FROM:<a@b>\r\n"));
  int sends = 0;
  for (const auto& t : f.out.trace) sends += t.starts_with("D:");
  EXPECT_EQ(sends, 1);
  EXPECT_EQ(f.out.timers.size(), 1u);
}

TEST(SmtpFrontBatching, ServerNameWithLineBreakIsNotInterpolated) {
  auto c = testing::defaultContext();
  c.server_name = "evil\r\n250 injected";
  Front f(c);
  EXPECT_EQ(f.out.down, "220 localhost ESMTP\r\n");
}

TEST(SmtpFrontFacade, RegistryBuildsPhases) {
  auto c = testing::defaultContext();
  EXPECT_NE(makeSmtpFrontPhase(c), nullptr);
  EXPECT_NE(makeSmtpUpstreamLogin(c, UpstreamContext{}), nullptr);
  EXPECT_NE(makeSmtpRelayFilter(c), nullptr);
}

}  // namespace
}  // namespace mailshim::proto::smtp
