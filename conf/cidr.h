// IPv4/IPv6 addresses and CIDR networks for rule matching. An IPv4-mapped
// IPv6 address (::ffff:a.b.c.d) matches IPv4 networks.
//
// No I/O. Standard library + POSIX inet_pton/inet_ntop.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailshim::conf {

struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // v4 uses the first 4

  static std::optional<IpAddress> parse(std::string_view text);
  // From the 4 or 16 bytes of a socket address (network order); an
  // IPv4-mapped IPv6 address becomes IPv4, as in parse().
  static IpAddress fromV4(const uint8_t* four);
  static IpAddress fromV6(const uint8_t* sixteen);
  // Dotted quad for IPv4, RFC 5952 form (inet_ntop) for IPv6.
  std::string toString() const;
};

struct Cidr {
  IpAddress base;
  uint8_t prefix = 0;

  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const IpAddress& addr) const;
  std::string toString() const;
};

}  // namespace mailshim::conf
