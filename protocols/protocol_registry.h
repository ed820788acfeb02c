// Protocol registry: the one place that maps a Protocol to its phases. Adding
// a protocol means adding rows here, not editing the shell.
//
// No I/O. Standard library only.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "protocols/common/phase.h"

namespace mailshim::proto {

std::optional<Protocol> protocolFromName(std::string_view name);

std::unique_ptr<FrontPhase> makeFrontPhase(Protocol p, const SessionContext& ctx);
std::unique_ptr<UpstreamLogin> makeUpstreamLogin(Protocol p, const SessionContext& ctx,
                                                 const UpstreamContext& up);
// nullptr when the protocol's relay is opaque.
std::unique_ptr<RelayFilter> makeRelayFilter(Protocol p, const SessionContext& ctx);

// The line the shell sends to the client when it closes the session itself
// for `reason` (timeout, shutdown, backend lost, ...), in the protocol's words:
// "421 4.4.2 <name> Error: timeout exceeded", "* BYE [UNAVAILABLE] ...",
// "-ERR [SYS/TEMP] ...". Empty when nothing should be sent (client EOF, QUIT).
std::string closeNotice(Protocol p, CloseReason reason, std::string_view server_name);

}  // namespace mailshim::proto
