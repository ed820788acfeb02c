// Logging: spdlog to stderr (journald adds its own timestamps when run by
// systemd), one line per event an admin greps for, in a stable
// `event key=value ...` format that always carries session= and rip=.
// Values are rendered with kv(), which quotes and escapes untrusted text so a
// client can never inject a line break or a fake key into the log.
//
// I/O: writes log lines.
#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

namespace mailshim::proxy {

// Sets up the default logger (stderr, pattern, level name from the config).
void initLogging(const std::string& level);
void setLogLevel(const std::string& level);

// " key=value" with the value quoted ("...") when it contains spaces, quotes
// or non-printable bytes; those are escaped. Never emits CR, LF or NUL.
std::string kv(std::string_view key, std::string_view value);
std::string kv(std::string_view key, uint64_t value);

}  // namespace mailshim::proxy
