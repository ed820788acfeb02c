// CIDR matching. See cidr.h. No I/O.
#include "conf/cidr.h"

#include <arpa/inet.h>

#include <cctype>
#include <charconv>
#include <cstring>

namespace mailshim::conf {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  // inet_pton reads a C string: refuse embedded NULs and anything that is not
  // an address character, so "1.2.3.4\0junk" cannot pass as 1.2.3.4.
  for (char c : text)
    if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == '.' || c == ':')) return std::nullopt;
  std::string s(text);
  IpAddress a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) return a;
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) return fromV6(a.bytes.data());
  return std::nullopt;
}

IpAddress IpAddress::fromV4(const uint8_t* four) {
  IpAddress a;
  std::memcpy(a.bytes.data(), four, 4);
  return a;
}

IpAddress IpAddress::fromV6(const uint8_t* sixteen) {
  // Normalise IPv4-mapped IPv6 to IPv4 so v4 rules match dual-stack sockets.
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(sixteen, kMapped, 12) == 0) return fromV4(sixteen + 12);
  IpAddress a;
  a.v6 = true;
  std::memcpy(a.bytes.data(), sixteen, 16);
  return a;
}

std::string IpAddress::toString() const {
  if (v6) {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
    return buf;
  }
  // glibc's inet_ntop formats IPv4 with sprintf; this runs several times per
  // session (log fields, XCLIENT/ID, the per-address limits).
  char buf[16];
  char* p = buf;
  for (int i = 0; i < 4; ++i) {
    unsigned v = bytes[i];
    if (i) *p++ = '.';
    if (v >= 100) *p++ = static_cast<char>('0' + v / 100);
    if (v >= 10) *p++ = static_cast<char>('0' + v / 10 % 10);
    *p++ = static_cast<char>('0' + v % 10);
  }
  return std::string(buf, p);
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  Cidr c;
  auto slash = text.find('/');
  auto addr = IpAddress::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  c.base = *addr;
  unsigned max = c.base.v6 ? 128 : 32;
  if (slash == std::string_view::npos) {
    c.prefix = static_cast<uint8_t>(max);
  } else {
    auto p = text.substr(slash + 1);
    unsigned v = 0;
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (ec != std::errc() || ptr != p.data() + p.size() || p.empty() || v > max) return std::nullopt;
    c.prefix = static_cast<uint8_t>(v);
  }
  // Host bits must be zero: "10.0.0.1/8" is almost always a typo.
  for (unsigned bit = c.prefix; bit < max; ++bit)
    if (c.base.bytes[bit / 8] & (0x80 >> (bit % 8))) return std::nullopt;
  return c;
}

bool Cidr::contains(const IpAddress& addr) const {
  if (addr.v6 != base.v6) return false;
  unsigned full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(addr.bytes.data(), base.bytes.data(), full) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (addr.bytes[full] & mask) == (base.bytes[full] & mask);
}

std::string Cidr::toString() const { return base.toString() + "/" + std::to_string(prefix); }

}  // namespace mailshim::conf
