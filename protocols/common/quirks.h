// Named quirks: every client workaround mailshim knows is one enum value and
// one row in the registry (quirks.cc). Rules in the config map client networks
// to a QuirkSet; phases ask `quirks.has(Quirk::X)` and report each use with a
// QuirkUsed action, which the shell counts and logs. docs/quirks.md is
// generated from the registry (`mailshim quirks`).
//
// No I/O. Standard library only.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace mailshim::proto {

enum class Quirk : uint8_t {
  PlaintextAuth,      // plaintext_auth
  SmtpHeloNormalize,  // smtp.helo_normalize
  TlsLegacyProtocols,         // tls.legacy_protocols
  TlsImplicitOnStarttlsPort,  // tls.implicit_on_starttls_port
  SmtpAuthEquals,             // smtp.auth_equals
  SmtpDisplayName,            // smtp.display_name
  SmtpRcptStripQuotes,        // smtp.rcpt_strip_quotes
  SmtpBareLf,                 // smtp.bare_lf
  SmtpSenderAlign,            // smtp.sender_align
  SmtpHeloOnly,               // smtp.helo_only
  kCount
};

struct QuirkInfo {
  Quirk quirk;
  std::string_view id;         // config name, e.g. "smtp.helo_normalize"
  std::string_view protocols;  // "smtp", "smtp imap pop3", ...
  std::string_view clients;    // who needs it
  std::string_view wire;       // what it changes on the wire
  std::string_view reference;  // where the behaviour is documented
};

std::span<const QuirkInfo> quirkRegistry();
const QuirkInfo& quirkInfo(Quirk q);
std::string_view quirkId(Quirk q);
std::optional<Quirk> quirkFromId(std::string_view id);

class QuirkSet {
 public:
  bool has(Quirk q) const { return bits_.test(static_cast<size_t>(q)); }
  void add(Quirk q) { bits_.set(static_cast<size_t>(q)); }
  bool empty() const { return bits_.none(); }
  // Space-separated ids in registry order, "-" when empty (for log lines).
  std::string toString() const;

 private:
  std::bitset<static_cast<size_t>(Quirk::kCount)> bits_;
};

}  // namespace mailshim::proto
