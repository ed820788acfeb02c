// Certificate audit for `mailshim --check-config`, start and reload: catches
// before users do what makes Outlook and friends fail in the field.
//   error    key does not match the certificate
//   error    chain not in order / incomplete (an intermediate is missing)
//   error    certificate expired
//   warning  certificate expires within 21 days
//   error    a listener's server_names entry is not covered by any certificate
//            (Outlook's "the name on the certificate does not match")
//   warning  self-signed leaf on a listener reachable from outside
//
// Reads certificate files. No sockets. OpenSSL 3.
#pragma once

#include <string>
#include <vector>

#include "conf/config.h"

namespace mailshim::tls {

struct AuditFinding {
  enum class Severity { Warning, Error } severity;
  std::string message;
};

// `now` is seconds since the epoch (tests pass a fixed time; 0 = current time).
std::vector<AuditFinding> auditCertificates(const conf::Config& cfg, long long now = 0);

}  // namespace mailshim::tls
