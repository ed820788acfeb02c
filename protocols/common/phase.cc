// Names for the shared phase vocabulary. See phase.h. No I/O.
#include "protocols/common/phase.h"

namespace mailshim::proto {

std::string_view protocolName(Protocol p) {
  switch (p) {
    case Protocol::Smtp: return "smtp";
    case Protocol::Imap: return "imap";
    case Protocol::Pop3: return "pop3";
  }
  return "?";
}

std::string_view closeReasonName(CloseReason r) {
  switch (r) {
    case CloseReason::ClientQuit: return "client_quit";
    case CloseReason::ClientEof: return "client_eof";
    case CloseReason::ClientError: return "client_error";
    case CloseReason::TooManyErrors: return "too_many_errors";
    case CloseReason::LineTooLong: return "line_too_long";
    case CloseReason::Timeout: return "timeout";
    case CloseReason::TlsHandshakeFailed: return "tls_handshake_failed";
    case CloseReason::TlsRequired: return "tls_required";
    case CloseReason::UpstreamUnavailable: return "upstream_unavailable";
    case CloseReason::UpstreamTlsFailed: return "upstream_tls_failed";
    case CloseReason::UpstreamProtocol: return "upstream_protocol";
    case CloseReason::UpstreamLost: return "upstream_lost";
    case CloseReason::UpstreamEof: return "upstream_eof";
    case CloseReason::AuthRetired: return "auth_retired";
    case CloseReason::Shutdown: return "shutdown";
    case CloseReason::Killed: return "killed";
    case CloseReason::MessageRefused: return "message_refused";
    case CloseReason::TooManyConnections: return "too_many_connections";
    case CloseReason::TooManyAuthFailures: return "too_many_auth_failures";
    case CloseReason::LoginTimeout: return "login_timeout";
    case CloseReason::ServerBusy: return "server_busy";
    case CloseReason::Internal: return "internal";
  }
  return "?";
}

std::string_view authMethodName(AuthMethod m) {
  switch (m) {
    case AuthMethod::Plain: return "PLAIN";
    case AuthMethod::Login: return "LOGIN";
    case AuthMethod::ImapLogin: return "LOGIN-CMD";
    case AuthMethod::Pop3User: return "USER";
  }
  return "?";
}

}  // namespace mailshim::proto
