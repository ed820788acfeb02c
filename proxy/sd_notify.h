// Minimal sd_notify(3): sends "READY=1", "RELOADING=1", "STOPPING=1",
// "STATUS=..." datagrams to $NOTIFY_SOCKET (path or abstract "@name") so
// mailshim runs as a Type=notify service without linking libsystemd.
//
// I/O: one datagram per call; silently does nothing when NOTIFY_SOCKET is unset.
#pragma once

#include <string_view>

namespace mailshim::proxy {

// Returns true when the message was sent (false: no NOTIFY_SOCKET or error).
bool sdNotify(std::string_view message);

}  // namespace mailshim::proxy
