// Logging setup. See log.h.
#include "proxy/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include "protocols/common/text.h"

namespace mailshim::proxy {

void initLogging(const std::string& level) {
  auto logger = spdlog::stderr_logger_mt("mailshim");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l mailshim: %v");
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  setLogLevel(level);
}

void setLogLevel(const std::string& level) { spdlog::set_level(spdlog::level::from_str(level)); }

std::string kv(std::string_view key, std::string_view value) {
  std::string safe = proto::logSafe(value, 512);
  bool quote = safe.empty() || safe.find_first_of(" \"=") != std::string::npos;
  std::string out;
  out.reserve(key.size() + safe.size() + 4);
  out += ' ';
  out += key;
  out += '=';
  if (!quote) {
    out += safe;
    return out;
  }
  out += '"';
  for (char c : safe) {
    if (c == '"') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::string kv(std::string_view key, uint64_t value) {
  std::string out = " ";
  out += key;
  out += '=';
  out += std::to_string(value);
  return out;
}

}  // namespace mailshim::proxy
