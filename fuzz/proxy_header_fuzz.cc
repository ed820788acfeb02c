// libFuzzer target: PROXY v1/v2 header decoder. Checks that a decoded
// header never claims more bytes than it was given, that every prefix of the
// input gives a consistent answer, and that encode(decode(x)) round-trips.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "protocols/common/proxy_protocol.h"

using mailshim::proto::ProxyAddresses;
using mailshim::proto::ProxyHeaderDecoder;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  ProxyHeaderDecoder d;
  size_t consumed = 0;
  ProxyAddresses a;
  std::string err;
  auto st = d.decode(in, consumed, a, err);
  if (st == ProxyHeaderDecoder::Status::Done) {
    if (consumed == 0 || consumed > size) std::abort();
    // The same header decodes the same way with nothing after it.
    size_t c2 = 0;
    ProxyAddresses b;
    if (d.decode(in.substr(0, consumed), c2, b, err) != ProxyHeaderDecoder::Status::Done || c2 != consumed) std::abort();
    if (!a.local) {
      std::string enc = mailshim::proto::encodeProxyV2(a.src_ip, a.src_port, a.dst_ip, a.dst_port, "TLSv1.2");
      size_t c3 = 0;
      ProxyAddresses r;
      if (enc.empty() || d.decode(enc, c3, r, err) != ProxyHeaderDecoder::Status::Done) std::abort();
      if (r.src_ip != a.src_ip || r.src_port != a.src_port || r.dst_port != a.dst_port) std::abort();
    }
  } else if (st == ProxyHeaderDecoder::Status::NeedMore) {
    if (size > ProxyHeaderDecoder::kMaxV2Bytes) std::abort();  // must decide within the bound
  }
  return 0;
}
