// libFuzzer target for the client fingerprint heuristics. The input is split
// at NUL bytes into the fields of a FingerprintInput (HELO, X-Mailer,
// User-Agent, TLS version, IMAP ID key/value pairs); the first byte sets the
// protocol and the flags. Checks the documented contract: never empty, at
// most 80 bytes, printable ASCII only (it goes into logs, TSV reports and
// rule globs), and deterministic. No I/O.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/common/fingerprint.h"

using namespace mailshim::proto;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t cfg = data[0];
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<std::string> parts;
  for (size_t pos = 0;;) {
    size_t nul = in.find('\0', pos);
    parts.emplace_back(in.substr(pos, nul == std::string_view::npos ? std::string_view::npos : nul - pos));
    if (nul == std::string_view::npos) break;
    pos = nul + 1;
  }
  auto part = [&](size_t i) { return i < parts.size() ? parts[i] : std::string(); };

  static const char* const kProtocols[] = {"smtp", "imap", "pop3", ""};
  static const char* const kTls[] = {"", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"};
  FingerprintInput fi;
  fi.protocol = kProtocols[cfg & 3];
  fi.helo_only = cfg & 4;
  fi.tls_before_greeting = cfg & 8;
  fi.tls_max_offered = (cfg & 0x80) ? part(3) : kTls[(cfg >> 4) % 5];
  fi.helo = part(0);
  if (cfg & 0x40)
    fi.user_agent = part(1);
  else
    fi.x_mailer = part(1);
  fi.user_agent += part(2);
  for (size_t i = 4; i + 1 < parts.size(); i += 2) fi.id[parts[i]] = parts[i + 1];

  std::string fp = fingerprint(fi);
  check(!fp.empty() && fp.size() <= 80);
  for (char c : fp) check(c >= 0x20 && c < 0x7f);
  check(fingerprint(fi) == fp);
  return 0;
}
