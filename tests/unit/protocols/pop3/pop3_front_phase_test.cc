// Pop3FrontPhase transcripts (every input whole, byte by byte and at random
// splits; with and without Quirk::PlaintextAuth; STLS injection of
// client-quirks.md 6.A 4) and the POP3 codec.
#include "protocols/pop3/pop3_front_phase.h"

#include <gtest/gtest.h>

#include <string>

#include "protocols/common/base64.h"
#include "protocols/pop3/pop3.h"
#include "protocols/pop3/pop3_codec.h"
#include "protocols/protocol_registry.h"
#include "tests/unit/phase_harness.h"

namespace mailshim::proto::pop3 {
namespace {

using mailshim::testing::defaultContext;
using mailshim::testing::feedSplit;
using mailshim::testing::kAllSplits;
using mailshim::testing::Outcome;
using mailshim::testing::Split;
using mailshim::testing::splitName;
using namespace std::string_literals;

const std::string kBobPass = "b0b pa\"ss\\wd";
const std::string kPrivacy =
    "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n";

SessionContext tlsContext() {
  SessionContext c = defaultContext();
  c.client_tls = true;
  c.starttls_available = false;
  return c;
}

SessionContext plainContext(bool quirk) {
  SessionContext c = defaultContext();
  if (quirk) c.quirks.add(Quirk::PlaintextAuth);
  return c;
}

struct Session {
  explicit Session(const SessionContext& ctx) : phase(ctx) { o.add(phase.start()); }
  void feed(std::string_view bytes, Split split = Split::Whole, uint32_t seed = 1) {
    feedSplit(
        bytes, split, seed, [this](std::string_view b) { return phase.onDownstreamData(b); }, o);
  }
  std::string take() {
    std::string d = o.down.substr(seen);
    seen = o.down.size();
    return d;
  }
  Pop3FrontPhase phase;
  Outcome o;
  size_t seen = 0;
};

TEST(Pop3Codec, Commands) {
  auto c = parseCommand("pass b0b pa\"ss\\wd");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->keyword, "PASS");
  EXPECT_EQ(c->args, kBobPass);
  c = parseCommand("CAPA");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->args, "");
  EXPECT_FALSE(parseCommand(""));
  EXPECT_FALSE(parseCommand(" USER x"));
  EXPECT_FALSE(parseCommand("US.R x"));
  EXPECT_FALSE(parseCommand("USER a\rb"));
  EXPECT_FALSE(parseCommand("USER a\0b"s));
  EXPECT_FALSE(parseCommand("\x16\x03\x01"));  // a TLS ClientHello is not a command
}

TEST(Pop3Codec, StatusLinesAndCapa) {
  auto s = parseStatus("-ERR [SYS/TEMP] Try later.");
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->ok);
  EXPECT_EQ(s->code, "SYS/TEMP");
  EXPECT_EQ(s->text, "[SYS/TEMP] Try later.");
  s = parseStatus("+OK");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->ok);
  EXPECT_EQ(s->text, "");
  EXPECT_FALSE(parseStatus("+OKAY"));
  EXPECT_FALSE(parseStatus("+ abc"));
  EXPECT_TRUE(isContinuation("+ "));
  EXPECT_TRUE(isContinuation("+"));
  EXPECT_FALSE(isContinuation("+OK"));

  CapaList capa;
  for (const char* l : {"CAPA", "TOP", "..odd", "SASL PLAIN login", "STLS"}) EXPECT_FALSE(capa.add(l));
  EXPECT_TRUE(capa.add("."));
  EXPECT_TRUE(capa.has("stls"));
  EXPECT_TRUE(capa.has(".odd"));
  EXPECT_FALSE(capa.has("USER"));
  EXPECT_EQ(capa.saslMechanisms(), (std::vector<std::string>{"PLAIN", "LOGIN"}));
}

TEST(Pop3FrontPhase, GreetingAndCapaWithAndWithoutQuirk) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Session s(plainContext(false));
    EXPECT_EQ(s.take(), "+OK mail.example.test ready.\r\n");
    s.feed("CAPA\r\n", sp);
    EXPECT_EQ(s.take(),
              "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nSTLS\r\n.\r\n");

    Session q(plainContext(true));
    q.take();
    q.feed("capa\r\n", sp);
    EXPECT_EQ(q.take(),
              "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nSTLS\r\n"
              "USER\r\nSASL PLAIN LOGIN\r\n.\r\n");

    Session t(tlsContext());
    t.take();
    t.feed("CAPA\r\n", sp);
    EXPECT_EQ(t.take(),
              "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n"
              "USER\r\nSASL PLAIN LOGIN\r\n.\r\n");
  }
}

TEST(Pop3FrontPhase, PlaintextCredentialsRefusedWithoutQuirk) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Session s(plainContext(false));
    s.take();
    s.feed("USER bob\r\nPASS secret\r\nAUTH PLAIN " + base64Encode("\0bob\0secret"s) + "\r\nAUTH\r\n", sp);
    EXPECT_EQ(s.take(), kPrivacy + kPrivacy + kPrivacy + "+OK\r\n.\r\n");
    EXPECT_TRUE(s.o.auths.empty());
    EXPECT_EQ(s.o.connect_up, 0);
  }
}

TEST(Pop3FrontPhase, UserPassWithQuirk) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Session s(plainContext(true));
    s.take();
    s.feed("USER bob\r\nPASS " + kBobPass + "\r\n", sp);
    EXPECT_EQ(s.take(), "+OK\r\n");
    ASSERT_EQ(s.o.auths.size(), 1u);
    EXPECT_EQ(s.o.auths[0].creds.user, "bob");
    EXPECT_EQ(s.o.auths[0].creds.password.reveal(), kBobPass);
    EXPECT_EQ(s.o.auths[0].creds.method, AuthMethod::Pop3User);
    ASSERT_EQ(s.o.quirks.size(), 1u);
    EXPECT_EQ(s.o.quirks[0].quirk, Quirk::PlaintextAuth);
    EXPECT_EQ(s.o.connect_up, 1);
  }
}

TEST(Pop3FrontPhase, PassWithoutUser) {
  Session s(tlsContext());
  s.take();
  s.feed("PASS x\r\n");
  EXPECT_EQ(s.take(), "-ERR No username given.\r\n");
}

TEST(Pop3FrontPhase, AuthPlainAndLogin) {
  const std::string b64 = base64Encode("\0bob\0"s + kBobPass);
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Session s(tlsContext());
    s.take();
    s.feed("AUTH\r\n", sp);
    EXPECT_EQ(s.take(), "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n");
    s.feed("AUTH PLAIN " + b64 + "\r\n", sp);
    ASSERT_EQ(s.o.auths.size(), 1u);
    EXPECT_EQ(s.o.auths[0].creds.password.reveal(), kBobPass);
    EXPECT_TRUE(s.o.quirks.empty());

    Session t(tlsContext());
    t.take();
    t.feed("AUTH PLAIN\r\n", sp);
    EXPECT_EQ(t.take(), "+ \r\n");
    t.feed(b64 + "\r\n", sp);
    ASSERT_EQ(t.o.auths.size(), 1u);

    Session u(tlsContext());
    u.take();
    u.feed("AUTH LOGIN\r\n", sp);
    EXPECT_EQ(u.take(), "+ VXNlcm5hbWU6\r\n");
    u.feed(base64Encode("bob") + "\r\n", sp);
    EXPECT_EQ(u.take(), "+ UGFzc3dvcmQ6\r\n");
    u.feed(base64Encode(kBobPass) + "\r\n", sp);
    ASSERT_EQ(u.o.auths.size(), 1u);
    EXPECT_EQ(u.o.auths[0].creds.method, AuthMethod::Login);
    EXPECT_EQ(u.o.auths[0].creds.password.reveal(), kBobPass);

    Session v(tlsContext());
    v.take();
    v.feed("AUTH LOGIN " + base64Encode("bob") + "\r\n", sp);
    EXPECT_EQ(v.take(), "+ UGFzc3dvcmQ6\r\n");
  }
}

TEST(Pop3FrontPhase, AuthCancelBadBase64UnknownMechanism) {
  Session s(tlsContext());
  s.take();
  s.feed("AUTH PLAIN\r\n*\r\nAUTH LOGIN\r\n*\r\nAUTH PLAIN !!!!\r\nAUTH CRAM-MD5\r\n");
  EXPECT_EQ(s.take(),
            "+ \r\n-ERR Authentication aborted by client.\r\n+ VXNlcm5hbWU6\r\n"
            "-ERR Authentication aborted by client.\r\n"
            "-ERR Invalid base64 data in continued response.\r\n"
            "-ERR Unsupported authentication mechanism.\r\n");
  EXPECT_TRUE(s.o.auths.empty());
}

TEST(Pop3FrontPhase, LoginResults) {
  {
    Session s(tlsContext());
    s.feed("USER bob\r\nPASS x\r\nSTAT\r\n");
    s.take();
    LoginResult r;
    r.kind = LoginResult::Kind::Ok;
    r.text = "Logged in.";
    s.o.add(s.phase.onLoginResult(r));
    EXPECT_EQ(s.take(), "+OK Logged in.\r\n");
    ASSERT_TRUE(s.o.relay);
    EXPECT_EQ(s.o.relay->to_upstream, "STAT\r\n");
  }
  {
    Session s(tlsContext());
    s.feed("USER bob\r\nPASS x\r\nCAPA\r\n");
    s.take();
    LoginResult r;
    r.kind = LoginResult::Kind::AuthFailed;
    r.text = "[AUTH] Authentication failed.";
    s.o.add(s.phase.onLoginResult(r));
    EXPECT_EQ(s.take().substr(0, 37), "-ERR [AUTH] Authentication failed.\r\n+");
    s.feed("USER bob\r\nPASS y\r\n");
    EXPECT_EQ(s.o.auths.size(), 2u);
    EXPECT_EQ(s.o.connect_up, 1);
    r.kind = LoginResult::Kind::TempFail;
    r.text = "[SYS/TEMP] Temporary failure.";
    s.take();
    s.o.add(s.phase.onLoginResult(r));
    EXPECT_EQ(s.take(), "-ERR [SYS/TEMP] Temporary failure.\r\n");
    EXPECT_FALSE(s.o.close);
  }
  {
    Session s(tlsContext());
    s.feed("USER bob\r\nPASS x\r\n");
    s.take();
    s.o.add(s.phase.onLoginResult(LoginResult{}));
    EXPECT_EQ(s.take(), "-ERR [SYS/TEMP] Backend server unavailable.\r\n");
    EXPECT_EQ(s.o.close, CloseReason::UpstreamUnavailable);
  }
}

// client-quirks.md 6.A 4: "STLS\r\nCAPA\r\n" in one segment; CAPA never answered.
TEST(Pop3FrontPhase, StlsInjectionIsNeverAnswered) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Session s(plainContext(false));
    s.take();
    s.feed("STLS\r\nCAPA\r\n", sp);
    EXPECT_EQ(s.take(), "+OK Begin TLS negotiation now.\r\n");
    EXPECT_EQ(s.o.starttls_down, 1);
    EXPECT_EQ(s.o.trace.back(), "TLS-DOWN");
    EXPECT_FALSE(s.o.notes.empty());
    s.o.add(s.phase.onDownstreamTls());
    s.feed("USER bob\r\n", sp);
    EXPECT_EQ(s.take(), "+OK\r\n");  // no CAPA listing ever appeared
    s.feed("STLS\r\n", sp);
    EXPECT_EQ(s.take(), "-ERR TLS is already active.\r\n");
  }
}

TEST(Pop3FrontPhase, StlsForgetsUser) {
  Session s(plainContext(true));
  s.feed("USER mallory\r\nSTLS\r\n");
  s.o.add(s.phase.onDownstreamTls());
  s.take();
  s.feed("PASS x\r\n");
  EXPECT_EQ(s.take(), "-ERR No username given.\r\n");
}

TEST(Pop3FrontPhase, UnknownCommandsMaxErrorsQuitTimeout) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    SessionContext c = tlsContext();
    c.max_errors = 3;
    Session s(c);
    s.take();
    s.feed("STAT\r\nFROB\r\nRETR 1\r\nNOOP\r\n", sp);
    EXPECT_EQ(s.take(),
              "-ERR [AUTH] Authenticate first.\r\n-ERR Unknown command.\r\n"
              "-ERR Too many invalid commands.\r\n");
    EXPECT_EQ(s.o.close, CloseReason::TooManyErrors);
  }
  Session q(tlsContext());
  q.take();
  q.feed("QUIT\r\nCAPA\r\n");
  EXPECT_EQ(q.take(), "+OK Logging out.\r\n");
  EXPECT_EQ(q.o.close, CloseReason::ClientQuit);

  Session t(tlsContext());
  t.take();
  t.o.add(t.phase.onTimeout());
  EXPECT_EQ(t.take(), "-ERR Disconnected for inactivity.\r\n");
  EXPECT_EQ(t.o.close, CloseReason::Timeout);
}

TEST(Pop3FrontPhase, OverLongLinesAndControlCharacters) {
  SessionContext c = tlsContext();
  c.max_line_bytes = 64;
  Session s(c);
  s.take();
  s.feed("USER " + std::string(200, 'x') + "\r\nUSER a\0b\r\nUSER bob\r\n"s);
  EXPECT_EQ(s.take(), "-ERR Command line too long.\r\n-ERR Unknown command.\r\n+OK\r\n");
}

TEST(Pop3Facade, RegistryAndCloseNotices) {
  SessionContext c = defaultContext();
  EXPECT_NE(makeFrontPhase(Protocol::Pop3, c), nullptr);
  EXPECT_NE(makeUpstreamLogin(Protocol::Pop3, c, UpstreamContext{}), nullptr);
  EXPECT_EQ(makeRelayFilter(Protocol::Pop3, c), nullptr);
  EXPECT_EQ(pop3CloseNotice(CloseReason::Timeout, "x"), "-ERR Disconnected for inactivity.\r\n");
  EXPECT_EQ(pop3CloseNotice(CloseReason::UpstreamLost, "x"), "-ERR [SYS/TEMP] Backend connection lost.\r\n");
  EXPECT_EQ(pop3CloseNotice(CloseReason::Shutdown, "x"), "-ERR Server shutting down.\r\n");
  EXPECT_EQ(pop3CloseNotice(CloseReason::ClientEof, "x"), "");
}

// --- retired plaintext_auth (the admin's message, EN and JA) --------------------

const std::string kRetiredEn =
    "Plain-text login was retired on 2027-03-31. Set your mail program to SSL/TLS on port 995: "
    "https://help.example.test/mail";
const std::string kRetiredJa =
    "平文ログインは2027年3月31日に廃止されました。メールソフトで SSL/TLS（ポート995）を選んでください: "
    "https://help.example.test/mail";

TEST(Pop3FrontPhase, RetiredPlaintextAuthCarriesMessageNeverForwards) {
  for (const std::string& msg : {kRetiredEn, kRetiredJa}) {
    for (Split sp : kAllSplits) {
      SCOPED_TRACE(splitName(sp));
      SessionContext c = defaultContext();
      c.retired_quirks.add(Quirk::PlaintextAuth);
      c.retired_message = msg;
      Session s(c);
      s.take();
      s.feed("CAPA\r\nUSER bob\r\nPASS secret\r\nAUTH PLAIN " + base64Encode("\0bob\0secret"s) + "\r\nAUTH\r\n", sp);
      const std::string refusal = "-ERR [AUTH] " + msg + "\r\n";
      EXPECT_EQ(s.take(), "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nSTLS\r\n.\r\n" +
                              refusal + refusal + refusal + "+OK\r\n.\r\n");
      EXPECT_TRUE(s.o.auths.empty());
      EXPECT_EQ(s.o.connect_up, 0);
      ASSERT_EQ(s.o.quirks.size(), 3u);
      EXPECT_EQ(s.o.quirks[0].quirk, Quirk::PlaintextAuth);
      EXPECT_EQ(s.o.quirks[0].detail, "retired: POP3 USER without TLS refused");
      EXPECT_EQ(s.o.quirks[1].detail, "retired: POP3 PASS without TLS refused");
      EXPECT_EQ(s.o.quirks[2].detail, "retired: POP3 AUTH without TLS refused");
    }
  }
}

TEST(Pop3FrontPhase, RetiredExampleFromTheIssue) {
  SessionContext c = defaultContext();
  c.retired_quirks.add(Quirk::PlaintextAuth);
  c.retired_message =
      "Plain-text login was retired on 2027-03-31. Set your mail program to SSL/TLS on port 995: https://...";
  Session s(c);
  s.take();
  s.feed("USER bob\r\n");
  EXPECT_EQ(s.take(),
            "-ERR [AUTH] Plain-text login was retired on 2027-03-31. Set your mail program to SSL/TLS on port 995: "
            "https://...\r\n");
}

}  // namespace
}  // namespace mailshim::proto::pop3
