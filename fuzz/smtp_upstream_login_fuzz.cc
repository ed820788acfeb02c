// libFuzzer target for SmtpUpstreamLogin: arbitrary backend bytes and canned
// backend replies interleaved with onConnected / onUpstreamTls / login()
// events. Checks the phase's contract: one command line per write and at most
// one write per event, nothing after StartTlsUpstream until onUpstreamTls, no
// AUTH before TLS on a STARTTLS upstream, LoginDone texts free of controls.
// No I/O beyond libFuzzer's own.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "protocols/smtp/smtp.h"

namespace {

using namespace mailshim::proto;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

const std::string_view kCanned[] = {
    "220 mx.backend.test ESMTP Postfix\r\n",
    "250-mx.backend.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 DSN\r\n",
    "220 2.0.0 Ready to start TLS\r\n",
    "250-mx.backend.test\r\n250-AUTH PLAIN LOGIN\r\n250-XCLIENT NAME ADDR PROTO HELO PORT\r\n250 DSN\r\n",
    "250-mx.backend.test\r\n250 AUTH LOGIN\r\n",
    "235 2.7.0 Authentication successful\r\n",
    "535 5.7.8 Error: authentication failed: authentication failure\r\n",
    "334 VXNlcm5hbWU6\r\n",
    "334 UGFzc3dvcmQ6\r\n",
    "334 \r\n",
    "550 5.7.0 Error: insufficient authorization\r\n",
    "454 4.7.0 Temporary authentication failure\r\n",
    "421 4.4.2 mx.backend.test Error: timeout exceeded\r\n",
    "220 Ready\r\n250-injected\r\n250 AUTH PLAIN\r\n",
};

struct Checker {
  bool starttls_mode;
  bool tls_up;
  bool handshake = false;

  void check(const Actions& acts) {
    int sends = 0;
    bool after_tls = false;
    for (const auto& a : acts) {
      if (const auto* s = std::get_if<SendUpstream>(&a)) {
        require(!after_tls && !handshake);
        require(s->bytes.size() >= 2 && s->bytes.ends_with("\r\n"));
        require(s->bytes.find('\n') == s->bytes.size() - 1);
        require(s->bytes.find('\r') == s->bytes.size() - 2);
        require(s->bytes.find('\0') == std::string::npos);
        if (s->bytes.starts_with("AUTH") || s->bytes.starts_with("XCLIENT")) require(tls_up);
        ++sends;
      } else if (std::holds_alternative<StartTlsUpstream>(a)) {
        require(starttls_mode && !tls_up && !handshake);
        handshake = true;
        after_tls = true;
      } else if (const auto* d = std::get_if<LoginDone>(&a)) {
        for (char c : d->result.text) require(c >= 0x20 && c < 0x7f);
        for (char c : d->result.code) require(c >= '0' && c <= '9');
      } else if (const auto* n = std::get_if<LogNote>(&a)) {
        for (char c : n->text) require(c != '\r' && c != '\n' && c != '\0');
      } else if (!std::holds_alternative<LogNote>(a)) {
        require(false);  // no other action belongs to an upstream login
      }
    }
    require(sends <= 1);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  SessionContext ctx;
  ctx.server_name = "mail.example.test";
  ctx.client_ip = (data[0] & 1) ? "2001:db8::1" : "192.0.2.1";
  ctx.client_port = 40000;
  UpstreamContext up;
  up.helo_name = "mailshim.example.test";
  up.tls = static_cast<UpstreamTls>((data[0] >> 1) % 3);
  up.client_address = (data[0] & 8) ? ClientAddressMode::Xclient : ClientAddressMode::None;
  up.max_line_bytes = 64 + (data[0] >> 4) * 64;
  auto phase = smtp::makeSmtpUpstreamLogin(ctx, up);
  Checker chk{up.tls == UpstreamTls::Starttls, up.tls != UpstreamTls::Starttls};

  size_t pos = 1;
  while (pos < size) {
    uint8_t op = data[pos++];
    switch (op % 8) {
      case 0:
        chk.check(phase->onConnected());
        break;
      case 1: {
        Actions a = phase->onUpstreamTls();
        if (chk.handshake) {
          chk.handshake = false;
          chk.tls_up = true;
        }
        chk.check(a);
        break;
      }
      case 2: {
        Authenticate auth;
        size_t n = std::min<size_t>(op >> 3, size - pos);
        std::string blob(reinterpret_cast<const char*>(data + pos), n);
        pos += n;
        size_t cut = blob.size() / 3;
        auth.creds.user = (op & 0x40) ? "bob@example.com" : blob.substr(0, cut);
        auth.creds.password = Secret(blob.substr(cut, cut));
        auth.helo = blob.substr(2 * cut);
        auth.esmtp = op & 0x80;
        chk.check(phase->login(std::move(auth)));
        break;
      }
      case 3: {
        std::string_view c = kCanned[(op >> 3) % std::size(kCanned)];
        chk.check(phase->onUpstreamData(c));
        break;
      }
      default: {
        size_t n = std::min<size_t>((op >> 3) + 1, size - pos);
        chk.check(phase->onUpstreamData(std::string_view(reinterpret_cast<const char*>(data + pos), n)));
        pos += n;
        break;
      }
    }
  }
  return 0;
}
