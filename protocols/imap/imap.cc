// IMAP facade for the protocol registry: factories for the front phase and
// the upstream login, the (absent) relay filter, and the untagged BYE lines
// the shell sends when it closes a session itself (RFC 9051 section 7.1.5).
// No I/O.
#include "protocols/imap/imap.h"

#include "protocols/imap/imap_front_phase.h"
#include "protocols/imap/imap_upstream_login.h"

namespace mailshim::proto::imap {

std::unique_ptr<FrontPhase> makeImapFrontPhase(const SessionContext& ctx) {
  return std::make_unique<ImapFrontPhase>(ctx);
}

std::unique_ptr<UpstreamLogin> makeImapUpstreamLogin(const SessionContext& ctx, const UpstreamContext& up) {
  return std::make_unique<ImapUpstreamLogin>(ctx, up);
}

// The IMAP relay splices bytes untouched.
std::unique_ptr<RelayFilter> makeImapRelayFilter(const SessionContext&) { return nullptr; }

std::string imapCloseNotice(CloseReason reason, std::string_view /*server_name*/) {
  switch (reason) {
    case CloseReason::Timeout:
      return "* BYE Disconnected for inactivity.\r\n";
    case CloseReason::Shutdown:
      return "* BYE Server shutting down.\r\n";
    case CloseReason::TooManyErrors:
      return "* BYE Too many invalid commands.\r\n";
    case CloseReason::LineTooLong:
      return "* BYE Command too long.\r\n";
    case CloseReason::UpstreamUnavailable:
    case CloseReason::UpstreamTlsFailed:
    case CloseReason::UpstreamProtocol:
    case CloseReason::UpstreamLost:
      return "* BYE [UNAVAILABLE] Backend connection lost.\r\n";
    case CloseReason::AuthRetired:
      return "* BYE [UNAVAILABLE] This client setup is no longer supported.\r\n";
    case CloseReason::Killed:
      return "* BYE Connection closed by the administrator.\r\n";
    case CloseReason::TooManyConnections:
      return "* BYE [UNAVAILABLE] Too many connections from your address.\r\n";
    case CloseReason::TooManyAuthFailures:
      return "* BYE Too many authentication failures.\r\n";
    case CloseReason::ServerBusy:
      return "* BYE [UNAVAILABLE] Server busy, try again later.\r\n";
    case CloseReason::LoginTimeout:
      return "* BYE Disconnected: no login within the time allowed.\r\n";
    case CloseReason::Internal:
      return "* BYE [SERVERBUG] Internal error.\r\n";
    // The client left, its TLS failed, it spoke plaintext on a TLS port, or
    // the backend already said BYE after the relay: nothing to say.
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

}  // namespace mailshim::proto::imap
