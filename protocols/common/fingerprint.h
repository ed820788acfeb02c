// Client fingerprint: a best guess of the client software from what it
// reveals — the HELO/EHLO argument's shape, IMAP ID fields, X-Mailer /
// User-Agent of a submitted message, the TLS versions it offered, whether it
// sent a ClientHello before the greeting — e.g. "Windows Live Mail 2012",
// "Outlook 16.0", "Thunderbird 128", "scanner (HELO only, TLS 1.0)". Used in
// the session log line, in rules (`fingerprints = [...]` globs) and in the
// retirement report. A guess, never a security decision.
//
// No I/O. Standard library only.
#pragma once

#include <map>
#include <string>

namespace mailshim::proto {

struct FingerprintInput {
  std::string protocol;                  // "smtp" | "imap" | "pop3"
  std::string helo;                      // SMTP HELO/EHLO argument as sent
  bool helo_only = false;                // SMTP: HELO, never EHLO
  std::map<std::string, std::string> id; // IMAP ID fields, lowercase keys ("name", "version", ...)
  std::string x_mailer;                  // from a submitted message
  std::string user_agent;
  std::string tls_max_offered;           // "TLSv1", "TLSv1.2", ... ("" = no TLS / unknown)
  bool tls_before_greeting = false;      // sniffed implicit TLS on a STARTTLS port
};

// Never empty: "unknown" when nothing is recognisable. At most 80 bytes,
// printable ASCII only (safe for logs, TSV and rules).
std::string fingerprint(const FingerprintInput& in);

}  // namespace mailshim::proto
