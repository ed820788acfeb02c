// Placeholder until the IMAP phases land. Replaced by the real implementation.
#include "protocols/imap/imap.h"

namespace mailshim::proto::imap {

std::unique_ptr<FrontPhase> makeImapFrontPhase(const SessionContext&) { return nullptr; }
std::unique_ptr<UpstreamLogin> makeImapUpstreamLogin(const SessionContext&, const UpstreamContext&) {
  return nullptr;
}
std::unique_ptr<RelayFilter> makeImapRelayFilter(const SessionContext&) { return nullptr; }
std::string imapCloseNotice(CloseReason, std::string_view) { return {}; }

}  // namespace mailshim::proto::imap
