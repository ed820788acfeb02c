// ImapUpstreamLogin against scripted Dovecot 2.3 transcripts (exact lines
// from a stock iRedMail backend), every backend reply whole, byte by byte and
// at random splits; plus the response-injection, PREAUTH, stripping and
// referral cases of client-quirks.md 6.B-6.D.
#include "protocols/imap/imap_upstream_login.h"

#include <gtest/gtest.h>

#include <string>

#include "protocols/common/base64.h"
#include "tests/unit/phase_harness.h"

namespace mailshim::proto::imap {
namespace {

using mailshim::testing::defaultContext;
using mailshim::testing::feedSplit;
using mailshim::testing::kAllSplits;
using mailshim::testing::Outcome;
using mailshim::testing::Split;
using mailshim::testing::splitName;
using namespace std::string_literals;

const std::string kGreeting =
    "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS "
    "LOGINDISABLED] Dovecot (Debian) ready.\r\n";
const std::string kPostTlsCaps =
    "* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN AUTH=LOGIN\r\n";
const std::string kOkText =
    "[CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY "
    "THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT "
    "CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES "
    "WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE "
    "SAVEDATE LITERAL+ NOTIFY SPECIAL-USE] Logged in";
const std::string kBobPass = "b0b pa\"ss\\wd";

SessionContext clientContext() {
  SessionContext c = defaultContext();
  c.client_ip = "192.0.2.10";
  c.client_port = 50123;
  c.local_ip = "198.51.100.1";
  c.local_port = 143;
  c.session_id = "T0001";
  return c;
}

UpstreamContext upstream(UpstreamTls tls = UpstreamTls::Starttls,
                         ClientAddressMode mode = ClientAddressMode::ImapId) {
  UpstreamContext u;
  u.helo_name = "mailshim.example.test";
  u.tls = tls;
  u.client_address = mode;
  return u;
}

Authenticate bob(std::string pass = kBobPass) {
  Authenticate a;
  a.creds.user = "bob";
  a.creds.password = Secret(std::move(pass));
  a.id_fields = {{"name", "Microsoft Office 365"},
                 {"version", "15.20.9160.4"},
                 {"x-originating-ip", "6.6.6.6"},
                 {"support-url", "https://x/"}};
  return a;
}

struct Backend {
  Backend(UpstreamContext up = upstream(), SessionContext ctx = clientContext()) : login(ctx, up) {
    o.add(login.onConnected());
  }
  void reply(std::string_view bytes, Split split = Split::Whole, uint32_t seed = 3) {
    feedSplit(
        bytes, split, seed, [this](std::string_view b) { return login.onUpstreamData(b); }, o);
  }
  // Commands sent to the backend since the last call.
  std::string sent() {
    std::string u = o.up.substr(seen);
    seen = o.up.size();
    return u;
  }
  ImapUpstreamLogin login;
  Outcome o;
  size_t seen = 0;
};

const std::string kIdLine =
    "m3 ID (\"x-originating-ip\" \"192.0.2.10\" \"x-originating-port\" \"50123\" \"x-connected-ip\" "
    "\"198.51.100.1\" \"x-connected-port\" \"143\" \"x-session-ext-id\" \"T0001\" \"name\" "
    "\"Microsoft Office 365\" \"version\" \"15.20.9160.4\")\r\n";

std::string authLine(int tag, const std::string& pass = kBobPass) {
  return "m" + std::to_string(tag) + " AUTHENTICATE PLAIN " + base64Encode("\0bob\0"s + pass) + "\r\n";
}

// Greeting, STARTTLS, post-TLS CAPABILITY; leaves the phase waiting for the
// replies to ID and, pipelined behind it, AUTHENTICATE.
void toId(Backend& b, Split sp, const std::string& pass = kBobPass) {
  b.reply(kGreeting, sp);
  EXPECT_EQ(b.sent(), "m1 STARTTLS\r\n");
  b.reply("m1 OK Begin TLS negotiation now.\r\n", sp);
  EXPECT_EQ(b.o.starttls_up, 1);
  b.o.add(b.login.onUpstreamTls());
  EXPECT_EQ(b.sent(), "m2 CAPABILITY\r\n");
  b.reply(kPostTlsCaps + "m2 OK Pre-login capabilities listed, post-login capabilities have more.\r\n", sp);
  EXPECT_EQ(b.sent(), kIdLine + authLine(4, pass));
}

TEST(ImapUpstreamLogin, DovecotStarttlsIdAuthenticatePlain) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Backend b;
    b.o.add(b.login.login(bob()));  // credentials may arrive before the greeting
    EXPECT_EQ(b.sent(), "");
    toId(b, sp);
    b.reply("* ID (\"name\" \"Dovecot\")\r\nm3 OK ID completed.\r\n", sp);
    EXPECT_EQ(b.sent(), "");
    EXPECT_FALSE(b.o.login_done);
    b.reply("m4 OK " + kOkText + "\r\n", sp);
    ASSERT_TRUE(b.o.login_done);
    EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::Ok);
    EXPECT_EQ(b.o.login_done->code, "OK");
    EXPECT_EQ(b.o.login_done->text, kOkText);
    EXPECT_EQ(b.o.login_done->leftover, "");
  }
}

TEST(ImapUpstreamLogin, CredentialsAfterReadinessAndLeftover) {
  Backend b;
  b.reply(kGreeting);
  b.reply("m1 OK Begin TLS negotiation now.\r\n");
  b.o.add(b.login.onUpstreamTls());
  b.reply(kPostTlsCaps + "m2 OK Pre-login capabilities listed.\r\n");
  b.sent();
  EXPECT_EQ(b.o.up.find(" ID "), std::string::npos);  // nothing before credentials
  b.o.add(b.login.login(bob()));
  EXPECT_EQ(b.sent(), kIdLine + authLine(4));
  b.reply("* ID NIL\r\nm3 OK ID completed.\r\nm4 OK Logged in\r\n* 2 EXISTS\r\n");
  ASSERT_TRUE(b.o.login_done);
  EXPECT_EQ(b.o.login_done->text, "Logged in");
  EXPECT_EQ(b.o.login_done->leftover, "* 2 EXISTS\r\n");
}

TEST(ImapUpstreamLogin, EachCommandIsItsOwnWrite) {
  Backend b;
  b.o.add(b.login.login(bob()));
  toId(b, Split::Whole);
  // ...and the only thing between STARTTLS and CAPABILITY is the handshake.
  std::vector<std::string> t;
  for (const auto& e : b.o.trace)
    if (e.rfind("U:", 0) == 0 || e == "TLS-UP") t.push_back(e);
  ASSERT_GE(t.size(), 3u);
  EXPECT_EQ(t[0], "U:m1 STARTTLS\r\n");
  EXPECT_EQ(t[1], "TLS-UP");
  EXPECT_EQ(t[2], "U:m2 CAPABILITY\r\n");
  // ID and the login command it is pipelined with go out in one write.
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[3], "U:" + kIdLine + authLine(4));
}

TEST(ImapUpstreamLogin, PipelinedIdRefusedStillLogsIn) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Backend b;
    b.o.add(b.login.login(bob()));
    toId(b, sp);
    const size_t notes = b.o.notes.size();
    b.reply("m3 BAD Error in IMAP command ID.\r\nm4 OK Logged in\r\n", sp);
    EXPECT_EQ(b.o.notes.size(), notes + 1);  // the address was not forwarded: said once
    ASSERT_TRUE(b.o.login_done);
    EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::Ok);
    EXPECT_EQ(b.o.login_done->leftover, "");
  }
}

TEST(ImapUpstreamLogin, LoginAnsweredBeforePipelinedIdIsRefused) {
  Backend b;
  b.o.add(b.login.login(bob()));
  toId(b, Split::Whole);
  // Out of order: what follows must not become relay data for the client.
  b.reply("m4 OK Logged in\r\nm3 OK ID completed.\r\n");
  ASSERT_TRUE(b.o.login_done);
  EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::TempFail);
  EXPECT_EQ(b.o.login_done->leftover, "");
}

TEST(ImapUpstreamLogin, IdWithSynchronizingLiteralIsNotPipelined) {
  Backend b(upstream(UpstreamTls::Implicit, ClientAddressMode::ImapId));
  Authenticate a = bob();
  a.id_fields = {{"name", "\xc3\xa9t\xc3\xa9"}};
  b.o.add(b.login.login(std::move(a)));
  b.reply("* OK [CAPABILITY IMAP4rev1 ID SASL-IR AUTH=PLAIN] ready.\r\n");
  const std::string sent = b.sent();
  EXPECT_TRUE(sent.starts_with("m1 ID (") && sent.ends_with(" \"name\" {5}\r\n")) << sent;  // waits for "+"
  b.reply("+ OK\r\n");
  EXPECT_EQ(b.sent(), "\xc3\xa9t\xc3\xa9)\r\n");
  b.reply("m1 OK ID completed.\r\n");
  EXPECT_EQ(b.sent(), authLine(2));
  b.reply("m2 OK Logged in\r\n");
  ASSERT_TRUE(b.o.login_done);
  EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::Ok);
}

TEST(ImapUpstreamLogin, PreauthGreetingIsRefused) {
  for (bool early : {true, false}) {
    Backend b;
    if (early) b.o.add(b.login.login(bob()));
    b.reply("* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] IMAP server ready.\r\n");
    if (!early) {
      EXPECT_FALSE(b.o.login_done);
      b.o.add(b.login.login(bob()));
    }
    ASSERT_TRUE(b.o.login_done);
    EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::TempFail);
    EXPECT_EQ(b.o.login_done->text, "");  // the front closes with its own BYE
    EXPECT_EQ(b.o.up, "");
    EXPECT_FALSE(b.o.notes.empty());
  }
}

TEST(ImapUpstreamLogin, NoStarttlsMeansNoLogin) {
  // Capability stripped from the greeting (6.C 17 O_1).
  Backend b;
  b.o.add(b.login.login(bob()));
  b.reply("* OK [CAPABILITY IMAP4rev1 SASL-IR ID AUTH=PLAIN] Dovecot ready.\r\n");
  ASSERT_TRUE(b.o.login_done);
  EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::TempFail);
  EXPECT_EQ(b.o.up, "");

  // No capability code: mailshim asks, gets IMAP4 only (D_2).
  Backend c;
  c.o.add(c.login.login(bob()));
  c.reply("* OK IMAP server ready.\r\n");
  EXPECT_EQ(c.sent(), "m1 CAPABILITY\r\n");
  c.reply("* CAPABILITY IMAP4 AUTH=PLAIN\r\nm1 OK done\r\n");
  ASSERT_TRUE(c.o.login_done);
  EXPECT_EQ(c.o.login_done->kind, LoginResult::Kind::TempFail);
  EXPECT_EQ(c.sent(), "");
}

TEST(ImapUpstreamLogin, StarttlsRefusals) {
  for (std::string refusal : {"m1 NO do not begin TLS now.\r\n"s, "m1 BAD do not begin TLS now.\r\n"s,
                              "+ continue with something.\r\n"s}) {
    SCOPED_TRACE(refusal);
    Backend b;
    b.o.add(b.login.login(bob()));
    b.reply(kGreeting);
    b.sent();
    b.reply(refusal);
    ASSERT_TRUE(b.o.login_done);
    EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::TempFail);
    EXPECT_EQ(b.o.login_done->text, "");
    EXPECT_EQ(b.o.starttls_up, 0);
    EXPECT_EQ(b.sent(), "");
  }
}

// 6.B 9-11 and 6.E 24: injected plaintext around the STARTTLS go-ahead.
TEST(ImapUpstreamLogin, ResponseInjectionAroundStarttlsIsIgnored) {
  const std::string injections[] = {
      "m1 OK begin STARTTLS now.\r\n* CAPABILITY IMAP4REV1 AUTH=PLAIN AUTH=LOGIN\r\n2 OK capability "
      "done.\r\n",
      "m1 OK begin STARTTLS now.\r\n* OK [ALERT] suffix.\r\n",
      "m1 OK begin STARTTLS now.\r\n* BYE close the connection please.\r\n",
      "* OK [ALERT] prefix.\r\n* 54321 EXISTS\r\n* CAPABILITY IDLE\r\nm1 OK begin STARTTLS now.\r\n",
  };
  for (const auto& inj : injections) {
    for (Split sp : kAllSplits) {
      SCOPED_TRACE(inj + splitName(sp));
      Backend b;
      b.o.add(b.login.login(bob()));
      b.reply(kGreeting, sp);
      b.sent();
      b.reply(inj, sp);
      EXPECT_EQ(b.o.starttls_up, 1);
      EXPECT_FALSE(b.o.login_done);
      b.reply("* BYE late injection before the handshake\r\n", sp);  // discarded too
      b.o.add(b.login.onUpstreamTls());
      EXPECT_EQ(b.sent(), "m2 CAPABILITY\r\n");
      b.reply(kPostTlsCaps + "m2 OK done.\r\n", sp);
      EXPECT_EQ(b.sent(), kIdLine + authLine(4));
      EXPECT_FALSE(b.o.login_done);
    }
  }
}

// 6.C 20: only the post-TLS capability list counts.
TEST(ImapUpstreamLogin, PreTlsCapabilitiesAreForgotten) {
  Backend b(upstream(UpstreamTls::Starttls, ClientAddressMode::None));
  b.o.add(b.login.login(bob()));
  b.reply("* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ STARTTLS AUTH=PLAIN] ready.\r\n");
  b.reply("m1 OK go\r\n");
  b.o.add(b.login.onUpstreamTls());
  EXPECT_EQ(b.sent(), "m1 STARTTLS\r\nm2 CAPABILITY\r\n");
  b.reply("* CAPABILITY IMAP4rev1 AUTH=LOGIN\r\nm2 OK done\r\n");
  // No AUTH=PLAIN and no SASL-IR after TLS: the LOGIN command with quoted strings.
  EXPECT_EQ(b.sent(), "m3 LOGIN \"bob\" \"b0b pa\\\"ss\\\\wd\"\r\n");
  b.reply("m3 OK Logged in\r\n");
  ASSERT_TRUE(b.o.login_done);
  EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::Ok);
}

TEST(ImapUpstreamLogin, WrongPasswordThenRetryOnTheSameConnection) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Backend b;
    b.o.add(b.login.login(bob("wrong")));
    toId(b, sp, "wrong");
    b.reply("m3 OK ID completed.\r\n", sp);
    EXPECT_EQ(b.sent(), "");
    b.reply("m4 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", sp);
    ASSERT_TRUE(b.o.login_done);
    EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::AuthFailed);
    EXPECT_EQ(b.o.login_done->text, "[AUTHENTICATIONFAILED] Authentication failed.");
    b.o.login_done.reset();
    b.o.add(b.login.login(bob()));
    // ID is not repeated; a fresh tag is used.
    EXPECT_EQ(b.sent(), authLine(5));
    b.reply("m5 OK Logged in\r\n", sp);
    ASSERT_TRUE(b.o.login_done);
    EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::Ok);
  }
}

TEST(ImapUpstreamLogin, BackendVerdicts) {
  struct Case {
    std::string reply;
    LoginResult::Kind kind;
    std::string text;
  };
  const Case cases[] = {
      {"m4 NO [UNAVAILABLE] Temporary authentication failure.\r\n", LoginResult::Kind::TempFail,
       "[UNAVAILABLE] Temporary authentication failure."},
      {"m4 BAD Error in IMAP command.\r\n", LoginResult::Kind::TempFail, "Error in IMAP command."},
      {"m4 NO [REFERRAL IMAP://;AUTH=*@attacker.example.org:243/] try another server.\r\n",
       LoginResult::Kind::AuthFailed, "[AUTHENTICATIONFAILED] Authentication failed."},
      {"m4 NO\r\n", LoginResult::Kind::AuthFailed, "[AUTHENTICATIONFAILED] Authentication failed."},
      {"m4 NO bad\x01text\r\n", LoginResult::Kind::AuthFailed,
       "[AUTHENTICATIONFAILED] Authentication failed."},
      {"* BYE shutting down\r\n", LoginResult::Kind::TempFail, "shutting down"},
      {"m9 OK wrong tag\r\n", LoginResult::Kind::TempFail, ""},
      {"+ \r\n", LoginResult::Kind::TempFail, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.reply);
    Backend b;
    b.o.add(b.login.login(bob()));
    toId(b, Split::Whole);
    b.reply("m3 OK ID completed.\r\n");
    b.reply(c.reply);
    ASSERT_TRUE(b.o.login_done);
    EXPECT_EQ(b.o.login_done->kind, c.kind);
    EXPECT_EQ(b.o.login_done->text, c.text);
  }
}

TEST(ImapUpstreamLogin, UntaggedCapabilityInLoginReplyBecomesPreface) {
  Backend b;
  b.o.add(b.login.login(bob()));
  toId(b, Split::Whole);
  b.reply("m3 OK ID completed.\r\n");
  b.reply("* CAPABILITY IMAP4rev1 IDLE MOVE\r\n* OK [ALERT] ignored\r\nm4 OK Logged in\r\n");
  ASSERT_TRUE(b.o.login_done);
  EXPECT_EQ(b.o.login_done->preface, "* CAPABILITY IMAP4rev1 IDLE MOVE\r\n");
}

TEST(ImapUpstreamLogin, AuthenticatePlainWithoutSaslIr) {
  Backend b(upstream(UpstreamTls::Implicit, ClientAddressMode::None));
  b.o.add(b.login.login(bob()));
  b.reply("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready.\r\n");
  EXPECT_EQ(b.sent(), "m1 AUTHENTICATE PLAIN\r\n");
  b.reply("+ \r\n");
  EXPECT_EQ(b.sent(), base64Encode("\0bob\0"s + kBobPass) + "\r\n");
  b.reply("m1 OK Logged in\r\n");
  ASSERT_TRUE(b.o.login_done);
  EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::Ok);
}

TEST(ImapUpstreamLogin, LoginCommandWithLiterals) {
  // 8-bit password with LITERAL+: inline non-synchronizing literal.
  {
    Backend b(upstream(UpstreamTls::Implicit, ClientAddressMode::None));
    b.o.add(b.login.login(bob("p\xc3\xa4ss")));
    b.reply("* OK [CAPABILITY IMAP4rev1 LITERAL+] ready.\r\n");
    EXPECT_EQ(b.sent(), "m1 LOGIN \"bob\" {5+}\r\np\xc3\xa4ss\r\n");
  }
  // Without LITERAL+: wait for the continuation before the literal's octets.
  {
    Backend b(upstream(UpstreamTls::Implicit, ClientAddressMode::None));
    b.o.add(b.login.login(bob("p\xc3\xa4ss")));
    b.reply("* OK [CAPABILITY IMAP4rev1] ready.\r\n");
    EXPECT_EQ(b.sent(), "m1 LOGIN \"bob\" {5}\r\n");
    b.reply("+ OK\r\n");
    EXPECT_EQ(b.sent(), "p\xc3\xa4ss\r\n");
    b.reply("m1 OK Logged in\r\n");
    ASSERT_TRUE(b.o.login_done);
    EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::Ok);
  }
  // A login name that is not UTF-8 is refused, never written raw into a literal.
  {
    Backend b(upstream(UpstreamTls::Implicit, ClientAddressMode::None));
    Authenticate a = bob();
    a.creds.user = "\xff\xfe@example.test";
    b.o.add(b.login.login(std::move(a)));
    b.reply("* OK [CAPABILITY IMAP4rev1 LITERAL+] ready.\r\n");
    ASSERT_TRUE(b.o.login_done);
    EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::AuthFailed);
    EXPECT_EQ(b.sent(), "");
  }
  // LOGINDISABLED and no AUTH=PLAIN: no way in.
  {
    Backend b(upstream(UpstreamTls::Implicit, ClientAddressMode::None));
    b.o.add(b.login.login(bob()));
    b.reply("* OK [CAPABILITY IMAP4rev1 LOGINDISABLED] ready.\r\n");
    ASSERT_TRUE(b.o.login_done);
    EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::TempFail);
    EXPECT_EQ(b.sent(), "");
  }
}

TEST(ImapUpstreamLogin, IdSkippedWhenNotOfferedOrNotConfigured) {
  Backend b(upstream(UpstreamTls::Implicit, ClientAddressMode::ImapId));
  b.o.add(b.login.login(bob()));
  b.reply("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready.\r\n");
  EXPECT_EQ(b.sent().substr(0, 23), "m1 AUTHENTICATE PLAIN A");
  EXPECT_FALSE(b.o.notes.empty());
}

TEST(ImapUpstreamLogin, UntaggedLiteralsAreSkipped) {
  Backend b;
  b.o.add(b.login.login(bob()));
  toId(b, Split::Whole);
  b.reply("* ID (\"name\" {7}\r\nDovecot \"x\" {12}\r\nm4 OK fake\r\n)\r\nm3 OK ID completed.\r\n",
          Split::ByteByByte);
  EXPECT_FALSE(b.o.login_done);  // "m4 OK fake" was literal data
  b.reply("m4 OK Logged in\r\n");
  ASSERT_TRUE(b.o.login_done);
  EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::Ok);
}

TEST(ImapUpstreamLogin, OverLongBackendLineFails) {
  UpstreamContext u = upstream();
  u.max_line_bytes = 100;
  Backend b(u);
  b.o.add(b.login.login(bob()));
  b.reply("* OK " + std::string(200, 'x') + "\r\n");
  ASSERT_TRUE(b.o.login_done);
  EXPECT_EQ(b.o.login_done->kind, LoginResult::Kind::TempFail);
}

TEST(ImapUpstreamLogin, IdValuesAreQuotedSafely) {
  SessionContext c = clientContext();
  c.session_id = "S\"1";
  Backend b(upstream(UpstreamTls::Implicit, ClientAddressMode::ImapId), c);
  Authenticate a = bob();
  a.id_fields = {{"name", "Mail \"Pro\" \\ 2"}, {"version", "\xc3\xa9t\xc3\xa9"}};
  b.o.add(b.login.login(std::move(a)));
  b.reply("* OK [CAPABILITY IMAP4rev1 ID LITERAL+ AUTH=PLAIN] ready.\r\n");
  EXPECT_EQ(b.sent(),
            "m1 ID (\"x-originating-ip\" \"192.0.2.10\" \"x-originating-port\" \"50123\" "
            "\"x-connected-ip\" \"198.51.100.1\" \"x-connected-port\" \"143\" \"x-session-ext-id\" "
            "\"S\\\"1\" \"name\" \"Mail \\\"Pro\\\" \\\\ 2\" \"version\" {5+}\r\n\xc3\xa9t\xc3\xa9)\r\n"
            "m2 AUTHENTICATE PLAIN\r\n");
}

}  // namespace
}  // namespace mailshim::proto::imap
