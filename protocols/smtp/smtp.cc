// SMTP facade: the protocol registry's factories for the SMTP front phase,
// upstream login and relay filter, and the 421 notices (RFC 5321 section
// 3.8, RFC 3463 codes) the shell sends when it closes a session itself.
//
// No I/O. Standard library only.
#include "protocols/smtp/smtp.h"

#include "protocols/smtp/smtp_front_phase.h"
#include "protocols/smtp/smtp_relay_filter.h"
#include "protocols/smtp/smtp_upstream_login.h"

namespace mailshim::proto::smtp {
namespace {

// The name is interpolated into a reply line: keep only a visible-ASCII token.
std::string safeName(std::string_view name) {
  if (name.empty()) return "localhost";
  for (char ch : name) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x21 || c > 0x7e) return "localhost";
  }
  return std::string(name);
}

}  // namespace

std::unique_ptr<FrontPhase> makeSmtpFrontPhase(const SessionContext& ctx) {
  return std::make_unique<SmtpFrontPhase>(ctx);
}

std::unique_ptr<UpstreamLogin> makeSmtpUpstreamLogin(const SessionContext& ctx, const UpstreamContext& up) {
  return std::make_unique<SmtpUpstreamLogin>(ctx, up);
}

std::unique_ptr<RelayFilter> makeSmtpRelayFilter(const SessionContext& ctx) {
  return std::make_unique<SmtpRelayFilter>(ctx);
}

std::string smtpCloseNotice(CloseReason reason, std::string_view server_name) {
  const std::string name = safeName(server_name);
  switch (reason) {
    case CloseReason::Timeout:
      return "421 4.4.2 " + name + " Error: timeout exceeded\r\n";
    case CloseReason::Shutdown:
      return "421 4.3.2 " + name + " Service shutting down, closing transmission channel\r\n";
    case CloseReason::UpstreamLost:
    case CloseReason::UpstreamUnavailable:
    case CloseReason::UpstreamProtocol:
    case CloseReason::UpstreamTlsFailed:
      return "421 4.4.2 " + name + " Error: backend connection lost\r\n";
    case CloseReason::TooManyErrors:
      return "421 4.7.0 " + name + " Error: too many errors\r\n";
    case CloseReason::LineTooLong:
      return "421 4.7.0 " + name + " Error: line too long\r\n";
    case CloseReason::TlsRequired:
      return "421 4.7.0 " + name + " Error: TLS required, closing transmission channel\r\n";
    case CloseReason::AuthRetired:
      return "421 4.7.0 " + name + " Error: access for this client has been retired\r\n";
    case CloseReason::Killed:
      return "421 4.3.2 " + name + " Session terminated by administrator\r\n";
    case CloseReason::TooManyConnections:
      return "421 4.7.0 " + name + " Too many connections from your address, try again later\r\n";
    case CloseReason::TooManyAuthFailures:
      return "421 4.7.0 " + name + " Error: too many authentication failures\r\n";
    case CloseReason::ServerBusy:
      return "421 4.3.2 " + name + " Service busy, try again later\r\n";
    case CloseReason::LoginTimeout:
      return "421 4.4.2 " + name + " Error: login timeout exceeded\r\n";
    case CloseReason::Internal:
      return "421 4.3.0 " + name + " Error: internal error, closing transmission channel\r\n";
    case CloseReason::ClientQuit:
    case CloseReason::ClientEof:
    case CloseReason::ClientError:
    case CloseReason::MessageRefused:
    case CloseReason::TlsHandshakeFailed:
    case CloseReason::UpstreamEof:
      return {};
  }
  return {};
}

}  // namespace mailshim::proto::smtp
