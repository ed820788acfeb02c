// Facade of the IMAP protocol for the protocol registry: factories for the
// front phase, the upstream login and the relay filter, and the protocol's
// close notices. No I/O. Standard library only.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "protocols/common/phase.h"

namespace mailshim::proto::imap {

std::unique_ptr<FrontPhase> makeImapFrontPhase(const SessionContext& ctx);
std::unique_ptr<UpstreamLogin> makeImapUpstreamLogin(const SessionContext& ctx, const UpstreamContext& up);
// nullptr when the relay is opaque for this protocol.
std::unique_ptr<RelayFilter> makeImapRelayFilter(const SessionContext& ctx);
// See proto::closeNotice().
std::string imapCloseNotice(CloseReason reason, std::string_view server_name);

}  // namespace mailshim::proto::imap
