// Quirk registry rows. See quirks.h. No I/O.
#include "protocols/common/quirks.h"

#include <array>

namespace mailshim::proto {
namespace {

constexpr std::array<QuirkInfo, static_cast<size_t>(Quirk::kCount)> kRegistry{{
    {Quirk::PlaintextAuth, "plaintext_auth", "smtp imap pop3",
     "Windows Live Mail 2012, Outlook Express, Outlook with encryption \"None\", printers and "
     "scanners without STARTTLS",
     "Advertises and accepts AUTH (SMTP), LOGIN/AUTHENTICATE (IMAP) and USER/PASS/AUTH (POP3) "
     "on a plaintext client connection. The backend leg stays TLS.",
     "client-quirks.md sections 1, 2.4 and 5.7; RFC 4954 section 4, RFC 3501 section 6.2.3"},
    {Quirk::SmtpHeloNormalize, "smtp.helo_normalize", "smtp",
     "Windows Live Mail (EHLO WIN7-PC), Outlook (bare NetBIOS name), Delta Chat (localhost), "
     "Toshiba/Kyocera copiers (*.local)",
     "A HELO/EHLO argument that is not a fully-qualified domain name or an address literal is "
     "replaced toward the backend by the client's address literal [ip]; the original is logged.",
     "client-quirks.md sections 1, 4.3, 4.4, 5.3; Postfix reject_non_fqdn_helo_hostname"},
}};

}  // namespace

std::span<const QuirkInfo> quirkRegistry() { return kRegistry; }

const QuirkInfo& quirkInfo(Quirk q) { return kRegistry[static_cast<size_t>(q)]; }

std::string_view quirkId(Quirk q) { return quirkInfo(q).id; }

std::optional<Quirk> quirkFromId(std::string_view id) {
  for (const auto& row : kRegistry)
    if (row.id == id) return row.quirk;
  return std::nullopt;
}

std::string QuirkSet::toString() const {
  std::string out;
  for (const auto& row : kRegistry) {
    if (!has(row.quirk)) continue;
    if (!out.empty()) out += ' ';
    out += row.id;
  }
  return out.empty() ? "-" : out;
}

}  // namespace mailshim::proto
