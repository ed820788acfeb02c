// Placeholder until the SMTP phases land. Replaced by the real implementation.
#include "protocols/smtp/smtp.h"

namespace mailshim::proto::smtp {

std::unique_ptr<FrontPhase> makeSmtpFrontPhase(const SessionContext&) { return nullptr; }
std::unique_ptr<UpstreamLogin> makeSmtpUpstreamLogin(const SessionContext&, const UpstreamContext&) {
  return nullptr;
}
std::unique_ptr<RelayFilter> makeSmtpRelayFilter(const SessionContext&) { return nullptr; }
std::string smtpCloseNotice(CloseReason, std::string_view) { return {}; }

}  // namespace mailshim::proto::smtp
