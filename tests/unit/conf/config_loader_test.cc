// ConfigLoader and CIDR matching: valid configs load, every class of mistake
// is reported with file:line:col, rules are first-match.
#include "conf/config_loader.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace mailshim::conf {
namespace {

// Certificate paths must be readable; any readable file does for the loader
// (the TLS layer checks the contents).
std::string readableFile() {
  static std::string path = [] {
    std::string p = ::testing::TempDir() + "mailshim_dummy.pem";
    std::ofstream(p) << "x";
    return p;
  }();
  return path;
}

std::string baseConfig(const std::string& extra = "") {
  return "[server]\nname = \"mail.example.test\"\n"
         "[tls]\ncert_file = \"" + readableFile() + "\"\nkey_file = \"" + readableFile() + "\"\n"
         "[[listener]]\nname = \"submission\"\nprotocol = \"smtp\"\naddress = \"127.0.0.1\"\nport = 10587\n"
         "tls = \"starttls\"\nupstream = \"pf\"\n"
         "[[upstream]]\nname = \"pf\"\nprotocol = \"smtp\"\nhost = \"127.0.0.1\"\nport = 20587\n"
         "tls = \"starttls\"\nclient_address = \"xclient\"\nsource_address = \"127.0.0.10\"\n" +
         extra;
}

bool anyErrorContains(const LoadResult& r, const std::string& needle) {
  for (const auto& e : r.errors)
    if (e.find(needle) != std::string::npos) return true;
  return false;
}

TEST(ConfigLoader, LoadsValidConfig) {
  auto r = loadConfigString(baseConfig("[[rule]]\nname = \"legacy\"\nnetworks = [\"127.0.0.2/32\", \"fd00::/8\"]\n"
                                       "quirks = [\"plaintext_auth\", \"smtp.helo_normalize\"]\n"),
                            "t.toml");
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0]);
  const Config& c = *r.config;
  EXPECT_EQ(c.server.name, "mail.example.test");
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].port, 10587);
  ASSERT_EQ(c.upstreams.size(), 1u);
  EXPECT_EQ(c.upstreams[0].client_address, proto::ClientAddressMode::Xclient);
  EXPECT_EQ(c.upstreams[0].verify_name, "127.0.0.1");  // defaults to host
  ASSERT_EQ(c.rules.size(), 1u);
  EXPECT_TRUE(c.rules[0].quirks.has(proto::Quirk::PlaintextAuth));
  EXPECT_TRUE(c.rules[0].quirks.has(proto::Quirk::SmtpHeloNormalize));
  EXPECT_EQ(c.limits.max_line_bytes, 4096u);  // default
}

// Fuzzing loads configs without touching the file system: with
// check_files off, unreadable certificate paths are not errors; by default
// they are.
TEST(ConfigLoader, CheckFilesOffSkipsReadability) {
  std::string text = baseConfig();
  for (size_t pos; (pos = text.find(readableFile())) != std::string::npos;)
    text.replace(pos, readableFile().size(), "/nonexistent/mailshim-test.pem");
  auto strict = loadConfigString(text, "t.toml");
  EXPECT_FALSE(strict.ok());
  EXPECT_TRUE(anyErrorContains(strict, "cannot read '/nonexistent/mailshim-test.pem'"));
  auto lax = loadConfigString(text, "t.toml", LoadOptions{.check_files = false});
  EXPECT_TRUE(lax.ok()) << (lax.errors.empty() ? "" : lax.errors[0]);
}

// Found by fuzz.config_loader: toml++ quotes the bytes it saw in a parse
// error ("expected 'false', saw 'fa\n'"), and keys are quoted in messages,
// so a message could span lines. Every message is one line, controls escaped.
TEST(ConfigLoader, MessagesAreOneLine) {
  auto r = loadConfigString("[pool]\nrise = fa\n3ll = 1\n", "t.toml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].find('\n'), std::string::npos) << r.errors[0];
  EXPECT_NE(r.errors[0].find("\\x0a"), std::string::npos) << r.errors[0];
  EXPECT_TRUE(r.errors[0].starts_with("t.toml:2:")) << r.errors[0];

  auto k = loadConfigString(baseConfig("[server.\"a\\nb\\u001b[31m\"]\n"), "t.toml");
  ASSERT_FALSE(k.errors.empty());
  for (const auto& e : k.errors)
    for (char c : e) EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20 || c == 0x7f) << e;
  EXPECT_TRUE(anyErrorContains(k, "a\\x0ab\\x1b[31m")) << k.errors[0];
}

// Found by fuzz.config_loader (UBSan): toml++ 3.3.0 hit __builtin_unreachable
// in its Unicode tables for non-ASCII code points where it checks for
// whitespace. Such text is a clean parse error (or, inside a string, fine).
TEST(ConfigLoader, NonAsciiOutsideStringsIsAnError) {
  for (const char* text : {"[server]\nkeyい = 1\n", "[server]\ncaf\xc3\xa9 = 1\n", "[server]\nname い\n",
                           "\xef\xad\x90 = 1\n"}) {
    auto r = loadConfigString(text, "t.toml");
    EXPECT_FALSE(r.ok()) << text;
    ASSERT_FALSE(r.errors.empty()) << text;
    EXPECT_TRUE(r.errors[0].starts_with("t.toml:")) << r.errors[0];
  }
  auto ok = loadConfigString(baseConfig("[[rule]]\nname = \"r\"\nnetworks = [\"127.0.0.2/32\"]\nmessage = \"\"\"\\\n   いろは、café\"\"\"\n"), "t.toml");
  ASSERT_TRUE(ok.ok()) << (ok.errors.empty() ? "" : ok.errors[0]);
  EXPECT_EQ(ok.config->rules[0].message, "いろは、café");
}

// Found by fuzz.config_loader (UBSan): toml++ 3.3.0 converted a float node
// to an integer with a plain cast, undefined for values beyond int64. A float
// or any other type where an integer belongs is an error; so is a number
// where true/false belongs (value<bool> would have read 0 as false).
TEST(ConfigLoader, WrongTypesAreErrorsNotConversions) {
  for (const char* v : {"4e034", "-4e34", "1.5", "1e3", "inf", "nan", "\"100\"", "true"}) {
    auto r = loadConfigString(baseConfig(std::string("[limits]\nmax_line_bytes = ") + v + "\n"), "t.toml");
    EXPECT_FALSE(r.ok()) << v;
    EXPECT_TRUE(anyErrorContains(r, "max_line_bytes must be an integer")) << v;
  }
  for (const char* v : {"0", "1", "\"false\""}) {
    auto r = loadConfigString(baseConfig(std::string("verify = ") + v + "\n"), "t.toml");
    EXPECT_FALSE(r.ok()) << v;
    EXPECT_TRUE(anyErrorContains(r, "verify must be true or false")) << v;
  }
  auto ok = loadConfigString(baseConfig("verify = true\n[limits]\nmax_line_bytes = 4096\n"), "t.toml");
  ASSERT_TRUE(ok.ok()) << (ok.errors.empty() ? "" : ok.errors[0]);
  EXPECT_EQ(ok.config->limits.max_line_bytes, 4096u);
}

TEST(ConfigLoader, SyntaxErrorHasFileLineColumn) {
  auto r = loadConfigString("[server]\nname = \n", "broken.toml");
  ASSERT_FALSE(r.ok());
  ASSERT_FALSE(r.errors.empty());
  EXPECT_EQ(r.errors[0].rfind("broken.toml:2:", 0), 0u) << r.errors[0];
}

TEST(ConfigLoader, UnknownKeysAreErrors) {
  auto r = loadConfigString(baseConfig("[limits]\nmax_line_byte = 100\n"), "t.toml");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(anyErrorContains(r, "unknown key 'max_line_byte'"));
  EXPECT_TRUE(anyErrorContains(r, "t.toml:"));
}

TEST(ConfigLoader, BadValuesAreReported) {
  EXPECT_TRUE(anyErrorContains(loadConfigString(baseConfig("[[rule]]\nname=\"r\"\nnetworks=[\"10.0.0.1/8\"]\n")),
                               "is not a network"));
  EXPECT_TRUE(anyErrorContains(loadConfigString(baseConfig("[[rule]]\nname=\"r\"\nnetworks=[\"300.0.0.0/8\"]\n")),
                               "is not a network"));
  EXPECT_TRUE(anyErrorContains(
      loadConfigString(baseConfig("[[rule]]\nname=\"r\"\nnetworks=[\"10.0.0.0/8\"]\nquirks=[\"nope\"]\n")),
      "unknown quirk 'nope'"));
  EXPECT_TRUE(anyErrorContains(loadConfigString(baseConfig("[limits]\nmax_errors = 0\n")), "out of range"));
  std::string bad_port = baseConfig();
  bad_port.replace(bad_port.find("port = 10587"), 12, "port = 70000");
  EXPECT_TRUE(anyErrorContains(loadConfigString(bad_port), "out of range"));
  std::string bad_up = baseConfig();
  bad_up.replace(bad_up.find("upstream = \"pf\""), 15, "upstream = \"zz\"");
  EXPECT_TRUE(anyErrorContains(loadConfigString(bad_up), "no [[upstream]] or [[pool]] named 'zz'"));
  std::string bad_cert = baseConfig();
  bad_cert.replace(bad_cert.find("cert_file = \"") + 13, readableFile().size(), "/nonexistent/cert.pem");
  EXPECT_TRUE(anyErrorContains(loadConfigString(bad_cert), "cannot read '/nonexistent/cert.pem'"));
}

TEST(ConfigLoader, SessionTickets) {
  auto withTls = [](const std::string& line) {
    std::string c = baseConfig();
    c.insert(c.find("[[listener]]"), line);
    return c;
  };
  auto d = loadConfigString(baseConfig());
  ASSERT_TRUE(d.ok()) << (d.errors.empty() ? "" : d.errors[0]);
  EXPECT_EQ(d.config->tls.session_tickets, 1u);  // default: one TLS 1.3 ticket
  auto none = loadConfigString(withTls("session_tickets = 0\n"));
  ASSERT_TRUE(none.ok()) << (none.errors.empty() ? "" : none.errors[0]);
  EXPECT_EQ(none.config->tls.session_tickets, 0u);
  EXPECT_TRUE(anyErrorContains(loadConfigString(withTls("session_tickets = 9\n")), "out of range"));
}

TEST(ConfigLoader, PlaintextUpstreamOnlyOnLoopback) {
  std::string cfg = baseConfig();
  cfg.replace(cfg.find("host = \"127.0.0.1\""), 18, "host = \"192.0.2.1\"");
  cfg.replace(cfg.find("tls = \"starttls\"\nclient"), 16, "tls = \"none\"");
  EXPECT_TRUE(anyErrorContains(loadConfigString(cfg), "only allowed for a backend on this host"));
}

TEST(ConfigLoader, DuplicateListenerAddress) {
  auto r = loadConfigString(baseConfig("[[listener]]\nname = \"two\"\nprotocol = \"smtp\"\naddress = \"127.0.0.1\"\n"
                                       "port = 10587\nupstream = \"pf\"\n"));
  EXPECT_TRUE(anyErrorContains(r, "same address and port"));
}

// The documented example must stay a valid config (its certificate paths
// are swapped for readable files; everything else is checked as written).
TEST(ConfigLoader, ExampleConfigIsValid) {
  std::ifstream in(std::string(MAILSHIM_SOURCE_DIR) + "/conf/mailshim.example.toml");
  ASSERT_TRUE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  for (const char* path : {"/etc/letsencrypt/live/mail.example.test/fullchain.pem",
                           "/etc/letsencrypt/live/mail.example.test/privkey.pem",
                           "/etc/ssl/certs/ca-certificates.crt"}) {
    for (size_t pos; (pos = text.find(path)) != std::string::npos;) text.replace(pos, std::strlen(path), readableFile());
  }
  auto r = loadConfigString(text, "mailshim.example.toml");
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0]);
  EXPECT_EQ(r.config->listeners.size(), 6u);
  EXPECT_EQ(r.config->rules.size(), 1u);
  EXPECT_TRUE(r.config->rules[0].sunset.has_value());
}

TEST(Rules, FirstMatchWins) {
  auto r = loadConfigString(baseConfig("[[rule]]\nname = \"one\"\nnetworks = [\"127.0.0.2/32\"]\nquirks = [\"plaintext_auth\"]\n"
                                       "[[rule]]\nname = \"all\"\nnetworks = [\"127.0.0.0/8\", \"::/0\"]\n"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->matchRule(*IpAddress::parse("127.0.0.2"))->name, "one");
  EXPECT_EQ(r.config->matchRule(*IpAddress::parse("127.0.0.1"))->name, "all");
  EXPECT_EQ(r.config->matchRule(*IpAddress::parse("::1"))->name, "all");
  EXPECT_EQ(r.config->matchRule(*IpAddress::parse("::ffff:127.0.0.2"))->name, "one");  // mapped v4
  EXPECT_EQ(r.config->matchRule(*IpAddress::parse("192.0.2.1")), nullptr);
}

TEST(Cidr, Matching) {
  auto c = Cidr::parse("192.168.10.0/23");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->contains(*IpAddress::parse("192.168.11.255")));
  EXPECT_FALSE(c->contains(*IpAddress::parse("192.168.12.0")));
  auto v6 = Cidr::parse("fd00:10::/64");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains(*IpAddress::parse("fd00:10::1")));
  EXPECT_FALSE(v6->contains(*IpAddress::parse("fd00:11::1")));
  EXPECT_FALSE(v6->contains(*IpAddress::parse("10.0.0.1")));
  EXPECT_TRUE(Cidr::parse("0.0.0.0/0")->contains(*IpAddress::parse("8.8.8.8")));
  EXPECT_FALSE(Cidr::parse("1.2.3.4/33"));
  EXPECT_FALSE(IpAddress::parse(std::string("1.2.3.4\0junk", 12)));  // no NUL-truncated addresses
  EXPECT_FALSE(IpAddress::parse(" 1.2.3.4"));
  EXPECT_FALSE(Cidr::parse("1.2.3.4/"));
  EXPECT_FALSE(Cidr::parse("1.2.3.4/x"));
  EXPECT_EQ(Cidr::parse("10.1.0.0/16")->toString(), "10.1.0.0/16");
}

}  // namespace
}  // namespace mailshim::conf
