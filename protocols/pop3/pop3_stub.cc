// Placeholder until the POP3 phases land. Replaced by the real implementation.
#include "protocols/pop3/pop3.h"

namespace mailshim::proto::pop3 {

std::unique_ptr<FrontPhase> makePop3FrontPhase(const SessionContext&) { return nullptr; }
std::unique_ptr<UpstreamLogin> makePop3UpstreamLogin(const SessionContext&, const UpstreamContext&) {
  return nullptr;
}
std::unique_ptr<RelayFilter> makePop3RelayFilter(const SessionContext&) { return nullptr; }
std::string pop3CloseNotice(CloseReason, std::string_view) { return {}; }

}  // namespace mailshim::proto::pop3
