// Admin console command parser. See admin_command.h.
#include "protocols/common/admin_command.h"

#include <vector>

#include "protocols/common/text.h"

namespace mailshim::proto {

namespace {

AdminCommand invalid(std::string why) {
  AdminCommand c;
  c.error = std::move(why);
  return c;
}

}  // namespace

AdminCommand parseAdminCommand(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > kAdminMaxLine) return invalid("line too long");
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < line.size()) {
    auto c = static_cast<unsigned char>(line[i]);
    if (c == ' ' || c == '\t') {
      ++i;
      continue;
    }
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') {
      auto b = static_cast<unsigned char>(line[i]);
      if (b < 0x21 || b > 0x7e) return invalid("control or non-ASCII byte in command");
      ++i;
    }
    words.push_back(line.substr(start, i - start));
  }
  if (words.empty()) return invalid("empty command; try HELP");
  std::string verb = asciiUpper(words[0]);
  AdminCommand cmd;
  auto want = [&](size_t n) { return words.size() == n; };
  if (verb == "HELP" && want(1)) {
    cmd.verb = AdminVerb::Help;
  } else if (verb == "SHOW" && want(2)) {
    std::string what = asciiUpper(words[1]);
    if (what == "STATS") cmd.verb = AdminVerb::ShowStats;
    else if (what == "SESSIONS") cmd.verb = AdminVerb::ShowSessions;
    else if (what == "UPSTREAMS") cmd.verb = AdminVerb::ShowUpstreams;
    else if (what == "RULES") cmd.verb = AdminVerb::ShowRules;
    else if (what == "CLIENTS") cmd.verb = AdminVerb::ShowClients;
    else return invalid("SHOW what? STATS, SESSIONS, UPSTREAMS, RULES or CLIENTS");
  } else if (verb == "RELOAD" && want(1)) {
    cmd.verb = AdminVerb::Reload;
  } else if (verb == "KILL" && want(2)) {
    std::string_view id = words[1];
    if (id.size() > 32) return invalid("not a session id");
    for (char c : id)
      if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
        return invalid("not a session id");
    cmd.verb = AdminVerb::Kill;
    cmd.arg = asciiUpper(id);
  } else if (verb == "SHUTDOWN" && want(1)) {
    cmd.verb = AdminVerb::Shutdown;
  } else if (verb == "SHUTDOWN" && want(2) && asciiUpper(words[1]) == "GRACEFUL") {
    cmd.verb = AdminVerb::ShutdownGraceful;
  } else {
    return invalid("unknown command or wrong arguments; try HELP");
  }
  return cmd;
}

std::string_view adminHelp() {
  return "HELP                        this text\n"
         "SHOW STATS                  every counter, family and histogram (same names as /metrics)\n"
         "SHOW SESSIONS               open sessions: id, worker, listener, state, client, user, rule, age, bytes\n"
         "SHOW UPSTREAMS              backends: address, TLS, health\n"
         "SHOW RULES                  rules in order: matchers, quirks, sunset status, limits\n"
         "SHOW CLIENTS                client addresses with open sessions or recent failed logins\n"
         "RELOAD                      re-read the configuration (as SIGHUP); says why if it is refused\n"
         "KILL <session-id>           close one session with the protocol's notice\n"
         "SHUTDOWN [GRACEFUL]         stop now (sessions get a notice), or stop accepting and drain\n";
}

}  // namespace mailshim::proto
