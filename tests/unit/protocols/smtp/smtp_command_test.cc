// Unit tests for the SMTP command codec: verbs, MAIL/RCPT paths, HELO domain
// and address-literal checks, xtext (RFC 3461) and XCLIENT encoding. No I/O.
#include "protocols/smtp/smtp_command.h"

#include <gtest/gtest.h>

#include <string>

namespace mailshim::proto::smtp {
namespace {

using namespace std::string_literals;

TEST(SmtpCommand, VerbIsCaseInsensitiveArgsTrimmed) {
  auto c = parseCommand("ehlo   client.example.org  ");
  EXPECT_EQ(c.verb, Verb::Ehlo);
  EXPECT_EQ(c.name, "ehlo");
  EXPECT_EQ(c.args, "client.example.org");
  EXPECT_EQ(parseCommand("StartTLS").verb, Verb::Starttls);
  EXPECT_EQ(parseCommand("AUTH\tPLAIN").args, "PLAIN");
  EXPECT_EQ(parseCommand("MAIL FROM:<a@b>").verb, Verb::Mail);
  EXPECT_EQ(parseCommand("xclient ADDR=1.2.3.4").verb, Verb::Xclient);
  EXPECT_EQ(parseCommand("XFORWARD NAME=x").verb, Verb::Xforward);
}

TEST(SmtpCommand, UnknownAndEmpty) {
  EXPECT_EQ(parseCommand("").verb, Verb::Unknown);
  EXPECT_EQ(parseCommand(" NOOP").verb, Verb::Unknown);
  EXPECT_EQ(parseCommand("NOOPX").verb, Verb::Unknown);
  EXPECT_EQ(parseCommand("\x16\x03\x01").verb, Verb::Unknown);
  EXPECT_EQ(verbName(Verb::Starttls), "STARTTLS");
  EXPECT_EQ(verbName(Verb::Unknown), "UNKNOWN");
}

TEST(SmtpCommand, AllVerbs) {
  const std::pair<const char*, Verb> kAll[] = {
      {"HELO", Verb::Helo}, {"EHLO", Verb::Ehlo}, {"STARTTLS", Verb::Starttls}, {"AUTH", Verb::Auth},
      {"MAIL", Verb::Mail}, {"RCPT", Verb::Rcpt}, {"DATA", Verb::Data},         {"BDAT", Verb::Bdat},
      {"RSET", Verb::Rset}, {"NOOP", Verb::Noop}, {"QUIT", Verb::Quit},         {"HELP", Verb::Help},
      {"VRFY", Verb::Vrfy}, {"EXPN", Verb::Expn}, {"ETRN", Verb::Etrn}};
  for (const auto& [name, verb] : kAll) {
    EXPECT_EQ(parseCommand(name).verb, verb) << name;
    EXPECT_EQ(verbName(verb), name);
  }
}

TEST(SmtpCommand, MailFromPaths) {
  auto p = parseMailFrom("FROM:<alice@example.com> SIZE=1000 BODY=8BITMIME");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->path, "alice@example.com");
  EXPECT_EQ(p->params, "SIZE=1000 BODY=8BITMIME");
  EXPECT_TRUE(p->bracketed);

  p = parseMailFrom("from: <bob@example.com>");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->path, "bob@example.com");
  EXPECT_EQ(p->params, "");

  p = parseMailFrom("FROM:<>");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->path, "");
  EXPECT_TRUE(p->bracketed);

  p = parseMailFrom("FROM:carol@example.com SIZE=5");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->path, "carol@example.com");
  EXPECT_EQ(p->params, "SIZE=5");
  EXPECT_FALSE(p->bracketed);

  p = parseMailFrom("FROM:<\"odd > name\"@example.com>");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->path, "\"odd > name\"@example.com");

  p = parseMailFrom("FROM:<\"q\\\"x>\"@example.com> X=1");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->path, "\"q\\\"x>\"@example.com");
  EXPECT_EQ(p->params, "X=1");
}

TEST(SmtpCommand, MailFromRejects) {
  EXPECT_FALSE(parseMailFrom("TO:<a@b>"));
  EXPECT_FALSE(parseMailFrom("FROM:"));
  EXPECT_FALSE(parseMailFrom("FROM:<a@b"));
  EXPECT_FALSE(parseMailFrom("FROM:<\"a>@b"));
  EXPECT_FALSE(parseMailFrom(""));
}

TEST(SmtpCommand, RcptToPaths) {
  auto p = parseRcptTo("TO:<'user@example.com'> NOTIFY=NEVER");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->path, "'user@example.com'");
  EXPECT_EQ(p->params, "NOTIFY=NEVER");
  EXPECT_FALSE(parseRcptTo("FROM:<a@b>"));
}

TEST(SmtpCommand, Ipv4) {
  EXPECT_TRUE(isIpv4("127.0.0.2"));
  EXPECT_TRUE(isIpv4("255.255.255.255"));
  EXPECT_TRUE(isIpv4("0.0.0.0"));
  for (const char* bad : {"256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1..2.3", "1.2.3.4.", "a.b.c.d", "", "1.2.3.1234"})
    EXPECT_FALSE(isIpv4(bad)) << bad;
}

TEST(SmtpCommand, Ipv6) {
  for (const char* good : {"::1", "::", "2001:db8::1", "fe80::1:2:3:4", "1:2:3:4:5:6:7:8", "::ffff:192.0.2.1",
                           "2001:db8:0:0:0:0:2:1", "1::", "1:2:3:4:5:6:7::"})
    EXPECT_TRUE(isIpv6(good)) << good;
  for (const char* bad : {"", ":", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::1", ":1:2", "1:2:", "g::1",
                          "1:2:3:4:5:6:7:8::", "::1.2.3", "1.2.3.4"})
    EXPECT_FALSE(isIpv6(bad)) << bad;
}

TEST(SmtpCommand, AddressLiterals) {
  EXPECT_TRUE(isAddressLiteral("[1.2.3.4]"));
  EXPECT_TRUE(isAddressLiteral("[IPv6:::1]"));
  EXPECT_TRUE(isAddressLiteral("[ipv6:2001:db8::5]"));
  EXPECT_FALSE(isAddressLiteral("[2001:db8::5]"));
  EXPECT_FALSE(isAddressLiteral("1.2.3.4"));
  EXPECT_FALSE(isAddressLiteral("[1.2.3.400]"));
  EXPECT_FALSE(isAddressLiteral("[]"));
  EXPECT_EQ(addressLiteralFor("127.0.0.2"), "[127.0.0.2]");
  EXPECT_EQ(addressLiteralFor("::1"), "[IPv6:::1]");
  EXPECT_FALSE(addressLiteralFor("not-an-ip"));
  EXPECT_FALSE(addressLiteralFor("1.2.3.4\r\nX"));
}

TEST(SmtpCommand, Fqdn) {
  for (const char* good : {"mail.example.com", "a.b", "MAIL.Example.COM", "x-1.example.org", "123.example.com"})
    EXPECT_TRUE(isFqdn(good)) << good;
  for (const char* bad : {"WIN7-PC", "localhost", "LOCALHOST", "localhost.localdomain", "x.local", "Office500.XXX.local",
                          "box.lan", "nas.home", "srv.internal", "host.localdomain", "1.2.3.4", "123", "a..b", ".a.b",
                          "a.b.", "-a.b", "a-.b", "a_b.example.com", "a b.com", "", "[1.2.3.4]"})
    EXPECT_FALSE(isFqdn(bad)) << bad;
  EXPECT_FALSE(isFqdn(std::string(64, 'a') + ".com"));
  EXPECT_TRUE(isFqdn(std::string(63, 'a') + ".com"));
}

TEST(SmtpCommand, XtextEncode) {
  EXPECT_EQ(xtextEncode("mail.example.com"), "mail.example.com");
  EXPECT_EQ(xtextEncode("a+b=c"), "a+2Bb+3Dc");
  EXPECT_EQ(xtextEncode("two words"), "two+20words");
  EXPECT_EQ(xtextEncode("caf\xc3\xa9"), "caf+C3+A9");
  EXPECT_EQ(xtextEncode("tab\there\x7f"), "tab+09here+7F");
  EXPECT_EQ(xtextEncode(""), "");
  EXPECT_EQ(xtextEncode("[IPv6:::1]"), "[IPv6:::1]");
}

TEST(SmtpCommand, XtextEncoderRefusesLineBreaksAndNul) {
  EXPECT_FALSE(xtextEncode("evil\r\nRCPT TO:<x>"));
  EXPECT_FALSE(xtextEncode("a\nb"));
  EXPECT_FALSE(xtextEncode("a\rb"));
  EXPECT_FALSE(xtextEncode("a\0b"s));
}

TEST(SmtpCommand, XtextRoundTripAndStrictDecode) {
  std::string all;
  for (int i = 1; i < 256; ++i)
    if (i != '\r' && i != '\n') all += static_cast<char>(i);
  auto enc = xtextEncode(all);
  ASSERT_TRUE(enc);
  EXPECT_EQ(xtextDecode(*enc), all);
  for (const char* bad : {"a+2", "a+", "+zz", "+2b", "a b", "a=b", "+G0"}) EXPECT_FALSE(xtextDecode(bad)) << bad;
}

TEST(SmtpCommand, FormatCommandRefusesInjection) {
  EXPECT_EQ(formatCommand("EHLO", "mailshim.example"), "EHLO mailshim.example\r\n");
  EXPECT_EQ(formatCommand("STARTTLS"), "STARTTLS\r\n");
  EXPECT_FALSE(formatCommand("EHLO", "x\r\nAUTH PLAIN"));
  EXPECT_FALSE(formatCommand("EHLO", "x\0y"s));
  EXPECT_FALSE(formatCommand(""));
}

TEST(SmtpCommand, XclientAllAttributes) {
  XclientParams p;
  p.addr = "127.0.0.2";
  p.port = 50001;
  p.helo = "a+b=c d";
  p.esmtp = true;
  std::vector<std::string> all = {"NAME", "ADDR", "PORT", "PROTO", "HELO", "LOGIN", "DESTADDR", "DESTPORT"};
  EXPECT_EQ(formatXclient(p, all),
            "XCLIENT ADDR=127.0.0.2 PORT=50001 NAME=[UNAVAILABLE] HELO=a+2Bb+3Dc+20d PROTO=ESMTP\r\n");
}

TEST(SmtpCommand, XclientIpv6OnlyAdvertisedAttributes) {
  XclientParams p;
  p.addr = "2001:db8::7";
  p.port = 1;
  p.helo = "";
  p.esmtp = false;
  EXPECT_EQ(formatXclient(p, {"ADDR", "PROTO"}), "XCLIENT ADDR=IPV6:2001:db8::7 PROTO=SMTP\r\n");
  EXPECT_EQ(formatXclient(p, {"addr", "port", "helo"}), "XCLIENT ADDR=IPV6:2001:db8::7 PORT=1\r\n");
  EXPECT_FALSE(formatXclient(p, {}));
  EXPECT_FALSE(formatXclient(p, {"LOGIN"}));
}

TEST(SmtpCommand, XclientRefusesCrLfNul) {
  XclientParams p;
  p.addr = "127.0.0.1";
  p.helo = "x\r\nMAIL FROM:<evil>";
  EXPECT_FALSE(formatXclient(p, {"ADDR", "HELO"}));
  p.helo = "x\0y"s;
  EXPECT_FALSE(formatXclient(p, {"ADDR", "HELO"}));
  // An attribute not advertised is not even looked at.
  EXPECT_EQ(formatXclient(p, {"ADDR"}), "XCLIENT ADDR=127.0.0.1\r\n");
}

// smtp.rcpt_strip_quotes: iRedMail's /^(RCPT\s+TO:\s*<)'([^[:space:]]+)'(>.*)/ $1$2$3
TEST(SmtpCommand, StripRcptQuotesLikeIredmailPcre) {
  struct Case {
    const char* in;
    const char* out;  // nullptr: no match
    const char* addr;
  };
  const Case cases[] = {
      {"RCPT TO:<'bob@example.test'>", "RCPT TO:<bob@example.test>", "bob@example.test"},
      {"RCPT TO:<'bob@example.test'> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.test",
       "RCPT TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.test", "bob@example.test"},
      {"rcpt to:<'bob@example.test'>", "rcpt to:<bob@example.test>", "bob@example.test"},
      {"RCPT  TO:   <'bob@example.test'>", "RCPT  TO:   <bob@example.test>", "bob@example.test"},
      {"RCPT\tTO:\t<'bob@example.test'>", "RCPT\tTO:\t<bob@example.test>", "bob@example.test"},
      // Greedy middle group: the last "'>" of the non-space run.
      {"RCPT TO:<'a'>'b'>", "RCPT TO:<a'>'b>", "a'>'b"},
      {"RCPT TO:<'o'brien@example.test'>", "RCPT TO:<o'brien@example.test>", "o'brien@example.test"},
      {"RCPT TO:<'a'> x'>", "RCPT TO:<a> x'>", "a"},
      // No match.
      {"RCPT TO:<bob@example.test>", nullptr, ""},
      {"RCPT TO:<''>", nullptr, ""},
      {"RCPT TO:<'bob @example.test'>", nullptr, ""},
      {"RCPT TO:<'bob@example.test>", nullptr, ""},
      {"RCPT TO:'bob@example.test'", nullptr, ""},
      {"RCPTTO:<'bob@example.test'>", nullptr, ""},
      {" RCPT TO:<'bob@example.test'>", nullptr, ""},
      {"MAIL FROM:<'bob@example.test'>", nullptr, ""},
      {"RCPT TO:<'", nullptr, ""},
      {"RCPT", nullptr, ""},
  };
  for (const auto& c : cases) {
    std::string addr;
    auto out = stripRcptQuotes(c.in, &addr);
    if (!c.out) {
      EXPECT_FALSE(out) << c.in;
      continue;
    }
    ASSERT_TRUE(out) << c.in;
    EXPECT_EQ(*out, c.out);
    EXPECT_EQ(addr, c.addr);
  }
}

TEST(SmtpCommand, ReplaceMailFromPath) {
  std::string old;
  EXPECT_EQ(*replaceMailFromPath("MAIL FROM:<noreply@x.test> SIZE=10 BODY=8BITMIME", "a@x.test", &old),
            "MAIL FROM:<a@x.test> SIZE=10 BODY=8BITMIME");
  EXPECT_EQ(old, "noreply@x.test");
  EXPECT_EQ(*replaceMailFromPath("mail from: <n@x.test>  RET=FULL ENVID=a+2Bb AUTH=<>", "a@x.test"),
            "mail from: <a@x.test>  RET=FULL ENVID=a+2Bb AUTH=<>");
  EXPECT_EQ(*replaceMailFromPath("MAIL FROM:n@x.test SIZE=1", "a@x.test"), "MAIL FROM:<a@x.test> SIZE=1");
  EXPECT_EQ(*replaceMailFromPath("MAIL FROM:<\"q >\"@x.test>", "a@x.test"), "MAIL FROM:<a@x.test>");
  EXPECT_FALSE(replaceMailFromPath("MAIL FROM:<>", "a@x.test"));
  EXPECT_FALSE(replaceMailFromPath("MAIL FROM:<> SIZE=100", "a@x.test"));
  EXPECT_FALSE(replaceMailFromPath("MAIL FROM:<A@X.TEST> SIZE=100", "a@x.test"));
  EXPECT_FALSE(replaceMailFromPath("MAIL FROM:<a@x.test", "a@x.test"));
  EXPECT_FALSE(replaceMailFromPath("MAIL TO:<n@x.test>", "a@x.test"));
  EXPECT_FALSE(replaceMailFromPath("RCPT TO:<n@x.test>", "a@x.test"));
}

}  // namespace
}  // namespace mailshim::proto::smtp
