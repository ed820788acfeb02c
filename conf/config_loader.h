// ConfigLoader: TOML (toml++, no-exceptions mode) -> validated Config snapshot.
// Every problem is reported as "file:line:col: message"; unknown keys are
// errors (a typo must never silently fall back to a default). Certificate
// checks that need OpenSSL are done by tls/ on top of this.
//
// Reads the config file. No sockets. Standard library + toml++.
#pragma once

#include <string>
#include <vector>

#include "conf/config.h"

namespace mailshim::conf {

struct LoadResult {
  ConfigConstSharedPtr config;  // null when errors is non-empty
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
  bool ok() const { return config != nullptr && errors.empty(); }
};

struct LoadOptions {
  // Check that the files the config names (certificates, keys, CA bundles,
  // the directory TSV) are readable. Off only for fuzzing: the fuzz target
  // must not make its verdict depend on the machine's files.
  bool check_files = true;
};

LoadResult loadConfigFile(const std::string& path);
// Same, from a string (tests, fuzzing). `path` is only used in messages.
LoadResult loadConfigString(std::string_view toml, const std::string& path = "<string>", LoadOptions options = {});

}  // namespace mailshim::conf
