// Protocol registry. See protocol_registry.h. No I/O.
#include "protocols/protocol_registry.h"

#include "protocols/common/text.h"
#include "protocols/imap/imap.h"
#include "protocols/pop3/pop3.h"
#include "protocols/smtp/smtp.h"

namespace mailshim::proto {

std::optional<Protocol> protocolFromName(std::string_view name) {
  if (iequals(name, "smtp")) return Protocol::Smtp;
  if (iequals(name, "imap")) return Protocol::Imap;
  if (iequals(name, "pop3")) return Protocol::Pop3;
  return std::nullopt;
}

std::unique_ptr<FrontPhase> makeFrontPhase(Protocol p, const SessionContext& ctx) {
  switch (p) {
    case Protocol::Smtp: return smtp::makeSmtpFrontPhase(ctx);
    case Protocol::Imap: return imap::makeImapFrontPhase(ctx);
    case Protocol::Pop3: return pop3::makePop3FrontPhase(ctx);
  }
  return nullptr;
}

std::unique_ptr<UpstreamLogin> makeUpstreamLogin(Protocol p, const SessionContext& ctx,
                                                 const UpstreamContext& up) {
  switch (p) {
    case Protocol::Smtp: return smtp::makeSmtpUpstreamLogin(ctx, up);
    case Protocol::Imap: return imap::makeImapUpstreamLogin(ctx, up);
    case Protocol::Pop3: return pop3::makePop3UpstreamLogin(ctx, up);
  }
  return nullptr;
}

std::unique_ptr<RelayFilter> makeRelayFilter(Protocol p, const SessionContext& ctx) {
  switch (p) {
    case Protocol::Smtp: return smtp::makeSmtpRelayFilter(ctx);
    case Protocol::Imap: return imap::makeImapRelayFilter(ctx);
    case Protocol::Pop3: return pop3::makePop3RelayFilter(ctx);
  }
  return nullptr;
}

std::string closeNotice(Protocol p, CloseReason reason, std::string_view server_name) {
  switch (p) {
    case Protocol::Smtp: return smtp::smtpCloseNotice(reason, server_name);
    case Protocol::Imap: return imap::imapCloseNotice(reason, server_name);
    case Protocol::Pop3: return pop3::pop3CloseNotice(reason, server_name);
  }
  return {};
}

}  // namespace mailshim::proto
