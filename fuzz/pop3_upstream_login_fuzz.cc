// libFuzzer target for Pop3UpstreamLogin: the input plays a hostile backend
// interleaved with TLS-up events and login() calls, under an upstream mode
// chosen by its first byte. Checks: no USER/PASS/AUTH/XCLIENT before TLS on a
// STARTTLS upstream, nothing written between StartTlsUpstream and the
// handshake, LoginResult text free of control characters, one verdict per
// login() call, nothing after an Ok. No I/O.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocols/common/text.h"
#include "protocols/pop3/pop3_upstream_login.h"

using namespace mailshim::proto;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

struct Script {
  const uint8_t* p;
  size_t n;
  uint8_t byte() {
    if (!n) return 0;
    --n;
    return *p++;
  }
  std::string_view bytes(size_t k) {
    if (k > n) k = n;
    std::string_view v(reinterpret_cast<const char*>(p), k);
    p += k;
    n -= k;
    return v;
  }
};

bool cleanLine(std::string_view t) {
  for (char c : t) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Script s{data, size};
  const uint8_t cfg = s.byte();
  SessionContext ctx;
  ctx.session_id = "F1";
  ctx.client_ip = "192.0.2.1";
  ctx.client_port = 1234;
  UpstreamContext up;
  up.tls = static_cast<UpstreamTls>(cfg % 3);
  up.client_address = (cfg & 4) ? ClientAddressMode::Xclient : ClientAddressMode::None;
  up.max_line_bytes = 64 + (cfg >> 3) * 64;
  pop3::Pop3UpstreamLogin login(ctx, up);

  bool tls = up.tls == UpstreamTls::Implicit;
  bool tls_pending = false;
  bool done = false;
  int outstanding = 0;
  auto apply = [&](Actions&& acts) {
    for (auto& a : acts) {
      check(!done);
      if (auto* u = std::get_if<SendUpstream>(&a)) {
        check(!tls_pending);
        if (up.tls == UpstreamTls::Starttls && !tls) check(u->bytes == "CAPA\r\n" || u->bytes == "STLS\r\n");
      } else if (std::holds_alternative<StartTlsUpstream>(a)) {
        check(up.tls == UpstreamTls::Starttls && !tls && !tls_pending);
        tls_pending = true;
      } else if (auto* d = std::get_if<LoginDone>(&a)) {
        check(outstanding == 1);
        --outstanding;
        check(cleanLine(d->result.text) && isLineSafe(d->result.code));
        if (d->result.kind == LoginResult::Kind::Ok) done = true;
      }
    }
  };

  apply(login.onConnected());
  while (s.n > 0 && !done) {
    const uint8_t op = s.byte();
    switch (op % 8) {
      case 0:
      case 1:
      case 2:
      case 3:
      case 4:
        apply(login.onUpstreamData(s.bytes(1 + (op >> 2))));
        break;
      case 5:
        if (tls_pending) {
          tls_pending = false;
          tls = true;
        }
        apply(login.onUpstreamTls());
        break;
      case 6:
      case 7:
        if (outstanding == 0) {
          Authenticate a;
          a.creds.user = "bob";
          a.creds.password = Secret(std::string(s.bytes(s.byte() % 8)));
          ++outstanding;
          apply(login.login(std::move(a)));
        }
        break;
    }
  }
  return 0;
}
