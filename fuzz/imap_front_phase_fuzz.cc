// libFuzzer target for ImapFrontPhase: the input is a script of events
// (client bytes, TLS up, login verdicts, timeouts) interleaved as its bytes
// choose, under a context chosen by its first byte. Checks the security
// invariants on every step: no credentials leave a plaintext session without
// the quirk, nothing is written between StartTlsDownstream and the handshake,
// never PREAUTH, at most one SendDownstream per event, nothing after Close.
// No I/O.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocols/imap/imap_front_phase.h"

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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Script s{data, size};
  const uint8_t cfg = s.byte();
  SessionContext ctx;
  ctx.session_id = "F1";
  ctx.server_name = "fuzz.example";
  ctx.client_tls = cfg & 1;
  ctx.starttls_available = cfg & 2;
  if (cfg & 4) ctx.quirks.add(Quirk::PlaintextAuth);
  ctx.max_line_bytes = 64 + (cfg >> 3) * 32;
  ctx.max_errors = 3 + (cfg >> 5);
  imap::ImapFrontPhase phase(ctx);

  bool tls = ctx.client_tls;
  bool tls_pending = false;
  bool closed = false;
  bool login_pending = false;
  auto apply = [&](Actions&& acts) {
    int sends = 0;
    for (auto& a : acts) {
      check(!closed);
      if (auto* d = std::get_if<SendDownstream>(&a)) {
        check(!tls_pending);
        // Tags echo client bytes, so look for the response at a line start only.
        check(d->bytes.rfind("* PREAUTH", 0) != 0 && d->bytes.find("\n* PREAUTH") == std::string::npos);
        check(d->bytes.size() >= 2 && d->bytes.substr(d->bytes.size() - 2) == "\r\n");
        ++sends;
      } else if (std::holds_alternative<StartTlsDownstream>(a)) {
        check(!tls && !tls_pending);
        tls_pending = true;
      } else if (std::holds_alternative<Authenticate>(a)) {
        check(tls || ctx.quirks.has(Quirk::PlaintextAuth));
        check(!login_pending);
        login_pending = true;
      } else if (std::holds_alternative<EnterRelay>(a)) {
        closed = true;  // the phase is done
      } else if (std::holds_alternative<Close>(a)) {
        closed = true;
      }
    }
    check(sends <= 1);
  };

  apply(phase.start());
  while (s.n > 0 && !closed) {
    const uint8_t op = s.byte();
    switch (op % 8) {
      case 0:
      case 1:
      case 2:
      case 3:
      case 4:
        apply(phase.onDownstreamData(s.bytes(1 + (op >> 3))));
        break;
      case 5:
        if (tls_pending) {
          tls_pending = false;
          tls = true;
          apply(phase.onDownstreamTls());
        } else {
          check(phase.onDownstreamTls().empty());
        }
        break;
      case 6: {
        LoginResult r;
        r.kind = static_cast<LoginResult::Kind>(s.byte() % 3);
        r.text = std::string(s.bytes(s.byte() % 64));
        r.preface = std::string(s.bytes(s.byte() % 8));
        r.leftover = std::string(s.bytes(s.byte() % 8));
        bool was_pending = login_pending;
        login_pending = false;
        Actions acts = phase.onLoginResult(r);
        if (!was_pending) {
          for (auto& a : acts) check(std::holds_alternative<LogNote>(a));
        }
        apply(std::move(acts));
        break;
      }
      case 7:
        apply(phase.onTimeout());
        break;
    }
  }
  return 0;
}
