// Rule evaluation: matchers, first match, connect-time vs login-time, sunsets.
#include <gtest/gtest.h>

#include <fstream>

#include "conf/config_loader.h"
#include "conf/directory_loader.h"

namespace mailshim::conf {
namespace {

std::string dummyFile() {
  static std::string path = [] {
    std::string p = ::testing::TempDir() + "mailshim_rules_dummy.pem";
    std::ofstream(p) << "x";
    return p;
  }();
  return path;
}

ConfigConstSharedPtr load(const std::string& rules) {
  std::string cfg = "[tls]\ncert_file = \"" + dummyFile() + "\"\nkey_file = \"" + dummyFile() + "\"\n" +
                    "[[listener]]\nname = \"submission\"\nprotocol = \"smtp\"\naddress = \"127.0.0.1\"\nport = 1\n"
                    "upstream = \"pf\"\n"
                    "[[listener]]\nname = \"pop3\"\nprotocol = \"pop3\"\naddress = \"127.0.0.1\"\nport = 2\n"
                    "upstream = \"dc\"\n"
                    "[[upstream]]\nname = \"pf\"\nprotocol = \"smtp\"\nhost = \"127.0.0.1\"\nport = 3\n"
                    "[[upstream]]\nname = \"dc\"\nprotocol = \"pop3\"\nhost = \"127.0.0.1\"\nport = 4\n" +
                    rules;
  auto r = loadConfigString(cfg, "rules.toml");
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0]);
  return r.config;
}

RuleQuery at(const char* ip, const char* listener = "submission") {
  return RuleQuery{*IpAddress::parse(ip), listener, std::nullopt, std::nullopt};
}

const Date kToday{2026, 11, 28};

TEST(Rules, ListenerAndNetworkMatchers) {
  auto c = load(
      "[[rule]]\nname = \"pop-lan\"\nnetworks = [\"10.0.0.0/8\"]\nlisteners = [\"pop3\"]\nquirks = [\"plaintext_auth\"]\n"
      "[[rule]]\nname = \"lan\"\nnetworks = [\"10.0.0.0/8\"]\nquirks = [\"smtp.helo_normalize\"]\n");
  EXPECT_EQ(c->decide(at("10.1.2.3", "pop3"), kToday).rule->name, "pop-lan");
  EXPECT_EQ(c->decide(at("10.1.2.3", "submission"), kToday).rule->name, "lan");
  EXPECT_EQ(c->decide(at("192.0.2.1"), kToday).rule, nullptr);
}

TEST(Rules, UserAndFingerprintRulesWaitForLogin) {
  auto c = load(
      "[[rule]]\nname = \"scanner\"\nusers = [\"scanner@*\"]\nquirks = [\"smtp.sender_align\"]\n"
      "[[rule]]\nname = \"wlm\"\nfingerprints = [\"Windows Live Mail*\"]\nquirks = [\"smtp.display_name\"]\n"
      "[[rule]]\nname = \"all\"\nnetworks = [\"0.0.0.0/0\"]\n");
  // At connect, user/fingerprint rules are skipped.
  EXPECT_EQ(c->decide(at("10.0.0.1"), kToday).rule->name, "all");
  RuleQuery q = at("10.0.0.1");
  q.user = "Scanner@example.test";
  q.fingerprint = "unknown";
  auto d = c->decide(q, kToday);
  EXPECT_EQ(d.rule->name, "scanner");
  EXPECT_TRUE(d.quirks.has(proto::Quirk::SmtpSenderAlign));
  q.user = "alice@example.test";
  q.fingerprint = "Windows Live Mail 2012 (TLS 1.0)";
  EXPECT_EQ(c->decide(q, kToday).rule->name, "wlm");
}

TEST(Rules, SunsetRefuseRetiresQuirks) {
  auto c = load(
      "[[rule]]\nname = \"old\"\nnetworks = [\"10.0.0.0/8\"]\nquirks = [\"plaintext_auth\", \"tls.legacy_protocols\"]\n"
      "sunset = \"2027-03-31\"\nafter_sunset = \"refuse\"\nmessage = \"平文ログインは終了しました\"\n");
  auto before = c->decide(at("10.0.0.1"), Date{2027, 3, 31});  // the sunset day itself still works
  EXPECT_TRUE(before.quirks.has(proto::Quirk::PlaintextAuth));
  EXPECT_TRUE(before.legacy_tls);
  EXPECT_FALSE(before.overdue);
  auto after = c->decide(at("10.0.0.1"), Date{2027, 4, 1});
  EXPECT_TRUE(after.quirks.empty());
  EXPECT_TRUE(after.retired.has(proto::Quirk::PlaintextAuth));
  EXPECT_FALSE(after.legacy_tls);
  EXPECT_TRUE(after.overdue);
  EXPECT_EQ(after.message, "平文ログインは終了しました");
}

TEST(Rules, SunsetWarnKeepsQuirks) {
  auto c = load("[[rule]]\nname = \"old\"\nnetworks = [\"10.0.0.0/8\"]\nquirks = [\"plaintext_auth\"]\n"
                "sunset = \"2026-01-31\"\nafter_sunset = \"warn\"\n");
  auto d = c->decide(at("10.0.0.1"), kToday);
  EXPECT_TRUE(d.quirks.has(proto::Quirk::PlaintextAuth));
  EXPECT_TRUE(d.retired.empty());
  EXPECT_TRUE(d.overdue);
}

TEST(Rules, TlsProfileKey) {
  auto c = load("[[rule]]\nname = \"scan\"\nnetworks = [\"10.0.0.0/8\"]\ntls_profile = \"legacy\"\n");
  EXPECT_TRUE(c->decide(at("10.0.0.9"), kToday).legacy_tls);
}

TEST(Rules, ConfigErrors) {
  auto bad = [](const std::string& rule) {
    std::string cfg = "[tls]\ncert_file = \"" + dummyFile() + "\"\nkey_file = \"" + dummyFile() + "\"\n" +
                      "[[listener]]\nname = \"s\"\nprotocol = \"smtp\"\naddress = \"127.0.0.1\"\nport = 1\n"
                      "upstream = \"pf\"\n[[upstream]]\nname = \"pf\"\nprotocol = \"smtp\"\nhost = \"127.0.0.1\"\n"
                      "port = 3\n" + rule;
    auto r = loadConfigString(cfg);
    return r.errors.empty() ? std::string() : r.errors[0];
  };
  EXPECT_NE(bad("[[rule]]\nname = \"x\"\nnetworks = [\"10.0.0.0/8\"]\nsunset = \"2027-02-30\"\n").find("sunset"),
            std::string::npos);
  EXPECT_NE(bad("[[rule]]\nname = \"x\"\nnetworks = [\"10.0.0.0/8\"]\nafter_sunset = \"never\"\n").find("after_sunset"),
            std::string::npos);
  EXPECT_NE(bad("[[rule]]\nname = \"x\"\n").find("at least one matcher"), std::string::npos);
  EXPECT_NE(bad("[[rule]]\nname = \"x\"\nlisteners = [\"nope\"]\n").find("no listener named 'nope'"), std::string::npos);
  EXPECT_NE(bad("[[rule]]\nname = \"x\"\nnetworks = [\"10.0.0.0/8\"]\nmessage = \"a\\r\\nb\"\n").find("one line"),
            std::string::npos);
}

TEST(Glob, Matching) {
  EXPECT_TRUE(globMatch("*@example.test", "Alice@Example.TEST"));
  EXPECT_TRUE(globMatch("Windows Live Mail*", "Windows Live Mail 2012 (TLS 1.0)"));
  EXPECT_TRUE(globMatch("scan?er@*", "scanner@x"));
  EXPECT_FALSE(globMatch("*@example.test", "alice@example.test.evil"));
  EXPECT_TRUE(globMatch("*", ""));
  EXPECT_FALSE(globMatch("a", ""));
  // Found by fuzz.conf_rules: a '*' in the pattern was first compared with a
  // literal '*' in the text and then no longer backtracked as a wildcard.
  EXPECT_TRUE(globMatch("*", "*0"));
  EXPECT_TRUE(globMatch("*@example.test", "*x@example.test"));
  EXPECT_TRUE(globMatch("a*b", "a*xb"));
  EXPECT_FALSE(globMatch("*b", "*a"));
}

TEST(Date, ParseAndCompare) {
  EXPECT_FALSE(Date::parse("2027-02-29"));
  EXPECT_TRUE(Date::parse("2028-02-29"));
  EXPECT_FALSE(Date::parse("27-03-31"));
  EXPECT_LT(*Date::parse("2026-12-31"), *Date::parse("2027-01-01"));
  EXPECT_EQ(Date::parse("2027-03-31")->daysSinceEpoch() - Date::parse("2027-03-01")->daysSinceEpoch(), 30);
  EXPECT_EQ(Date::parse("2027-03-31")->toString(), "2027-03-31");
}

TEST(Directory, InlineAndTsv) {
  std::string tsv = ::testing::TempDir() + "mailshim_dir.tsv";
  std::ofstream(tsv) << "# export\nalice@example.test\tAlice Liddell\ntaro@example.test\t山田 太郎\nbroken line\n";
  DirectorySettings s;
  s.file = tsv;
  s.names = {{"Bob@Example.test", "Bob"}};
  std::vector<std::string> warnings;
  auto d = loadDirectory(s, warnings);
  EXPECT_EQ(d->displayName("ALICE@example.test"), "Alice Liddell");
  EXPECT_EQ(d->displayName("taro@example.test"), "山田 太郎");
  EXPECT_EQ(d->displayName("bob@example.test"), "Bob");
  EXPECT_FALSE(d->displayName("nobody@example.test"));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find(":4:"), std::string::npos);
}

}  // namespace
}  // namespace mailshim::conf
