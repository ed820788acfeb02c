// Socket address helpers. See net.h.
#include "proxy/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "conf/cidr.h"

namespace mailshim::proxy {

bool makeSockaddr(const std::string& ip, uint16_t port, sockaddr_storage& ss, socklen_t& len) {
  std::memset(&ss, 0, sizeof ss);
  auto* in = reinterpret_cast<sockaddr_in*>(&ss);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, ip.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    len = sizeof(sockaddr_in);
    return true;
  }
  if (inet_pton(AF_INET6, ip.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

bool sockaddrToText(const sockaddr* sa, std::string& ip, uint16_t& port) {
  conf::IpAddress a;
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    a = conf::IpAddress::fromV4(reinterpret_cast<const uint8_t*>(&in->sin_addr));
    port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    a = conf::IpAddress::fromV6(reinterpret_cast<const uint8_t*>(&in6->sin6_addr));
    port = ntohs(in6->sin6_port);
  } else {
    return false;
  }
  ip = a.toString();  // IPv4-mapped IPv6 as IPv4
  return true;
}

}  // namespace mailshim::proxy
