// The admin console's line protocol (see proxy/admin.h): one command per
// connection, e.g. "SHOW SESSIONS\n"; the reply is text lines ending with a
// line "OK ..." or "ERR ...". This is the codec: parsing only, no I/O.
//
//   HELP
//   SHOW STATS | SESSIONS | UPSTREAMS | RULES | CLIENTS
//   RELOAD
//   KILL <session-id>
//   SHUTDOWN [GRACEFUL]
//
// Verbs are case-insensitive. Anything else (control bytes, over-long lines,
// extra words) is an error with a one-line reason, never a guess.
#pragma once

#include <string>
#include <string_view>

namespace mailshim::proto {

enum class AdminVerb {
  Help,
  ShowStats,
  ShowSessions,
  ShowUpstreams,
  ShowRules,
  ShowClients,
  Reload,
  Kill,
  Shutdown,
  ShutdownGraceful,
  Invalid,
};

struct AdminCommand {
  AdminVerb verb = AdminVerb::Invalid;
  std::string arg;    // KILL: the session id
  std::string error;  // Invalid: why
};

inline constexpr size_t kAdminMaxLine = 512;

// `line` without its terminating LF (a trailing CR is allowed).
AdminCommand parseAdminCommand(std::string_view line);

// The HELP text (one command per line).
std::string_view adminHelp();

}  // namespace mailshim::proto
