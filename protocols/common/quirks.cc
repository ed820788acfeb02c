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
    {Quirk::TlsLegacyProtocols, "tls.legacy_protocols", "smtp imap pop3",
     "Windows 7-era SChannel clients (Windows Live Mail 2012, Outlook 2010, Outlook Express), "
     "scanners and printers that speak only TLS 1.0/1.1",
     "The client leg accepts TLS 1.0 and 1.1 with the CBC-SHA ciphers Windows 7 offers "
     "(OpenSSL security level 0 on that connection only). The backend leg keeps TLS 1.2+.",
     "client-quirks.md sections 1 and 4.4; RFC 8996; OpenSSL 3 SECLEVEL notes"},
    {Quirk::TlsImplicitOnStarttlsPort, "tls.implicit_on_starttls_port", "smtp imap pop3",
     "Outlook with \"SSL/TLS\" on port 587, HP MFP M477dw, MailKit/K-9 users who pick SSL on a STARTTLS port",
     "On a listener with tls = \"auto\", a TLS ClientHello that arrives before the greeting starts "
     "implicit TLS, and the greeting follows inside TLS. Counted and logged for every such session.",
     "client-quirks.md sections 2.2 and 6 (case 27); RFC 8314 section 3.3"},
}};

static_assert(kRegistry.size() == static_cast<size_t>(Quirk::kCount), "one registry row per quirk");

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
