// Facade of the POP3 protocol for the protocol registry: factories for the
// front phase, the upstream login and the relay filter, and the protocol's
// close notices. No I/O. Standard library only.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "protocols/common/phase.h"

namespace mailshim::proto::pop3 {

std::unique_ptr<FrontPhase> makePop3FrontPhase(const SessionContext& ctx);
std::unique_ptr<UpstreamLogin> makePop3UpstreamLogin(const SessionContext& ctx, const UpstreamContext& up);
// nullptr when the relay is opaque for this protocol.
std::unique_ptr<RelayFilter> makePop3RelayFilter(const SessionContext& ctx);
// See proto::closeNotice().
std::string pop3CloseNotice(CloseReason reason, std::string_view server_name);

}  // namespace mailshim::proto::pop3
