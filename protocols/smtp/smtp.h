// Facade of the SMTP protocol for the protocol registry: factories for the
// front phase, the upstream login and the relay filter, and the protocol's
// close notices. No I/O. Standard library only.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "protocols/common/phase.h"

namespace mailshim::proto::smtp {

std::unique_ptr<FrontPhase> makeSmtpFrontPhase(const SessionContext& ctx);
std::unique_ptr<UpstreamLogin> makeSmtpUpstreamLogin(const SessionContext& ctx, const UpstreamContext& up);
// nullptr when the relay is opaque for this protocol.
std::unique_ptr<RelayFilter> makeSmtpRelayFilter(const SessionContext& ctx);
// See proto::closeNotice().
std::string smtpCloseNotice(CloseReason reason, std::string_view server_name);

}  // namespace mailshim::proto::smtp
