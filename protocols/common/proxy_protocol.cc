// PROXY protocol v1/v2. See proxy_protocol.h. No I/O.
#include "protocols/common/proxy_protocol.h"

#include <arpa/inet.h>

#include <array>
#include <cctype>
#include <cstring>

namespace mailshim::proto {
namespace {

constexpr unsigned char kV2Sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr size_t kV1Max = 107;  // including CRLF

bool parsePort(std::string_view s, uint16_t& out) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > 65535) return false;
  out = static_cast<uint16_t>(v);
  return true;
}

bool validIp(const std::string& s, bool v6) {
  // inet_pton reads a C string: an embedded NUL would hide trailing bytes
  // ("128.0.0.9\0junk" would pass), so only address characters are allowed.
  if (s.empty() || s.size() > 45) return false;
  for (char c : s)
    if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == '.' || c == ':')) return false;
  unsigned char buf[16];
  return inet_pton(v6 ? AF_INET6 : AF_INET, s.c_str(), buf) == 1;
}

std::string ipText(const unsigned char* p, bool v6) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, p, buf, sizeof buf);
  return buf;
}

ProxyHeaderDecoder::Status decodeV1(std::string_view data, size_t& consumed, ProxyAddresses& out,
                                    std::string& error) {
  size_t lf = data.find('\n');
  if (lf == std::string_view::npos) {
    if (data.size() >= kV1Max) {
      error = "PROXY v1 line too long";
      return ProxyHeaderDecoder::Status::Error;
    }
    return ProxyHeaderDecoder::Status::NeedMore;
  }
  if (lf + 1 > kV1Max || lf == 0 || data[lf - 1] != '\r') {
    error = "bad PROXY v1 line ending";
    return ProxyHeaderDecoder::Status::Error;
  }
  std::string_view line = data.substr(0, lf - 1);
  // PROXY TCP4 src dst sport dport | PROXY UNKNOWN ...
  std::string_view parts[6];
  size_t n = 0, pos = 0;
  while (n < 6 && pos <= line.size()) {
    size_t sp = line.find(' ', pos);
    parts[n++] = line.substr(pos, sp == std::string_view::npos ? std::string_view::npos : sp - pos);
    if (sp == std::string_view::npos) {
      pos = line.size() + 1;
      break;
    }
    pos = sp + 1;
  }
  if (n >= 2 && parts[0] == "PROXY" && parts[1] == "UNKNOWN") {
    out = ProxyAddresses{};
    out.local = true;
    consumed = lf + 1;
    return ProxyHeaderDecoder::Status::Done;
  }
  if (n != 6 || pos <= line.size() || parts[0] != "PROXY" || (parts[1] != "TCP4" && parts[1] != "TCP6")) {
    error = "bad PROXY v1 line";
    return ProxyHeaderDecoder::Status::Error;
  }
  ProxyAddresses a;
  a.v6 = parts[1] == "TCP6";
  a.src_ip = std::string(parts[2]);
  a.dst_ip = std::string(parts[3]);
  if (!validIp(a.src_ip, a.v6) || !validIp(a.dst_ip, a.v6) || !parsePort(parts[4], a.src_port) ||
      !parsePort(parts[5], a.dst_port)) {
    error = "bad address or port in PROXY v1 line";
    return ProxyHeaderDecoder::Status::Error;
  }
  out = std::move(a);
  consumed = lf + 1;
  return ProxyHeaderDecoder::Status::Done;
}

ProxyHeaderDecoder::Status decodeV2(std::string_view data, size_t& consumed, ProxyAddresses& out,
                                    std::string& error) {
  if (data.size() < 16) return ProxyHeaderDecoder::Status::NeedMore;
  auto b = reinterpret_cast<const unsigned char*>(data.data());
  unsigned ver = b[12] >> 4, cmd = b[12] & 0x0f;
  size_t len = (static_cast<size_t>(b[14]) << 8) | b[15];
  if (ver != 2 || cmd > 1) {
    error = "bad PROXY v2 version/command";
    return ProxyHeaderDecoder::Status::Error;
  }
  if (16 + len > ProxyHeaderDecoder::kMaxV2Bytes) {
    error = "PROXY v2 header too long";
    return ProxyHeaderDecoder::Status::Error;
  }
  if (data.size() < 16 + len) return ProxyHeaderDecoder::Status::NeedMore;
  ProxyAddresses a;
  if (cmd == 0) {  // LOCAL: health check from the balancer itself
    a.local = true;
  } else {
    unsigned fam = b[13] >> 4, proto = b[13] & 0x0f;
    if (proto != 1) {
      error = "PROXY v2: only TCP (STREAM) is supported";
      return ProxyHeaderDecoder::Status::Error;
    }
    const unsigned char* p = b + 16;
    if (fam == 1) {
      if (len < 12) {
        error = "PROXY v2: short IPv4 block";
        return ProxyHeaderDecoder::Status::Error;
      }
      a.src_ip = ipText(p, false);
      a.dst_ip = ipText(p + 4, false);
      a.src_port = static_cast<uint16_t>((p[8] << 8) | p[9]);
      a.dst_port = static_cast<uint16_t>((p[10] << 8) | p[11]);
    } else if (fam == 2) {
      if (len < 36) {
        error = "PROXY v2: short IPv6 block";
        return ProxyHeaderDecoder::Status::Error;
      }
      a.v6 = true;
      a.src_ip = ipText(p, true);
      a.dst_ip = ipText(p + 16, true);
      a.src_port = static_cast<uint16_t>((p[32] << 8) | p[33]);
      a.dst_port = static_cast<uint16_t>((p[34] << 8) | p[35]);
    } else if (fam == 0) {
      a.local = true;  // AF_UNSPEC: addresses unknown
    } else {
      error = "PROXY v2: unsupported address family";
      return ProxyHeaderDecoder::Status::Error;
    }
  }
  out = std::move(a);
  consumed = 16 + len;  // TLVs (if any) are skipped
  return ProxyHeaderDecoder::Status::Done;
}

}  // namespace

bool ProxyHeaderDecoder::looksLikeHeader(std::string_view data) {
  size_t n = data.size() < 12 ? data.size() : 12;
  if (n > 0 && std::memcmp(data.data(), kV2Sig, n) == 0) return true;
  std::string_view v1 = "PROXY ";
  size_t m = data.size() < v1.size() ? data.size() : v1.size();
  return m > 0 && data.substr(0, m) == v1.substr(0, m);
}

ProxyHeaderDecoder::Status ProxyHeaderDecoder::decode(std::string_view data, size_t& consumed, ProxyAddresses& out,
                                                      std::string& error) const {
  consumed = 0;
  if (data.empty()) return Status::NeedMore;
  if (static_cast<unsigned char>(data[0]) == kV2Sig[0]) {
    size_t n = data.size() < 12 ? data.size() : 12;
    if (std::memcmp(data.data(), kV2Sig, n) != 0) {
      error = "not a PROXY header";
      return Status::Error;
    }
    return decodeV2(data, consumed, out, error);
  }
  std::string_view v1 = "PROXY ";
  size_t m = data.size() < v1.size() ? data.size() : v1.size();
  if (data.substr(0, m) != v1.substr(0, m)) {
    error = "not a PROXY header";
    return Status::Error;
  }
  if (data.size() < v1.size()) return Status::NeedMore;
  return decodeV1(data, consumed, out, error);
}

std::string encodeProxyV2(const std::string& src_ip, uint16_t src_port, const std::string& dst_ip,
                          uint16_t dst_port, const std::string& tls_version) {
  unsigned char s[16], d[16];
  bool v6;
  if (inet_pton(AF_INET, src_ip.c_str(), s) == 1 && inet_pton(AF_INET, dst_ip.c_str(), d) == 1) {
    v6 = false;
  } else if (inet_pton(AF_INET6, src_ip.c_str(), s) == 1 && inet_pton(AF_INET6, dst_ip.c_str(), d) == 1) {
    v6 = true;
  } else {
    return {};
  }
  std::string body;
  size_t alen = v6 ? 16 : 4;
  body.append(reinterpret_cast<const char*>(s), alen);
  body.append(reinterpret_cast<const char*>(d), alen);
  body += static_cast<char>(src_port >> 8);
  body += static_cast<char>(src_port & 0xff);
  body += static_cast<char>(dst_port >> 8);
  body += static_cast<char>(dst_port & 0xff);
  if (!tls_version.empty() && tls_version.size() < 64) {
    // PP2_TYPE_SSL: client flags (PP2_CLIENT_SSL), verify (0 = verified / no
    // client cert asked), then sub-TLVs: PP2_SUBTYPE_SSL_VERSION.
    std::string ssl;
    ssl += static_cast<char>(0x01);  // PP2_CLIENT_SSL
    ssl.append(4, '\0');             // verify
    ssl += static_cast<char>(0x21);  // PP2_SUBTYPE_SSL_VERSION
    ssl += static_cast<char>(tls_version.size() >> 8);
    ssl += static_cast<char>(tls_version.size() & 0xff);
    ssl += tls_version;
    body += static_cast<char>(0x20);  // PP2_TYPE_SSL
    body += static_cast<char>(ssl.size() >> 8);
    body += static_cast<char>(ssl.size() & 0xff);
    body += ssl;
  }
  std::string out(reinterpret_cast<const char*>(kV2Sig), 12);
  out += static_cast<char>(0x21);                 // version 2, PROXY
  out += static_cast<char>(v6 ? 0x21 : 0x11);     // INET6/INET, STREAM
  out += static_cast<char>(body.size() >> 8);
  out += static_cast<char>(body.size() & 0xff);
  out += body;
  return out;
}

}  // namespace mailshim::proto
