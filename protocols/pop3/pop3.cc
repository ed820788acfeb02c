// POP3 facade for the protocol registry: factories for the front phase and
// the upstream login, the (absent) relay filter, and the -ERR lines the shell
// sends when it closes a session itself (RFC 1939, RFC 3206 response codes).
// No I/O.
#include "protocols/pop3/pop3.h"

#include "protocols/pop3/pop3_front_phase.h"
#include "protocols/pop3/pop3_upstream_login.h"

namespace mailshim::proto::pop3 {

std::unique_ptr<FrontPhase> makePop3FrontPhase(const SessionContext& ctx) {
  return std::make_unique<Pop3FrontPhase>(ctx);
}

std::unique_ptr<UpstreamLogin> makePop3UpstreamLogin(const SessionContext& ctx, const UpstreamContext& up) {
  return std::make_unique<Pop3UpstreamLogin>(ctx, up);
}

// The POP3 relay splices bytes untouched.
std::unique_ptr<RelayFilter> makePop3RelayFilter(const SessionContext&) { return nullptr; }

std::string pop3CloseNotice(CloseReason reason, std::string_view /*server_name*/) {
  switch (reason) {
    case CloseReason::Timeout:
      return "-ERR Disconnected for inactivity.\r\n";
    case CloseReason::Shutdown:
      return "-ERR Server shutting down.\r\n";
    case CloseReason::TooManyErrors:
      return "-ERR Too many invalid commands.\r\n";
    case CloseReason::LineTooLong:
      return "-ERR Command too long.\r\n";
    case CloseReason::UpstreamUnavailable:
    case CloseReason::UpstreamTlsFailed:
    case CloseReason::UpstreamProtocol:
    case CloseReason::UpstreamLost:
      return "-ERR [SYS/TEMP] Backend connection lost.\r\n";
    case CloseReason::AuthRetired:
      return "-ERR [SYS/PERM] This client setup is no longer supported.\r\n";
    case CloseReason::Killed:
      return "-ERR Connection closed by the administrator.\r\n";
    case CloseReason::TooManyConnections:
      return "-ERR [SYS/TEMP] Too many connections from your address.\r\n";
    case CloseReason::TooManyAuthFailures:
      return "-ERR [AUTH] Too many authentication failures.\r\n";
    case CloseReason::ServerBusy:
      return "-ERR [SYS/TEMP] Server busy, try again later.\r\n";
    case CloseReason::LoginTimeout:
      return "-ERR Disconnected: no login within the time allowed.\r\n";
    case CloseReason::Internal:
      return "-ERR [SYS/TEMP] Internal error.\r\n";
    case CloseReason::ClientQuit:
    case CloseReason::ClientEof:
    case CloseReason::ClientError:
    case CloseReason::MessageRefused:
    case CloseReason::TlsHandshakeFailed:
    case CloseReason::TlsRequired:
    case CloseReason::UpstreamEof:
      return {};
  }
  return {};
}

}  // namespace mailshim::proto::pop3
