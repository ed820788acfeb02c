// Socket address helpers shared by the listener and session code.
//
// No I/O (pure conversions).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace mailshim::proxy {

// "127.0.0.1"/"::1" + port -> sockaddr. False if `ip` is not an address.
bool makeSockaddr(const std::string& ip, uint16_t port, sockaddr_storage& ss, socklen_t& len);
// sockaddr -> textual address (IPv4-mapped IPv6 shown as IPv4) and port.
bool sockaddrToText(const sockaddr* sa, std::string& ip, uint16_t& port);

}  // namespace mailshim::proxy
