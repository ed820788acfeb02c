// PROXY protocol (HAProxy's spec, versions 1 and 2): decoding the header a
// trusted load balancer puts in front of a client connection, and encoding a
// v2 header toward a backend (Postfix smtpd_upstream_proxy_protocol = haproxy,
// Dovecot haproxy_trusted_networks), with the SSL TLV when the client leg was
// TLS so Dovecot counts the session as secured.
//
// The decoder is incremental: feed it the connection's first bytes; it needs
// at most 107 bytes (v1) or 16 + length bytes (v2), never more, and never
// consumes bytes past the header.
//
// No I/O. Standard library only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mailshim::proto {

struct ProxyAddresses {
  bool local = false;  // v2 LOCAL / v1 UNKNOWN: keep the socket's own addresses
  bool v6 = false;
  std::string src_ip, dst_ip;
  uint16_t src_port = 0, dst_port = 0;
};

class ProxyHeaderDecoder {
 public:
  static constexpr size_t kMaxV2Bytes = 16 + 1024;  // we accept TLVs, within reason

  enum class Status { NeedMore, Done, Error };

  // Looks at the bytes received so far (the decoder keeps no copy). On Done,
  // `consumed` is the header length and `out` the addresses. On Error,
  // `error` says why ("not a PROXY header", "bad v1 line", ...).
  Status decode(std::string_view data, size_t& consumed, ProxyAddresses& out, std::string& error) const;

  // True if `data` could be the beginning of a PROXY header (v1 "PROXY " or
  // the v2 signature), used to reject headers from untrusted clients.
  static bool looksLikeHeader(std::string_view data);
};

// A v2 PROXY header (PROXY command, TCP over IPv4/IPv6). When `tls_version`
// is non-empty, adds PP2_TYPE_SSL with PP2_CLIENT_SSL and the
// PP2_SUBTYPE_SSL_VERSION sub-TLV. Returns "" if an address does not parse.
std::string encodeProxyV2(const std::string& src_ip, uint16_t src_port, const std::string& dst_ip,
                          uint16_t dst_port, const std::string& tls_version);

}  // namespace mailshim::proto
