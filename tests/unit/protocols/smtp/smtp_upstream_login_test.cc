// Scripted-backend transcript tests for SmtpUpstreamLogin: banner, EHLO,
// STARTTLS (refusals, response injection), XCLIENT (xtext values, refusals,
// advertised attributes), AUTH PLAIN / LOGIN, failures and retries. Every
// backend reply is fed whole, byte by byte and at random split points, and
// the harness asserts that no command is ever sent while another one is
// outstanding (mailshim never pipelines toward Postfix). No I/O.
#include "protocols/smtp/smtp_upstream_login.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "protocols/common/base64.h"
#include "tests/unit/phase_harness.h"

namespace mailshim::proto::smtp {
namespace {

using namespace std::string_literals;
using testing::Outcome;
using testing::Split;

const std::string kBanner = "220 mx.backend.test ESMTP Postfix\r\n";
const std::string kEhloPre =
    "250-mx.backend.test\r\n250-PIPELINING\r\n250-SIZE 15728640\r\n250-ETRN\r\n250-STARTTLS\r\n"
    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 DSN\r\n";
const std::string kEhloPost =
    "250-mx.backend.test\r\n250-PIPELINING\r\n250-SIZE 15728640\r\n250-ETRN\r\n250-AUTH PLAIN LOGIN\r\n"
    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 DSN\r\n";
const std::string kEhloPostXclient =
    "250-mx.backend.test\r\n250-PIPELINING\r\n250-SIZE 15728640\r\n250-ETRN\r\n250-AUTH PLAIN LOGIN\r\n"
    "250-XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT\r\n"
    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 DSN\r\n";
const std::string kTlsGo = "220 2.0.0 Ready to start TLS\r\n";
const std::string kAuthOk = "235 2.7.0 Authentication successful\r\n";
const std::string kAuthFail = "535 5.7.8 Error: authentication failed: authentication failure\r\n";
const std::string kBobPass = "b0b pa\"ss\\wd";

std::string plain(std::string_view user, std::string_view pass) {
  return base64Encode("\0"s + std::string(user) + "\0"s + std::string(pass));
}

Authenticate makeAuth(std::string user, std::string pass, std::string helo = "client.example.org", bool esmtp = true) {
  Authenticate a;
  a.creds.user = std::move(user);
  a.creds.password = Secret(std::move(pass));
  a.helo = std::move(helo);
  a.esmtp = esmtp;
  return a;
}

// Drives the phase like a backend would and checks the one-command rule.
class Script {
 public:
  Script(SessionContext ctx, UpstreamContext up, Split split, uint32_t seed = 5)
      : phase_(std::make_unique<SmtpUpstreamLogin>(ctx, up)), split_(split), seed_(seed) {}

  void connect() {
    outstanding_ = 1;  // the banner
    collect(phase_->onConnected());
  }
  // Delivers one complete reply to the outstanding command (any split).
  void reply(std::string_view bytes) {
    size_t fed = 0;
    testing::feedSplit(bytes, split_, seed_++,
                       [&](std::string_view chunk) {
                         fed += chunk.size();
                         if (fed == bytes.size() && outstanding_ > 0) --outstanding_;
                         Actions acts = phase_->onUpstreamData(chunk);
                         check(acts);
                         return acts;
                       },
                       out);
  }
  // Backend bytes that answer nothing (injection, stray data), in one piece.
  void raw(std::string_view bytes) { collect(phase_->onUpstreamData(bytes)); }
  void tls() { collect(phase_->onUpstreamTls()); }
  void login(Authenticate a) { collect(phase_->login(std::move(a))); }

  // Upstream commands in order.
  const std::vector<std::string>& commands() const { return commands_; }
  std::string lastCommand() const { return commands_.empty() ? "" : commands_.back(); }
  bool sentAuth() const {
    for (const auto& c : commands_)
      if (c.starts_with("AUTH")) return true;
    return false;
  }

  Outcome out;

 private:
  void collect(Actions&& acts) {
    check(acts);
    out.add(std::move(acts));
  }
  void check(const Actions& acts) {
    for (const auto& a : acts) {
      if (const auto* s = std::get_if<SendUpstream>(&a)) {
        EXPECT_EQ(outstanding_, 0) << "command sent while another is outstanding: " << s->bytes;
        ++outstanding_;
        // Exactly one CRLF-terminated line per write.
        EXPECT_TRUE(s->bytes.ends_with("\r\n")) << s->bytes;
        EXPECT_EQ(s->bytes.find('\n'), s->bytes.size() - 1) << s->bytes;
        EXPECT_EQ(s->bytes.find('\0'), std::string::npos);
        commands_.push_back(s->bytes);
      }
      if (std::holds_alternative<StartTlsUpstream>(a)) outstanding_ = 0;
    }
  }

  std::unique_ptr<SmtpUpstreamLogin> phase_;
  Split split_;
  uint32_t seed_;
  int outstanding_ = 0;
  std::vector<std::string> commands_;
};

UpstreamContext starttlsUp(ClientAddressMode mode = ClientAddressMode::None) {
  UpstreamContext u;
  u.helo_name = "mailshim.example.test";
  u.tls = UpstreamTls::Starttls;
  u.client_address = mode;
  return u;
}

SessionContext clientCtx() {
  auto c = testing::defaultContext();
  c.client_ip = "192.0.2.10";
  c.client_port = 50123;
  return c;
}

class SmtpUpstream : public ::testing::TestWithParam<Split> {
 protected:
  Script make(UpstreamContext up, SessionContext ctx = clientCtx()) { return Script(std::move(ctx), up, GetParam()); }
  // Banner + EHLO + STARTTLS + TLS + EHLO with the given post-TLS keywords.
  void toReady(Script& s, const std::string& post = kEhloPost) {
    s.connect();
    s.reply(kBanner);
    EXPECT_EQ(s.lastCommand(), "EHLO mailshim.example.test\r\n");
    s.reply(kEhloPre);
    EXPECT_EQ(s.lastCommand(), "STARTTLS\r\n");
    s.reply(kTlsGo);
    EXPECT_EQ(s.out.starttls_up, 1);
    EXPECT_EQ(s.out.trace.back(), "TLS-UP");
    EXPECT_FALSE(s.sentAuth());
    s.tls();
    EXPECT_EQ(s.lastCommand(), "EHLO mailshim.example.test\r\n");
    s.reply(post);
  }
};

TEST_P(SmtpUpstream, StarttlsThenAuthPlainQueuedLogin) {
  auto s = make(starttlsUp());
  s.login(makeAuth("bob@example.com", kBobPass));
  EXPECT_TRUE(s.commands().empty());
  toReady(s);
  EXPECT_EQ(s.lastCommand(), "AUTH PLAIN " + plain("bob@example.com", kBobPass) + "\r\n");
  EXPECT_FALSE(s.out.login_done);
  s.reply(kAuthOk);
  ASSERT_TRUE(s.out.login_done);
  EXPECT_EQ(s.out.login_done->kind, LoginResult::Kind::Ok);
  EXPECT_EQ(s.out.login_done->code, "235");
  EXPECT_EQ(s.out.login_done->text, "2.7.0 Authentication successful");
  EXPECT_EQ(s.out.login_done->leftover, "");
  EXPECT_EQ(s.commands().size(), 4u);
}

TEST_P(SmtpUpstream, LoginAfterReady) {
  auto s = make(starttlsUp());
  toReady(s);
  EXPECT_EQ(s.commands().size(), 3u);
  s.login(makeAuth("alice@example.com", "pw"));
  EXPECT_EQ(s.lastCommand(), "AUTH PLAIN " + plain("alice@example.com", "pw") + "\r\n");
  // Bytes after the 235 in the same read are handed over as leftover.
  s.raw(kAuthOk + "250 extra\r\n");
  ASSERT_TRUE(s.out.login_done);
  EXPECT_EQ(s.out.login_done->kind, LoginResult::Kind::Ok);
  EXPECT_EQ(s.out.login_done->leftover, "250 extra\r\n");
}

TEST_P(SmtpUpstream, NoStarttlsAdvertisedNeverSendsAuth) {
  auto s = make(starttlsUp());
  s.login(makeAuth("bob@example.com", kBobPass));
  s.connect();
  s.reply(kBanner);
  s.reply("250-mx.backend.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n");
  ASSERT_TRUE(s.out.login_done);
  EXPECT_EQ(s.out.login_done->kind, LoginResult::Kind::TempFail);
  EXPECT_EQ(s.out.login_done->code, "");
  EXPECT_FALSE(s.sentAuth());
  EXPECT_EQ(s.out.starttls_up, 0);
  ASSERT_FALSE(s.out.notes.empty());
  EXPECT_EQ(s.out.notes.back().text, "backend does not offer STARTTLS; refusing to send credentials in clear");
  EXPECT_EQ(s.out.notes.back().level, LogNote::Level::Warn);
}

TEST_P(SmtpUpstream, StarttlsRefused) {
  for (const std::string& refusal : {"454 4.7.0 TLS not available due to local problem\r\n"s,
                                    "502 5.5.1 Error: command not implemented\r\n"s, "354 do something else\r\n"s}) {
    auto s = make(starttlsUp());
    s.login(makeAuth("bob@example.com", kBobPass));
    s.connect();
    s.reply(kBanner);
    s.reply(kEhloPre);
    s.reply(refusal);
    ASSERT_TRUE(s.out.login_done) << refusal;
    EXPECT_EQ(s.out.login_done->kind, LoginResult::Kind::TempFail);
    EXPECT_EQ(s.out.login_done->code, "");
    EXPECT_EQ(s.out.starttls_up, 0);
    EXPECT_FALSE(s.sentAuth());
    EXPECT_NE(s.out.notes.back().text.find("backend refused STARTTLS"), std::string::npos);
  }
}

TEST_P(SmtpUpstream, ResponseInjectionAfterGoAheadDiscarded) {
  // client-quirks 6.B.8: the injected AUTH PLAIN keyword must not be believed.
  auto s = make(starttlsUp());
  s.login(makeAuth("bob@example.com", kBobPass));
  s.connect();
  s.reply(kBanner);
  s.reply("250-mx.backend.test\r\n250-AUTH PLAIN\r\n250 STARTTLS\r\n");
  s.reply("220 Ready to start TLS\r\n250-example.org\r\n250 AUTH PLAIN\r\n");
  EXPECT_EQ(s.out.starttls_up, 1);
  EXPECT_EQ(s.out.trace.back(), "TLS-UP");
  bool noted = false;
  for (const auto& n : s.out.notes) noted |= n.text.starts_with("discarded ");
  EXPECT_TRUE(noted);
  s.tls();
  EXPECT_EQ(s.lastCommand(), "EHLO mailshim.example.test\r\n");
  // Post-TLS keywords offer only LOGIN: the pre-TLS/injected PLAIN is forgotten.
  s.reply("250-mx.backend.test\r\n250 AUTH LOGIN\r\n");
  EXPECT_EQ(s.lastCommand(), "AUTH LOGIN\r\n");
  s.reply("334 VXNlcm5hbWU6\r\n");
  EXPECT_EQ(s.lastCommand(), base64Encode("bob@example.com") + "\r\n");
  s.reply("334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(s.lastCommand(), base64Encode(kBobPass) + "\r\n");
  s.reply(kAuthOk);
  ASSERT_TRUE(s.out.login_done);
  EXPECT_EQ(s.out.login_done->kind, LoginResult::Kind::Ok);
}

TEST_P(SmtpUpstream, BytesDuringHandshakeIgnored) {
  auto s = make(starttlsUp());
  s.login(makeAuth("u@example.com", "pw"));
  s.connect();
  s.reply(kBanner);
  s.reply(kEhloPre);
  s.reply(kTlsGo);
  // Plaintext arriving before onUpstreamTls is never parsed as the EHLO reply.
  s.raw("250-fake\r\n250 AUTH PLAIN\r\n");
  EXPECT_EQ(s.out.notes.back().text, "discarded 26 bytes the backend sent during the TLS handshake");
  s.tls();
  EXPECT_EQ(s.lastCommand(), "EHLO mailshim.example.test\r\n");
  s.reply("250-mx.backend.test\r\n250 AUTH LOGIN\r\n");
  EXPECT_EQ(s.lastCommand(), "AUTH LOGIN\r\n");
}

TEST_P(SmtpUpstream, XclientWithHostileHelo) {
  auto s = make(starttlsUp(ClientAddressMode::Xclient));
  s.login(makeAuth("bob@example.com", kBobPass, "a+b=c d\xc3\xa9", true));
  toReady(s, kEhloPostXclient);
  EXPECT_EQ(s.lastCommand(),
            "XCLIENT ADDR=192.0.2.10 PORT=50123 NAME=[UNAVAILABLE] HELO=a+2Bb+3Dc+20d+C3+A9 PROTO=ESMTP\r\n");
  s.reply("220 mx.backend.test ESMTP Postfix\r\n");
  EXPECT_EQ(s.lastCommand(), "EHLO mailshim.example.test\r\n");
  s.reply(kEhloPost);
  EXPECT_EQ(s.lastCommand(), "AUTH PLAIN " + plain("bob@example.com", kBobPass) + "\r\n");
  s.reply(kAuthOk);
  EXPECT_EQ(s.out.login_done->kind, LoginResult::Kind::Ok);
  EXPECT_EQ(s.commands().size(), 6u);
}

TEST_P(SmtpUpstream, XclientIpv6HeloProtoSmtpAndAdvertisedSubset) {
  auto ctx = clientCtx();
  ctx.client_ip = "2001:db8::42";
  auto s = make(starttlsUp(ClientAddressMode::Xclient), ctx);
  s.login(makeAuth("u@example.com", "pw", "[IPv6:2001:db8::42]", false));
  std::string post = "250-mx.backend.test\r\n250-AUTH PLAIN\r\n250-XCLIENT ADDR HELO PROTO\r\n250 DSN\r\n";
  toReady(s, post);
  EXPECT_EQ(s.lastCommand(), "XCLIENT ADDR=IPV6:2001:db8::42 HELO=[IPv6:2001:db8::42] PROTO=SMTP\r\n");
  // Postfix starts over after XCLIENT; the EHLO that follows carries the
  // client's HELO (a new EHLO replaces XCLIENT's HELO=), not mailshim's name.
  s.reply("220 mx.backend.test ESMTP\r\n");
  EXPECT_EQ(s.lastCommand(), "EHLO [IPv6:2001:db8::42]\r\n");
}

TEST_P(SmtpUpstream, XclientInsufficientAuthorization) {
  auto s = make(starttlsUp(ClientAddressMode::Xclient));
  s.login(makeAuth("u@example.com", "pw"));
  toReady(s, kEhloPostXclient);
  EXPECT_TRUE(s.lastCommand().starts_with("XCLIENT "));
  s.reply("550 5.7.0 Error: insufficient authorization\r\n");
  EXPECT_EQ(s.lastCommand(), "AUTH PLAIN " + plain("u@example.com", "pw") + "\r\n");
  bool warned = false;
  for (const auto& n : s.out.notes)
    warned |= n.level == LogNote::Level::Warn &&
              n.text.starts_with("backend refused XCLIENT: add this mailshim's source address to "
                                 "smtpd_authorized_xclient_hosts in Postfix");
  EXPECT_TRUE(warned);
  s.reply(kAuthOk);
  EXPECT_EQ(s.out.login_done->kind, LoginResult::Kind::Ok);
}

TEST_P(SmtpUpstream, XclientNotAdvertised) {
  auto s = make(starttlsUp(ClientAddressMode::Xclient));
  s.login(makeAuth("u@example.com", "pw"));
  toReady(s, kEhloPost);
  EXPECT_TRUE(s.lastCommand().starts_with("AUTH PLAIN "));
  ASSERT_FALSE(s.out.notes.empty());
  EXPECT_TRUE(s.out.notes.back().text.starts_with("backend refused XCLIENT: add this mailshim's source address"));
}

TEST_P(SmtpUpstream, XclientDropsUnsafeHelo) {
  auto s = make(starttlsUp(ClientAddressMode::Xclient));
  s.login(makeAuth("u@example.com", "pw", "evil\r\nRCPT TO:<x@y>"));
  toReady(s, kEhloPostXclient);
  EXPECT_EQ(s.lastCommand(), "XCLIENT ADDR=192.0.2.10 PORT=50123 NAME=[UNAVAILABLE] PROTO=ESMTP\r\n");
  auto t = make(starttlsUp(ClientAddressMode::Xclient));
  t.login(makeAuth("u@example.com", "pw", std::string(300, 'h') + ".example.org"));
  toReady(t, kEhloPostXclient);
  EXPECT_EQ(t.lastCommand(), "XCLIENT ADDR=192.0.2.10 PORT=50123 NAME=[UNAVAILABLE] PROTO=ESMTP\r\n");
}

TEST_P(SmtpUpstream, AuthFailedThenRetry) {
  auto s = make(starttlsUp(ClientAddressMode::Xclient));
  s.login(makeAuth("u@example.com", "wrong"));
  toReady(s, kEhloPostXclient);
  s.reply("220 mx.backend.test ESMTP\r\n");
  s.reply(kEhloPostXclient);
  s.reply(kAuthFail);
  ASSERT_TRUE(s.out.login_done);
  EXPECT_EQ(s.out.login_done->kind, LoginResult::Kind::AuthFailed);
  EXPECT_EQ(s.out.login_done->code, "535");
  EXPECT_EQ(s.out.login_done->text, "5.7.8 Error: authentication failed: authentication failure");
  size_t before = s.commands().size();
  s.out.login_done.reset();
  s.login(makeAuth("u@example.com", "right"));
  // No second XCLIENT, no EHLO: straight to AUTH.
  EXPECT_EQ(s.commands().size(), before + 1);
  EXPECT_EQ(s.lastCommand(), "AUTH PLAIN " + plain("u@example.com", "right") + "\r\n");
  s.reply(kAuthOk);
  EXPECT_EQ(s.out.login_done->kind, LoginResult::Kind::Ok);
}

TEST_P(SmtpUpstream, TempFailWithCodeKeepsPhaseUsable) {
  auto s = make(starttlsUp());
  toReady(s);
  s.login(makeAuth("u@example.com", "pw"));
  s.reply("454 4.7.0 Temporary authentication failure\r\n");
  EXPECT_EQ(s.out.login_done->kind, LoginResult::Kind::TempFail);
  EXPECT_EQ(s.out.login_done->code, "454");
  EXPECT_EQ(s.out.login_done->text, "4.7.0 Temporary authentication failure");
  s.login(makeAuth("u@example.com", "pw"));
  EXPECT_TRUE(s.lastCommand().starts_with("AUTH PLAIN"));
}

TEST_P(SmtpUpstream, Backend421IsFatal) {
  auto s = make(starttlsUp());
  toReady(s);
  s.login(makeAuth("u@example.com", "pw"));
  s.reply("421 4.4.2 mx.backend.test Error: timeout exceeded\r\n");
  EXPECT_EQ(s.out.login_done->kind, LoginResult::Kind::TempFail);
  EXPECT_EQ(s.out.login_done->code, "");
  s.out.login_done.reset();
  size_t before = s.commands().size();
  s.login(makeAuth("u@example.com", "pw"));
  ASSERT_TRUE(s.out.login_done);
  EXPECT_EQ(s.out.login_done->code, "");
  EXPECT_EQ(s.commands().size(), before);
}

TEST_P(SmtpUpstream, BadBanners) {
  for (const std::string& banner : {"421 4.3.2 Service not available\r\n"s, "554 5.7.1 go away\r\n"s,
                                   "* OK IMAP4rev1 ready\r\n"s, "\x16\x03\x03\x00\x02\x02\x28\r\n"s,
                                   "220 ok\x1b[2J\r\n"s}) {
    auto s = make(starttlsUp());
    s.login(makeAuth("u@example.com", "pw"));
    s.connect();
    s.reply(banner);
    ASSERT_TRUE(s.out.login_done) << banner;
    EXPECT_EQ(s.out.login_done->kind, LoginResult::Kind::TempFail);
    EXPECT_EQ(s.out.login_done->code, "");
    EXPECT_TRUE(s.commands().empty());
    ASSERT_FALSE(s.out.notes.empty());
    for (const auto& n : s.out.notes) {
      EXPECT_EQ(n.level, LogNote::Level::Warn);
      for (char c : n.text) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << n.text;
    }
  }
}

TEST_P(SmtpUpstream, FailureBeforeLoginIsReportedOnLogin) {
  auto s = make(starttlsUp());
  s.connect();
  s.reply("554 5.3.2 not now\r\n");
  EXPECT_FALSE(s.out.login_done);
  s.login(makeAuth("u@example.com", "pw"));
  ASSERT_TRUE(s.out.login_done);
  EXPECT_EQ(s.out.login_done->kind, LoginResult::Kind::TempFail);
  EXPECT_EQ(s.out.login_done->code, "");
}

TEST_P(SmtpUpstream, UnsolicitedBytesBeforeOurTurn) {
  auto s = make(starttlsUp());
  s.login(makeAuth("u@example.com", "pw"));
  s.connect();
  s.raw(kBanner + "250 surprise\r\n");
  ASSERT_TRUE(s.out.login_done);
  EXPECT_EQ(s.out.login_done->code, "");
  EXPECT_TRUE(s.commands().empty());
}

TEST_P(SmtpUpstream, EhloRefusedNonEsmtpBackend) {
  auto s = make(starttlsUp());
  s.login(makeAuth("u@example.com", "pw"));
  s.connect();
  s.reply(kBanner);
  s.reply("502 5.5.2 Error: command not recognized\r\n");
  EXPECT_EQ(s.out.login_done->kind, LoginResult::Kind::TempFail);
  EXPECT_EQ(s.out.login_done->code, "");
  EXPECT_FALSE(s.sentAuth());
}

TEST_P(SmtpUpstream, NoAuthMechanism) {
  auto s = make(starttlsUp());
  s.login(makeAuth("u@example.com", "pw"));
  toReady(s, "250-mx.backend.test\r\n250 DSN\r\n");
  EXPECT_EQ(s.out.login_done->code, "");
  EXPECT_NE(s.out.notes.back().text.find("does not advertise AUTH"), std::string::npos);
  auto t = make(starttlsUp());
  t.login(makeAuth("u@example.com", "pw"));
  toReady(t, "250-mx.backend.test\r\n250 AUTH CRAM-MD5 NTLM\r\n");
  EXPECT_EQ(t.out.login_done->code, "");
  EXPECT_FALSE(t.sentAuth());
}

TEST_P(SmtpUpstream, AuthLoginRejectedMidDialogue) {
  auto s = make(starttlsUp());
  toReady(s, "250-mx.backend.test\r\n250 AUTH LOGIN\r\n");
  s.login(makeAuth("u@example.com", "pw"));
  EXPECT_EQ(s.lastCommand(), "AUTH LOGIN\r\n");
  s.reply("334 VXNlcm5hbWU6\r\n");
  s.reply("535 5.7.8 Error: authentication failed: UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(s.out.login_done->kind, LoginResult::Kind::AuthFailed);
  EXPECT_EQ(s.commands().size(), 5u);
}

TEST_P(SmtpUpstream, ImplicitTlsAndNoneSkipStarttls) {
  for (auto mode : {UpstreamTls::Implicit, UpstreamTls::None}) {
    auto up = starttlsUp();
    up.tls = mode;
    auto s = make(up);
    s.login(makeAuth("u@example.com", "pw"));
    s.connect();
    s.reply("220-mx.backend.test ESMTP\r\n220 Postfix\r\n");
    EXPECT_EQ(s.lastCommand(), "EHLO mailshim.example.test\r\n");
    s.reply(kEhloPost);
    EXPECT_TRUE(s.lastCommand().starts_with("AUTH PLAIN "));
    EXPECT_EQ(s.out.starttls_up, 0);
    s.reply(kAuthOk);
    EXPECT_EQ(s.out.login_done->kind, LoginResult::Kind::Ok);
  }
}

TEST_P(SmtpUpstream, LongCredentialsUseContinuation) {
  auto s = make(starttlsUp());
  toReady(s);
  std::string pass(900, 'p');
  s.login(makeAuth("u@example.com", pass));
  EXPECT_EQ(s.lastCommand(), "AUTH PLAIN\r\n");
  s.reply("334 \r\n");
  EXPECT_EQ(s.lastCommand(), plain("u@example.com", pass) + "\r\n");
  s.reply(kAuthOk);
  EXPECT_EQ(s.out.login_done->kind, LoginResult::Kind::Ok);
}

TEST_P(SmtpUpstream, InvalidCredentialsNeverSent) {
  auto s = make(starttlsUp());
  toReady(s);
  size_t before = s.commands().size();
  s.login(makeAuth("u@example.com\r\nRSET", "pw"));
  EXPECT_EQ(s.out.login_done->kind, LoginResult::Kind::AuthFailed);
  EXPECT_EQ(s.commands().size(), before);
}

TEST_P(SmtpUpstream, BackendTextTruncatedAndCleaned) {
  auto s = make(starttlsUp());
  toReady(s);
  s.login(makeAuth("u@example.com", "pw"));
  s.reply("535 5.7.8 bad\tthing \xff" + std::string(1000, 'z') + "\r\n");
  const auto& text = s.out.login_done->text;
  EXPECT_EQ(text.size(), SmtpUpstreamLogin::kMaxResultText);
  EXPECT_TRUE(text.starts_with("5.7.8 bad thing ?z"));
}

TEST_P(SmtpUpstream, SecretsNeverLogged) {
  auto s = make(starttlsUp(ClientAddressMode::Xclient));
  s.login(makeAuth("u@example.com", "Sup3r-S3cret"));
  toReady(s, kEhloPostXclient);
  s.reply("550 5.7.0 Error: insufficient authorization\r\n");
  s.reply("535 5.7.8 Error: authentication failed: " + plain("u@example.com", "Sup3r-S3cret") + "\r\n");
  for (const auto& n : s.out.notes) {
    EXPECT_EQ(n.text.find("Sup3r-S3cret"), std::string::npos);
    EXPECT_EQ(n.text.find(plain("u@example.com", "Sup3r-S3cret")), std::string::npos);
  }
}

INSTANTIATE_TEST_SUITE_P(Splits, SmtpUpstream, ::testing::ValuesIn(testing::kAllSplits),
                         [](const auto& info) { return std::string(testing::splitName(info.param)); });

}  // namespace
}  // namespace mailshim::proto::smtp
