#include "protocols/common/admin_command.h"

#include <gtest/gtest.h>

namespace mailshim::proto {
namespace {

TEST(AdminCommand, Verbs) {
  EXPECT_EQ(parseAdminCommand("HELP").verb, AdminVerb::Help);
  EXPECT_EQ(parseAdminCommand("show stats").verb, AdminVerb::ShowStats);
  EXPECT_EQ(parseAdminCommand("SHOW SESSIONS\r").verb, AdminVerb::ShowSessions);
  EXPECT_EQ(parseAdminCommand("  Show   Upstreams ").verb, AdminVerb::ShowUpstreams);
  EXPECT_EQ(parseAdminCommand("SHOW RULES").verb, AdminVerb::ShowRules);
  EXPECT_EQ(parseAdminCommand("SHOW CLIENTS").verb, AdminVerb::ShowClients);
  EXPECT_EQ(parseAdminCommand("RELOAD").verb, AdminVerb::Reload);
  EXPECT_EQ(parseAdminCommand("SHUTDOWN").verb, AdminVerb::Shutdown);
  EXPECT_EQ(parseAdminCommand("shutdown graceful").verb, AdminVerb::ShutdownGraceful);
  auto k = parseAdminCommand("KILL g3lkctypqw3c");
  EXPECT_EQ(k.verb, AdminVerb::Kill);
  EXPECT_EQ(k.arg, "G3LKCTYPQW3C");
}

TEST(AdminCommand, RefusesWhatItDoesNotKnow) {
  for (const char* bad : {"", "   ", "SHOW", "SHOW ME", "RELOAD NOW", "KILL", "KILL a b", "KILL ../x",
                          "KILL 0123456789012345678901234567890123", "SHUTDOWN NOW", "DROP TABLE",
                          "SHOW\x01STATS", "SHOW STATS\n", "SHOW ST\0ATS"}) {
    auto c = parseAdminCommand(bad);
    EXPECT_EQ(c.verb, AdminVerb::Invalid) << bad;
    EXPECT_FALSE(c.error.empty()) << bad;
  }
  EXPECT_EQ(parseAdminCommand(std::string_view("SHOW ST\0ATS", 11)).verb, AdminVerb::Invalid);
  EXPECT_EQ(parseAdminCommand(std::string(600, 'A')).error, "line too long");
  EXPECT_EQ(parseAdminCommand("SHOW \xc3\xa9").verb, AdminVerb::Invalid);
}

TEST(AdminCommand, HelpNamesEveryCommand) {
  std::string help(adminHelp());
  for (const char* w : {"SHOW STATS", "SHOW SESSIONS", "SHOW UPSTREAMS", "SHOW RULES", "SHOW CLIENTS", "RELOAD", "KILL",
                        "SHUTDOWN"})
    EXPECT_NE(help.find(w), std::string::npos) << w;
}

}  // namespace
}  // namespace mailshim::proto
