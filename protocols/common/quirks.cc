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
    {Quirk::SmtpAuthEquals, "smtp.auth_equals", "smtp",
     "Outlook Express 4, Exchange 5.0 and .NET SmtpClient parsing of legacy servers",
     "The EHLO reply also lists the pre-RFC 2554 line `250-AUTH=PLAIN LOGIN` next to `250-AUTH PLAIN LOGIN` "
     "(what Postfix's broken_sasl_auth_clients does).",
     "client-quirks.md section 3; Postfix broken_sasl_auth_clients"},
    {Quirk::SmtpDisplayName, "smtp.display_name", "smtp",
     "Outlook 2016-2021 with the \"Your Name\" field left blank, scanners that send a bare address",
     "When the first From header has an address but no display name, the account's name from the directory "
     "is inserted (RFC 2047 encoded-word if not ASCII). Nothing else in the message changes.",
     "client-quirks.md field notes (Outlook 2019); RFC 5322 section 3.4, RFC 2047"},
    {Quirk::SmtpRcptStripQuotes, "smtp.rcpt_strip_quotes", "smtp",
     "Outlook 2003 and 2007",
     "`RCPT TO:<'user@domain'>` becomes `RCPT TO:<user@domain>` toward the backend.",
     "client-quirks.md section 2.5; iRedMail command_filter.pcre"},
    {Quirk::SmtpBareLf, "smtp.bare_lf", "smtp",
     "old scanners, scripts and web forms that end lines with LF only",
     "Bare LF (and bare CR) line ends in DATA become CRLF toward the backend. Without this quirk a bare CR "
     "or LF in DATA is refused (the SMTP smuggling defence).",
     "client-quirks.md section 6 (case 29); https://www.postfix.org/smtp-smuggling.html"},
    {Quirk::SmtpSenderAlign, "smtp.sender_align", "smtp",
     "scanners and web forms that send from a fixed address (noreply@) while logged in as another user",
     "The envelope sender (MAIL FROM) becomes the login name so iRedAPD's sender/login check passes; the "
     "From header is left alone.",
     "client-quirks.md sections 4.4, 4.5 and 5.4; iRedAPD reject_sender_login_mismatch"},
    {Quirk::SmtpHeloOnly, "smtp.helo_only", "smtp",
     "printers and scan-to-mail devices that say HELO and never EHLO",
     "After HELO (not EHLO) the client may still use STARTTLS and AUTH, which mailshim otherwise accepts only "
     "after EHLO (they are ESMTP extensions); toward the backend the session is ESMTP.",
     "client-quirks.md section 4.4; RFC 5321 section 4.1.1.1, RFC 4954"},
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
