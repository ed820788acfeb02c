// Transcript tests for ImapFrontPhase: every client input whole, byte by byte
// and at random splits; with and without Quirk::PlaintextAuth; the STARTTLS
// injection cases of client-quirks.md 6.A; the newer Outlook's pipelined
// ID + AUTHENTICATE + CAPABILITY (section 2.5).
#include "protocols/imap/imap_front_phase.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>

#include "protocols/common/base64.h"
#include "protocols/imap/imap.h"
#include "protocols/protocol_registry.h"
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

const std::string kBobPass = "b0b pa\"ss\\wd";
const std::string kBackendOk =
    "[CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY "
    "THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT "
    "CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES "
    "WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE "
    "SAVEDATE LITERAL+ NOTIFY SPECIAL-USE] Logged in";

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

std::string plainB64(std::string_view user, std::string_view pass) {
  return base64Encode("\0"s + std::string(user) + "\0"s + std::string(pass));
}

// A phase plus everything it has emitted since start().
struct Session {
  explicit Session(const SessionContext& ctx) : phase(ctx) { o.add(phase.start()); }
  void feed(std::string_view bytes, Split split = Split::Whole, uint32_t seed = 1) {
    feedSplit(
        bytes, split, seed, [this](std::string_view b) { return phase.onDownstreamData(b); }, o);
  }
  // Client output since the last call.
  std::string take() {
    std::string d = o.down.substr(seen);
    seen = o.down.size();
    return d;
  }
  ImapFrontPhase phase;
  Outcome o;
  size_t seen = 0;
};

TEST(ImapFrontPhase, GreetingsAdvertiseTruthfulCapabilities) {
  {
    Session s(plainContext(false));
    EXPECT_EQ(s.take(),
              "* OK [CAPABILITY IMAP4rev1 SASL-IR ID LITERAL+ STARTTLS LOGINDISABLED] "
              "mail.example.test ready.\r\n");
    ASSERT_EQ(s.o.timers.size(), 1u);
    EXPECT_EQ(s.o.timers[0], 60000u);
  }
  {
    Session s(plainContext(true));
    EXPECT_EQ(s.take(),
              "* OK [CAPABILITY IMAP4rev1 SASL-IR ID LITERAL+ STARTTLS AUTH=PLAIN AUTH=LOGIN] "
              "mail.example.test ready.\r\n");
  }
  {
    Session s(tlsContext());
    EXPECT_EQ(s.take(),
              "* OK [CAPABILITY IMAP4rev1 SASL-IR ID LITERAL+ AUTH=PLAIN AUTH=LOGIN] "
              "mail.example.test ready.\r\n");
  }
  {
    SessionContext c = plainContext(false);
    c.starttls_available = false;
    Session s(c);
    EXPECT_EQ(s.take(),
              "* OK [CAPABILITY IMAP4rev1 SASL-IR ID LITERAL+ LOGINDISABLED] mail.example.test ready.\r\n");
  }
}

TEST(ImapFrontPhase, CapabilityNoopLogout) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Session s(plainContext(false));
    s.take();
    s.feed("a1 CAPABILITY\r\na2 noop\r\na3 LOGOUT\r\na4 NOOP\r\n", sp);
    EXPECT_EQ(s.take(),
              "* CAPABILITY IMAP4rev1 SASL-IR ID LITERAL+ STARTTLS LOGINDISABLED\r\n"
              "a1 OK Capability completed.\r\n"
              "a2 OK NOOP completed.\r\n"
              "* BYE Logging out\r\n"
              "a3 OK Logout completed.\r\n");
    EXPECT_EQ(s.o.close, CloseReason::ClientQuit);
    EXPECT_TRUE(s.o.auths.empty());
  }
}

TEST(ImapFrontPhase, RepliesOfOneReadAreCoalesced) {
  ImapFrontPhase p(tlsContext());
  p.start();
  Actions acts = p.onDownstreamData("a NOOP\r\nb CAPABILITY\r\nc NOOP\r\n");
  int sends = 0;
  for (const auto& a : acts) sends += std::holds_alternative<SendDownstream>(a);
  EXPECT_EQ(sends, 1);
}

TEST(ImapFrontPhase, PlaintextLoginRefusedWithoutQuirkAndNeverForwarded) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Session s(plainContext(false));
    s.take();
    s.feed("a LOGIN bob secret\r\nb AUTHENTICATE PLAIN " + plainB64("bob", "secret") +
               "\r\nc AUTHENTICATE LOGIN\r\n",
           sp);
    EXPECT_EQ(
        s.take(),
        "a NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n"
        "b NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n"
        "c NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) "
        "connections.\r\n");
    EXPECT_TRUE(s.o.auths.empty());
    EXPECT_EQ(s.o.connect_up, 0);
    EXPECT_TRUE(s.o.quirks.empty());
  }
}

TEST(ImapFrontPhase, PlaintextLiteralPasswordIsNotSolicited) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Session s(plainContext(false));
    s.take();
    s.feed("a LOGIN bob {6}\r\nb NOOP\r\n", sp);
    EXPECT_EQ(
        s.take(),
        "a NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n"
        "b OK NOOP completed.\r\n");
    EXPECT_TRUE(s.o.auths.empty());
  }
}

TEST(ImapFrontPhase, PlaintextLoginWithQuirkIsForwardedAndCounted) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Session s(plainContext(true));
    s.take();
    s.feed("a LOGIN bob \"" + std::string("b0b pa\\\"ss\\\\wd") + "\"\r\n", sp);
    EXPECT_EQ(s.take(), "");
    ASSERT_EQ(s.o.auths.size(), 1u);
    EXPECT_EQ(s.o.auths[0].creds.user, "bob");
    EXPECT_EQ(s.o.auths[0].creds.password.reveal(), kBobPass);
    EXPECT_EQ(s.o.auths[0].creds.method, AuthMethod::ImapLogin);
    ASSERT_EQ(s.o.quirks.size(), 1u);
    EXPECT_EQ(s.o.quirks[0].quirk, Quirk::PlaintextAuth);
    EXPECT_EQ(s.o.quirks[0].detail, "IMAP LOGIN without TLS");
  }
}

TEST(ImapFrontPhase, LoginOverTlsWithQuotedPassword) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Session s(tlsContext());
    s.take();
    s.feed("a LOGIN \"bob\" \"b0b pa\\\"ss\\\\wd\"\r\n", sp);
    ASSERT_EQ(s.o.auths.size(), 1u);
    EXPECT_EQ(s.o.auths[0].creds.password.reveal(), kBobPass);
    EXPECT_TRUE(s.o.quirks.empty());
    EXPECT_EQ(s.o.users, std::vector<std::string>{"bob"});
    // ConnectUpstream comes once, right before the first Authenticate.
    auto it = std::find(s.o.trace.begin(), s.o.trace.end(), "CONNECT");
    ASSERT_NE(it, s.o.trace.end());
    EXPECT_EQ(*(it + 1), "AUTH:bob");
  }
}

TEST(ImapFrontPhase, LoginWithSynchronizingLiterals) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Session s(tlsContext());
    s.take();
    s.feed("a LOGIN {3}\r\n", sp);
    EXPECT_EQ(s.take(), "+ Ready for literal data\r\n");
    s.feed("bob {12}\r\n", sp);
    EXPECT_EQ(s.take(), "+ Ready for literal data\r\n");
    s.feed(kBobPass + "\r\n", sp);
    EXPECT_EQ(s.take(), "");
    ASSERT_EQ(s.o.auths.size(), 1u);
    EXPECT_EQ(s.o.auths[0].creds.user, "bob");
    EXPECT_EQ(s.o.auths[0].creds.password.reveal(), kBobPass);
  }
}

TEST(ImapFrontPhase, LoginWithNonSynchronizingLiterals) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Session s(tlsContext());
    s.take();
    s.feed("a LOGIN {3+}\r\nbob {12+}\r\n" + kBobPass + "\r\n", sp);
    EXPECT_EQ(s.take(), "");
    ASSERT_EQ(s.o.auths.size(), 1u);
    EXPECT_EQ(s.o.auths[0].creds.password.reveal(), kBobPass);
  }
}

TEST(ImapFrontPhase, LoginWithNulInLiteralIsRefused) {
  Session s(tlsContext());
  s.take();
  s.feed("a LOGIN bob {3+}\r\na\0b\r\n"s);
  EXPECT_EQ(s.take(), "a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
  EXPECT_TRUE(s.o.auths.empty());
}

TEST(ImapFrontPhase, AuthenticatePlainWithAndWithoutInitialResponse) {
  const std::string b64 = plainB64("bob", kBobPass);
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Session s(tlsContext());
    s.take();
    s.feed("a AUTHENTICATE PLAIN " + b64 + "\r\n", sp);
    ASSERT_EQ(s.o.auths.size(), 1u);
    EXPECT_EQ(s.o.auths[0].creds.password.reveal(), kBobPass);
    EXPECT_EQ(s.o.auths[0].creds.method, AuthMethod::Plain);
    EXPECT_TRUE(s.o.quirks.empty());

    Session t(tlsContext());
    t.take();
    t.feed("a authenticate plain\r\n", sp);
    EXPECT_EQ(t.take(), "+ \r\n");
    t.feed(b64 + "\r\n", sp);
    ASSERT_EQ(t.o.auths.size(), 1u);
    EXPECT_EQ(t.o.auths[0].creds.user, "bob");
  }
}

TEST(ImapFrontPhase, AuthenticateLoginUsesByteExactChallenges) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Session s(tlsContext());
    s.take();
    s.feed("a AUTHENTICATE LOGIN\r\n", sp);
    EXPECT_EQ(s.take(), "+ VXNlcm5hbWU6\r\n");
    s.feed(base64Encode("bob") + "\r\n", sp);
    EXPECT_EQ(s.take(), "+ UGFzc3dvcmQ6\r\n");
    s.feed(base64Encode(kBobPass) + "\r\n", sp);
    ASSERT_EQ(s.o.auths.size(), 1u);
    EXPECT_EQ(s.o.auths[0].creds.user, "bob");
    EXPECT_EQ(s.o.auths[0].creds.password.reveal(), kBobPass);
    EXPECT_EQ(s.o.auths[0].creds.method, AuthMethod::Login);

    // SASL-IR carries the user name.
    Session t(tlsContext());
    t.take();
    t.feed("a AUTHENTICATE LOGIN " + base64Encode("bob") + "\r\n", sp);
    EXPECT_EQ(t.take(), "+ UGFzc3dvcmQ6\r\n");
    t.feed(base64Encode(kBobPass) + "\r\n", sp);
    ASSERT_EQ(t.o.auths.size(), 1u);
  }
}

TEST(ImapFrontPhase, PlaintextAuthenticateWithQuirkCountsOncePerLogin) {
  Session s(plainContext(true));
  s.feed("a AUTHENTICATE LOGIN\r\n*\r\nb AUTHENTICATE PLAIN " + plainB64("bob", "x") + "\r\n");
  ASSERT_EQ(s.o.quirks.size(), 1u);
  EXPECT_EQ(s.o.quirks[0].detail, "IMAP AUTHENTICATE without TLS");
  EXPECT_EQ(s.o.auths.size(), 1u);
}

TEST(ImapFrontPhase, AuthenticateCancelAndBadBase64) {
  Session s(tlsContext());
  s.take();
  s.feed("a AUTHENTICATE PLAIN\r\n*\r\nb AUTHENTICATE LOGIN\r\n*\r\n");
  EXPECT_EQ(s.take(),
            "+ \r\na BAD Authentication aborted by client.\r\n+ VXNlcm5hbWU6\r\n"
            "b BAD Authentication aborted by client.\r\n");
  s.feed("c AUTHENTICATE PLAIN !!!!\r\nd AUTHENTICATE PLAIN " + base64Encode("nonul") +
         "\r\ne AUTHENTICATE CRAM-MD5\r\n");
  EXPECT_EQ(s.take(),
            "c BAD Invalid base64 data in continued response.\r\n"
            "d NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
            "e NO Unsupported authentication mechanism.\r\n");
  EXPECT_TRUE(s.o.auths.empty());
}

TEST(ImapFrontPhase, LoginOkEntersRelayWithBackendText) {
  Session s(tlsContext());
  s.take();
  s.feed("a LOGIN bob secret\r\nb SELECT INBOX\r\n");
  LoginResult r;
  r.kind = LoginResult::Kind::Ok;
  r.code = "OK";
  r.text = kBackendOk;
  r.leftover = "* 3 EXISTS\r\n";
  s.o.add(s.phase.onLoginResult(r));
  EXPECT_EQ(s.take(), "a OK " + kBackendOk + "\r\n");
  ASSERT_TRUE(s.o.relay);
  EXPECT_EQ(s.o.relay->to_upstream, "b SELECT INBOX\r\n");
  EXPECT_EQ(s.o.relay->to_downstream, "* 3 EXISTS\r\n");
  EXPECT_EQ(s.o.trace.back(), "RELAY");
}

// client-quirks.md 2.5: ID, then AUTHENTICATE and CAPABILITY back to back.
TEST(ImapFrontPhase, MicrosoftPipelinedIdAuthenticateCapability) {
  const std::string input =
      "WIR00001 ID (\"name\" \"Microsoft Office 365\" \"version\" \"15.20.9160.4\" \"vendor\" "
      "\"Microsoft Corporation\" \"support-url\" \"https://support.microsoft.com/\")\r\n"
      "WIR00002 AUTHENTICATE PLAIN " +
      plainB64("bob", kBobPass) +
      "\r\n"
      "WIR00003 CAPABILITY\r\n";
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Session s(tlsContext());
    s.take();
    s.feed(input, sp);
    EXPECT_EQ(s.take(), "* ID (\"name\" \"mailshim\")\r\nWIR00001 OK ID completed.\r\n");
    ASSERT_EQ(s.o.auths.size(), 1u);
    const auto& f = s.o.auths[0].id_fields;
    ASSERT_EQ(f.size(), 4u);
    EXPECT_EQ(f[0], std::make_pair("name"s, "Microsoft Office 365"s));
    EXPECT_EQ(f[1], std::make_pair("version"s, "15.20.9160.4"s));
    ASSERT_EQ(s.o.infos.size(), 4u);
    EXPECT_EQ(s.o.infos[0].key, "id.name");
    EXPECT_EQ(s.o.infos[3].key, "id.support-url");

    LoginResult r;
    r.kind = LoginResult::Kind::Ok;
    r.text = kBackendOk;
    s.o.add(s.phase.onLoginResult(r));
    EXPECT_EQ(s.take(), "WIR00002 OK " + kBackendOk + "\r\n");
    ASSERT_TRUE(s.o.relay);
    // The pipelined CAPABILITY goes to the backend, which knows the real list.
    EXPECT_EQ(s.o.relay->to_upstream, "WIR00003 CAPABILITY\r\n");
  }
}

TEST(ImapFrontPhase, WrongPasswordThenRetryAndPipelinedCommandsResume) {
  Session s(tlsContext());
  s.take();
  s.feed("a LOGIN bob wrong\r\nb NOOP\r\n");
  LoginResult r;
  r.kind = LoginResult::Kind::AuthFailed;
  r.code = "NO";
  r.text = "[AUTHENTICATIONFAILED] Authentication failed.";
  s.o.add(s.phase.onLoginResult(r));
  EXPECT_EQ(s.take(), "a NO [AUTHENTICATIONFAILED] Authentication failed.\r\nb OK NOOP completed.\r\n");
  s.feed("c LOGIN bob right\r\n");
  ASSERT_EQ(s.o.auths.size(), 2u);
  EXPECT_EQ(s.o.connect_up, 1);  // one backend connection for both attempts
  r.kind = LoginResult::Kind::Ok;
  r.text = "Logged in";
  s.o.add(s.phase.onLoginResult(r));
  EXPECT_EQ(s.take(), "c OK Logged in\r\n");
}

TEST(ImapFrontPhase, TempFailures) {
  {
    Session s(tlsContext());
    s.feed("a LOGIN bob x\r\n");
    s.take();
    LoginResult r;
    r.kind = LoginResult::Kind::TempFail;
    r.code = "NO";
    r.text = "[UNAVAILABLE] Temporary authentication failure.";
    s.o.add(s.phase.onLoginResult(r));
    EXPECT_EQ(s.take(), "a NO [UNAVAILABLE] Temporary authentication failure.\r\n");
    EXPECT_FALSE(s.o.close);
  }
  {
    Session s(tlsContext());
    s.feed("a LOGIN bob x\r\n");
    s.take();
    s.o.add(s.phase.onLoginResult(LoginResult{}));
    EXPECT_EQ(s.take(), "* BYE [UNAVAILABLE] Backend server unavailable.\r\n");
    EXPECT_EQ(s.o.close, CloseReason::UpstreamUnavailable);
  }
  {
    // Backend text with control characters never reaches the client.
    Session s(tlsContext());
    s.feed("a LOGIN bob x\r\n");
    s.take();
    LoginResult r;
    r.kind = LoginResult::Kind::AuthFailed;
    r.text = "evil\r\n* OK [ALERT] injected";
    s.o.add(s.phase.onLoginResult(r));
    EXPECT_EQ(s.take(), "a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
  }
}

// client-quirks.md 6.A 3: nothing after STARTTLS is executed.
TEST(ImapFrontPhase, StarttlsInjectionIsNeverAnswered) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    Session s(plainContext(false));
    s.take();
    s.feed("a STARTTLS\r\nb CAPABILITY\r\nRND NOOP\r\n", sp);
    EXPECT_EQ(s.take(), "a OK Begin TLS negotiation now.\r\n");
    EXPECT_EQ(s.o.starttls_down, 1);
    EXPECT_EQ(s.o.trace.back(), "TLS-DOWN");
    ASSERT_FALSE(s.o.notes.empty());
    EXPECT_EQ(s.o.notes[0].level, LogNote::Level::Warn);

    s.o.add(s.phase.onDownstreamTls());
    s.feed("c CAPABILITY\r\n", sp);
    EXPECT_EQ(s.take(),
              "* CAPABILITY IMAP4rev1 SASL-IR ID LITERAL+ AUTH=PLAIN AUTH=LOGIN\r\n"
              "c OK Capability completed.\r\n");
    EXPECT_EQ(s.o.down.find("b OK"), std::string::npos);
    EXPECT_EQ(s.o.down.find("RND"), std::string::npos);
  }
}

TEST(ImapFrontPhase, StarttlsForgetsIdAndRefusesWhenUnavailable) {
  Session s(plainContext(false));
  s.feed("a ID (\"name\" \"pre-tls\")\r\nb STARTTLS\r\n");
  s.o.add(s.phase.onDownstreamTls());
  s.take();
  s.feed("c STARTTLS\r\nd LOGIN bob x\r\n");
  EXPECT_EQ(s.take(), "c BAD TLS is already active.\r\n");
  ASSERT_EQ(s.o.auths.size(), 1u);
  EXPECT_TRUE(s.o.auths[0].id_fields.empty());

  SessionContext c = plainContext(false);
  c.starttls_available = false;
  Session t(c);
  t.take();
  t.feed("a STARTTLS\r\n");
  EXPECT_EQ(t.take(), "a BAD TLS support isn't enabled.\r\n");
  EXPECT_EQ(t.o.starttls_down, 0);
}

TEST(ImapFrontPhase, IdFieldsAreSanitisedAndBounded) {
  Session s(tlsContext());
  s.take();
  std::string longkey(31, 'k');
  s.feed("a ID (\"name\" {6+}\r\nx\r\ny\tz \"" + longkey +
         "\" \"v\" \"os\" NIL \"X-Originating-IP\" \"6.6.6.6\")\r\n");
  EXPECT_EQ(s.take(), "* ID (\"name\" \"mailshim\")\r\na OK ID completed.\r\n");
  ASSERT_EQ(s.o.infos.size(), 2u);
  EXPECT_EQ(s.o.infos[0].key, "id.name");
  EXPECT_EQ(s.o.infos[0].value, "x??y?z");
  EXPECT_EQ(s.o.infos[1].key, "id.x-originating-ip");
  // Invalid UTF-8 is not passed on (it would reach the backend raw in a literal).
  s.feed("e ID (\"name\" {8+}\r\n\xff\xfe\xc0" "bad\xc3\xa4)\r\n");
  s.take();
  ASSERT_EQ(s.o.infos.size(), 3u);
  EXPECT_EQ(s.o.infos[2].value, "???bad\xc3\xa4");
  s.feed("b ID (\"odd\")\r\nc ID\r\nd ID NIL\r\n");
  EXPECT_EQ(s.take(),
            "b BAD Invalid ID parameters.\r\nc BAD Invalid ID parameters.\r\n"
            "* ID (\"name\" \"mailshim\")\r\nd OK ID completed.\r\n");
}

TEST(ImapFrontPhase, UnknownAndPostLoginCommands) {
  Session s(tlsContext());
  s.take();
  s.feed("a SELECT INBOX\r\nb FROB\r\n* NOOP\r\nc\r\n");
  EXPECT_EQ(s.take(),
            "a BAD Command not allowed before login.\r\nb BAD Unknown command.\r\n"
            "* BAD Invalid tag.\r\nc BAD Missing command.\r\n");
}

TEST(ImapFrontPhase, TooManyErrorsCloses) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    SessionContext c = tlsContext();
    c.max_errors = 3;
    Session s(c);
    s.take();
    s.feed("a FROB\r\nb FROB\r\nc FROB\r\nd NOOP\r\n", sp);
    EXPECT_EQ(s.take(),
              "a BAD Unknown command.\r\nb BAD Unknown command.\r\nc BAD Unknown command.\r\n"
              "* BYE Too many invalid commands.\r\n");
    EXPECT_EQ(s.o.close, CloseReason::TooManyErrors);
    EXPECT_EQ(s.o.trace.back(), "CLOSE");
  }
}

TEST(ImapFrontPhase, OverLongLinesAndHugeLiterals) {
  for (Split sp : kAllSplits) {
    SCOPED_TRACE(splitName(sp));
    SessionContext c = tlsContext();
    c.max_line_bytes = 100;
    Session s(c);
    s.take();
    s.feed("a LOGIN " + std::string(300, 'x') + "\r\nb LOGIN bob {2147483648}\r\nc NOOP\r\n", sp);
    EXPECT_EQ(s.take(),
              "a BAD Command line too long.\r\nb BAD [TOOBIG] Literal too large.\r\n"
              "c OK NOOP completed.\r\n");
    EXPECT_FALSE(s.o.close);
    s.feed("d LOGIN bob {2147483648+}\r\nxxxxxxxx", sp);
    EXPECT_EQ(s.take(), "d BAD [TOOBIG] Literal too large.\r\n* BYE Command too long.\r\n");
    EXPECT_EQ(s.o.close, CloseReason::LineTooLong);
    EXPECT_TRUE(s.o.auths.empty());
  }
}

TEST(ImapFrontPhase, PipelinedBytesWhileLoginPendingAreBounded) {
  Session s(tlsContext());
  s.feed("a LOGIN bob x\r\n");
  s.take();
  s.feed(std::string(ImapFrontPhase::kMaxPipelinedBytes + 1, 'x'));
  EXPECT_EQ(s.take(), "* BYE Command too long.\r\n");
  EXPECT_EQ(s.o.close, CloseReason::LineTooLong);
}

TEST(ImapFrontPhase, TimeoutSaysByeAndRearmsOnCommands) {
  Session s(plainContext(false));
  s.feed("a NOOP\r\n");
  EXPECT_EQ(s.o.timers.size(), 2u);
  s.feed("b NO");  // incomplete command: no re-arm
  EXPECT_EQ(s.o.timers.size(), 2u);
  s.take();
  s.o.add(s.phase.onTimeout());
  EXPECT_EQ(s.take(), "* BYE Disconnected for inactivity.\r\n");
  EXPECT_EQ(s.o.close, CloseReason::Timeout);
}

TEST(ImapFrontPhase, NeverSendsPreauth) {
  for (bool tls : {false, true}) {
    Session s(tls ? tlsContext() : plainContext(true));
    s.feed("a CAPABILITY\r\nb ID NIL\r\n");
    EXPECT_EQ(s.o.down.find("PREAUTH"), std::string::npos);
  }
}

TEST(ImapFacade, RegistryCloseNoticesAndOpaqueRelay) {
  SessionContext c = defaultContext();
  EXPECT_NE(makeFrontPhase(Protocol::Imap, c), nullptr);
  EXPECT_NE(makeUpstreamLogin(Protocol::Imap, c, UpstreamContext{}), nullptr);
  EXPECT_EQ(makeRelayFilter(Protocol::Imap, c), nullptr);
  EXPECT_EQ(imapCloseNotice(CloseReason::Timeout, "x"), "* BYE Disconnected for inactivity.\r\n");
  EXPECT_EQ(imapCloseNotice(CloseReason::Shutdown, "x"), "* BYE Server shutting down.\r\n");
  EXPECT_EQ(imapCloseNotice(CloseReason::UpstreamLost, "x"),
            "* BYE [UNAVAILABLE] Backend connection lost.\r\n");
  EXPECT_EQ(imapCloseNotice(CloseReason::TooManyErrors, "x"), "* BYE Too many invalid commands.\r\n");
  EXPECT_EQ(imapCloseNotice(CloseReason::ClientEof, "x"), "");
  EXPECT_EQ(imapCloseNotice(CloseReason::ClientQuit, "x"), "");
}

// --- retired plaintext_auth (the admin's message, EN and JA) --------------------

const std::string kRetiredEn =
    "Plain-text login was retired on 2027-03-31. Set your mail program to SSL/TLS on port 993: "
    "https://help.example.test/mail";
const std::string kRetiredJa =
    "平文ログインは2027年3月31日に廃止されました。メールソフトで SSL/TLS（ポート993）を選んでください: "
    "https://help.example.test/mail";

SessionContext retiredContext(const std::string& msg) {
  SessionContext c = defaultContext();
  c.retired_quirks.add(Quirk::PlaintextAuth);
  c.retired_message = msg;
  return c;
}

TEST(ImapFrontPhase, RetiredPlaintextAuthCarriesMessageNeverForwards) {
  for (const std::string& msg : {kRetiredEn, kRetiredJa}) {
    for (Split sp : kAllSplits) {
      SCOPED_TRACE(splitName(sp));
      Session s(retiredContext(msg));
      // Capabilities unchanged: still LOGINDISABLED, no AUTH=.
      EXPECT_EQ(s.take(),
                "* OK [CAPABILITY IMAP4rev1 SASL-IR ID LITERAL+ STARTTLS LOGINDISABLED] mail.example.test ready.\r\n");
      s.feed("a LOGIN bob secret\r\nb AUTHENTICATE PLAIN " + plainB64("bob", "secret") +
                 "\r\nc LOGIN bob {6}\r\nd NOOP\r\n",
             sp);
      EXPECT_EQ(s.take(), "a NO [PRIVACYREQUIRED] " + msg + "\r\nb NO [PRIVACYREQUIRED] " + msg +
                              "\r\nc NO [PRIVACYREQUIRED] " + msg + "\r\nd OK NOOP completed.\r\n");
      EXPECT_TRUE(s.o.auths.empty());
      EXPECT_EQ(s.o.connect_up, 0);
      ASSERT_EQ(s.o.quirks.size(), 3u);
      EXPECT_EQ(s.o.quirks[0].quirk, Quirk::PlaintextAuth);
      EXPECT_EQ(s.o.quirks[0].detail, "retired: IMAP LOGIN without TLS refused");
      EXPECT_EQ(s.o.quirks[1].detail, "retired: IMAP AUTHENTICATE without TLS refused");
      EXPECT_EQ(s.o.quirks[2].detail, "retired: IMAP LOGIN without TLS refused");
    }
  }
}

TEST(ImapFrontPhase, RetiredPlaintextAuthWithoutMessageOrOnTls) {
  Session s(retiredContext(""));
  s.take();
  s.feed("a LOGIN bob secret\r\n");
  EXPECT_EQ(s.take(),
            "a NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n");
  EXPECT_EQ(s.o.quirks.size(), 1u);
  SessionContext c = tlsContext();
  c.retired_quirks.add(Quirk::PlaintextAuth);
  c.retired_message = kRetiredEn;
  Session t(c);
  t.feed("a LOGIN bob secret\r\n");
  EXPECT_EQ(t.o.auths.size(), 1u);
  EXPECT_TRUE(t.o.quirks.empty());
}

}  // namespace
}  // namespace mailshim::proto::imap
