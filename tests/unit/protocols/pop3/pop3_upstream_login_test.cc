// Pop3UpstreamLogin against scripted Dovecot 2.3 transcripts, every backend
// reply whole, byte by byte and at random splits; STLS stripping/refusal and
// response injection (client-quirks.md 6.B 12, 6.C 18), XCLIENT forwarding.
#include "protocols/pop3/pop3_upstream_login.h"

#include <gtest/gtest.h>

#include <string>

#include "protocols/common/base64.h"
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

const std::string kGreeting = "+OK Dovecot (Debian) ready.\r\n";
const std::string kPreTlsCapa =
    "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nSTLS\r\nSASL\r\n.\r\n";
const std::string kPostTlsCapa =
    "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nUSER\r\n"
    "SASL PLAIN LOGIN\r\n.\r\n";
const std::string kBobPass = "b0b pa\"ss\\wd";

SessionContext clientContext() {
  SessionContext c = defaultContext();
  c.client_ip = "192.0.2.10";
  c.client_port = 50123;
  c.session_id = "T0001";
  return c;
}

UpstreamContext upstream(UpstreamTls tls = UpstreamTls::Starttls,
                         ClientAddressMode mode = ClientAddressMode::None) {
  UpstreamContext u;
  u.tls = tls;
  u.client_address = mode;
  return u;
}

Authenticate bob(std::string pass = kBobPass) {
  Authenticate a;
  a.creds.user = "bob";
  a.creds.password = Secret(std::move(pass));
  return a;
}

struct Backend {
  explicit Backend(UpstreamContext up = upstream()) : login(clientContext(), up) {
    o.add(login.onConnected());
  }
  void reply(std::string_view bytes, Split split = Split::Whole, uint32_t seed = 5) {
    feedSplit(
        bytes, split, seed, [this](std::string_view b) { return login.onUpstreamData(b); }, o);
  }
  std::string sent() {
    std::string u = o.up.substr(seen);
    seen = o.up.size();
    return u;
  }
  Pop3UpstreamLogin login;
  Outcome o;
  size_t seen = 0;
};

void toTls(Backend& b, Split sp) {
  b.reply(kGreeting, sp);
  EXPECT_EQ(b.sent(), "CAPA\r\n");
  b.reply(kPreTlsCapa, sp);
  EXPECT_EQ(b.sent(), "STLS\r\n");
  b.reply("+OK Begin TLS negotiation now.\r\n", sp);
  EXPECT_EQ(b.o.starttls_up, 1);
  b.o.add(b.login.onUpstreamTls());
  EXPECT_EQ(b.sent(), "CAPA\r\n");
}

TEST(Pop3UpstreamLogin, DovecotStlsThenAuthPlain) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Backend b;
    b.o.add(b.login.login(bob()));
    toTls(b, sp);
    b.reply(kPostTlsCapa, sp);
    EXPECT_EQ(b.sent(), "AUTH PLAIN " + base64Encode("\0bob\0"s + kBobPass) + "\r\n");
    b.reply("+OK Logged in.\r\n", sp);
    ASSERT_TRUE(b.o.login_done);
    EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::Ok);
    EXPECT_EQ(b.o.login_done->text, "Logged in.");
  }
}

TEST(Pop3UpstreamLogin, WrongPasswordThenRetry) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Backend b;
    toTls(b, sp);
    b.reply(kPostTlsCapa, sp);
    EXPECT_EQ(b.sent(), "");
    b.o.add(b.login.login(bob("wrong")));
    b.sent();
    b.reply("-ERR [AUTH] Authentication failed.\r\n", sp);
    ASSERT_TRUE(b.o.login_done);
    EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::AuthFailed);
    EXPECT_EQ(b.o.login_done->text, "[AUTH] Authentication failed.");
    b.o.login_done.reset();
    b.o.add(b.login.login(bob()));
    EXPECT_EQ(b.sent(), "AUTH PLAIN " + base64Encode("\0bob\0"s + kBobPass) + "\r\n");
    b.reply("+OK Logged in.\r\n+OK extra", sp);
    ASSERT_TRUE(b.o.login_done);
    EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::Ok);
    // Bytes in the same read as the verdict are handed over; later ones go to the relay.
    if (sp == Split::Whole) {
      EXPECT_EQ(b.o.login_done->leftover, "+OK extra");
    }
  }
}

TEST(Pop3UpstreamLogin, TemporaryFailures) {
  for (std::string reply :
       {"-ERR [SYS/TEMP] Temporary authentication failure.\r\n"s, "-ERR [IN-USE] Mailbox locked.\r\n"s}) {
    Backend b(upstream(UpstreamTls::Implicit));
    b.o.add(b.login.login(bob()));
    b.reply(kGreeting);
    b.reply(kPostTlsCapa);
    b.sent();
    b.reply(reply);
    ASSERT_TRUE(b.o.login_done);
    EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::TempFail);
    EXPECT_EQ(b.o.login_done->text + "\r\n", reply.substr(5));
  }
}

TEST(Pop3UpstreamLogin, NoStlsMeansNoLogin) {
  const std::string stripped[] = {
      "+OK\r\nCAPA\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n",  // STLS removed
      "-ERR CAPA hidden\r\n",                              // O_3
  };
  for (const auto& capa : stripped) {
    Backend b;
    b.o.add(b.login.login(bob()));
    b.reply("+OK <1234.123456789@example.org>\r\n");  // APOP banner: ignored
    b.sent();
    b.reply(capa);
    ASSERT_TRUE(b.o.login_done);
    EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::TempFail);
    EXPECT_EQ(b.o.login_done->text, "");
    EXPECT_EQ(b.sent(), "");
  }
  Backend r;
  r.o.add(r.login.login(bob()));
  r.reply(kGreeting + kPreTlsCapa);
  r.sent();
  r.reply("-ERR STARTTLS not supported.\r\n");
  ASSERT_TRUE(r.o.login_done);
  EXPECT_EQ(r.o.login_done->kind, LoginResult::Kind::TempFail);
  EXPECT_EQ(r.sent(), "");
}

// 6.B 12 and 6.C 20: bytes after "+OK" to STLS are dropped; CAPA re-asked.
TEST(Pop3UpstreamLogin, InjectionAfterStlsIgnoredAndCapaForgotten) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Backend b;
    b.o.add(b.login.login(bob()));
    b.reply(kGreeting + "+OK\r\nSTLS\r\nSASL PLAIN\r\n.\r\n", sp);
    b.sent();
    b.reply("+OK Begin fake TLS negotiation now.\r\n+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n", sp);
    EXPECT_EQ(b.o.starttls_up, 1);
    b.o.add(b.login.onUpstreamTls());
    EXPECT_EQ(b.sent(), "CAPA\r\n");
    // Post-TLS listing without SASL PLAIN: USER/PASS, not the pre-TLS PLAIN.
    b.reply("+OK\r\nCAPA\r\nUSER\r\n.\r\n", sp);
    EXPECT_EQ(b.sent(), "USER bob\r\n");
    b.reply("+OK\r\n", sp);
    EXPECT_EQ(b.sent(), "PASS " + kBobPass + "\r\n");
    b.reply("+OK Logged in.\r\n", sp);
    ASSERT_TRUE(b.o.login_done);
    EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::Ok);
  }
}

TEST(Pop3UpstreamLogin, NonUtf8UserNeverSentRawInUser) {
  Backend b(upstream(UpstreamTls::Implicit));
  Authenticate a = bob();
  a.creds.user = "\xff\xfe@example.test";
  b.o.add(b.login.login(std::move(a)));
  b.reply(kGreeting);
  EXPECT_EQ(b.sent(), "CAPA\r\n");
  b.reply("+OK\r\nCAPA\r\nUSER\r\n.\r\n");
  ASSERT_TRUE(b.o.login_done);
  EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::AuthFailed);
  EXPECT_EQ(b.sent(), "");
  // The same name still goes base64-encoded when SASL PLAIN is offered (the backend decides).
  Backend c(upstream(UpstreamTls::Implicit));
  Authenticate a2 = bob();
  a2.creds.user = "\xff\xfe@example.test";
  c.o.add(c.login.login(std::move(a2)));
  c.reply(kGreeting + "+OK\r\nSASL PLAIN\r\n.\r\n");
  c.sent();
  EXPECT_FALSE(c.o.login_done);
}

TEST(Pop3UpstreamLogin, XclientWhenOfferedElseWarning) {
  {
    Backend b(upstream(UpstreamTls::Implicit, ClientAddressMode::Xclient));
    b.o.add(b.login.login(bob()));
    b.reply(kGreeting + "+OK\r\nCAPA\r\nUSER\r\nSASL PLAIN LOGIN\r\nXCLIENT\r\n.\r\n");
    EXPECT_EQ(b.sent(), "CAPA\r\nXCLIENT ADDR=192.0.2.10 PORT=50123 SESSION=T0001\r\n");
    b.reply("+OK\r\n");
    EXPECT_EQ(b.sent().substr(0, 11), "AUTH PLAIN ");
  }
  {
    Backend b(upstream(UpstreamTls::Implicit, ClientAddressMode::Xclient));
    b.o.add(b.login.login(bob()));
    b.reply(kGreeting + kPostTlsCapa);
    EXPECT_EQ(b.sent().substr(0, 17), "CAPA\r\nAUTH PLAIN ");
    ASSERT_FALSE(b.o.notes.empty());
    EXPECT_NE(b.o.notes[0].text.find("login_trusted_networks"), std::string::npos);
  }
}

// Dovecot 2.3 announces XCLIENT to login_trusted_networks only in the
// greeting's response code, never in CAPA (seen against the lab Dovecot).
TEST(Pop3UpstreamLogin, XclientAnnouncedInDovecotGreeting) {
  Backend b(upstream(UpstreamTls::Implicit, ClientAddressMode::Xclient));
  b.o.add(b.login.login(bob()));
  b.reply("+OK [XCLIENT] Dovecot (Debian) ready.\r\n" + kPostTlsCapa);
  // Dovecot offers PIPELINING: XCLIENT and AUTH go out in one write.
  EXPECT_EQ(b.sent(), "CAPA\r\nXCLIENT ADDR=192.0.2.10 PORT=50123 SESSION=T0001\r\nAUTH PLAIN " +
                          base64Encode("\0bob\0"s + kBobPass) + "\r\n");
  b.reply("+OK Updated\r\n");
  EXPECT_EQ(b.sent(), "");
  EXPECT_FALSE(b.o.login_done);
  b.reply("+OK Logged in.\r\n");
  ASSERT_TRUE(b.o.login_done);
  EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::Ok);
  EXPECT_TRUE(b.o.notes.empty());
  // One write for both (the trace holds one entry per SendUpstream).
  int writes = 0;
  for (const auto& e : b.o.trace) writes += e.rfind("U:", 0) == 0;
  EXPECT_EQ(writes, 2);  // CAPA, then XCLIENT+AUTH
}

TEST(Pop3UpstreamLogin, PipelinedXclientVerdictsComeFirst) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    // Refused XCLIENT: a warning, and the login still proceeds.
    Backend b(upstream(UpstreamTls::Implicit, ClientAddressMode::Xclient));
    b.o.add(b.login.login(bob()));
    b.reply("+OK [XCLIENT] Dovecot (Debian) ready.\r\n" + kPostTlsCapa, sp);
    b.sent();
    b.reply("-ERR You are not from trusted IP\r\n-ERR [AUTH] Authentication failed.\r\n", sp);
    ASSERT_TRUE(b.o.login_done);
    EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::AuthFailed);
    ASSERT_EQ(b.o.notes.size(), 1u);
    EXPECT_NE(b.o.notes[0].text.find("refused XCLIENT"), std::string::npos);

    // No SASL PLAIN: XCLIENT pipelined with USER; PASS waits for USER's +OK.
    Backend u(upstream(UpstreamTls::Implicit, ClientAddressMode::Xclient));
    u.o.add(u.login.login(bob()));
    u.reply("+OK [XCLIENT] ready.\r\n+OK\r\nPIPELINING\r\nUSER\r\n.\r\n", sp);
    EXPECT_EQ(u.sent(), "CAPA\r\nXCLIENT ADDR=192.0.2.10 PORT=50123 SESSION=T0001\r\nUSER bob\r\n");
    u.reply("+OK\r\n", sp);
    EXPECT_EQ(u.sent(), "");
    u.reply("+OK\r\n", sp);
    EXPECT_EQ(u.sent(), "PASS " + kBobPass + "\r\n");
    u.reply("+OK Logged in.\r\n", sp);
    ASSERT_TRUE(u.o.login_done);
    EXPECT_EQ(u.o.login_done->kind, LoginResult::Kind::Ok);
  }
}

TEST(Pop3UpstreamLogin, ProtocolErrors) {
  for (std::string bad : {"+ \r\n"s, "garbage\r\n"s, std::string(9000, 'x') + "\r\n"}) {
    Backend b(upstream(UpstreamTls::Implicit));
    b.o.add(b.login.login(bob()));
    b.reply(kGreeting + kPostTlsCapa);
    b.sent();
    b.reply(bad);
    ASSERT_TRUE(b.o.login_done);
    EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::TempFail);
    EXPECT_EQ(b.o.login_done->text, "");
  }
  // A greeting -ERR over a plaintext STARTTLS leg is not shown to the client.
  Backend g;
  g.o.add(g.login.login(bob()));
  g.reply("-ERR [SYS/TEMP] busy\r\n");
  ASSERT_TRUE(g.o.login_done);
  EXPECT_EQ(g.o.login_done->text, "");
}

}  // namespace
}  // namespace mailshim::proto::pop3
