// libFuzzer target for SmtpFrontPhase: arbitrary client bytes interleaved
// with fuzzer-chosen events (TLS up, each kind of login result, timeout) and
// canned commands that reach deep states. Checks the phase's contract: every
// reply is well-formed, one SendDownstream per data call, nothing follows a
// STARTTLS go-ahead, no credentials are collected on plaintext without the
// plaintext_auth quirk, nothing comes out after Close/EnterRelay, the
// session handed to the backend is always ESMTP, quirk uses are only of
// enabled quirks (or "retired:" ones). The third byte toggles
// smtp.auth_equals, smtp.helo_only and the retired quirks with an English or
// Japanese retirement message.
// No I/O beyond libFuzzer's own.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "protocols/common/base64.h"
#include "protocols/smtp/smtp.h"

namespace {

using namespace mailshim::proto;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

const std::string_view kCanned[] = {
    "EHLO client.example.org\r\n", "HELO WIN7-PC\r\n", "STARTTLS\r\n", "AUTH LOGIN\r\n", "AUTH PLAIN\r\n",
    "AUTH PLAIN AGJvYgBwdw==\r\n",  // \0bob\0pw
    "Ym9i\r\n", "cHc=\r\n", "*\r\n", "MAIL FROM:<a@b.example>\r\n", "NOOP\r\n", "QUIT\r\n", "AUTH LOGIN Ym9i\r\n",
    "EHLO localhost\r\n", "AUTH PLAIN =\r\n", "RCPT TO:<c@d.example>\r\n", "HELO printer\r\n",
    "EHLO oe4\r\n",
};

bool wellFormedReplies(const std::string& bytes) {
  if (bytes.empty() || !bytes.ends_with("\r\n")) return false;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t end = bytes.find("\r\n", pos);
    if (end == std::string::npos) return false;
    std::string_view line(bytes.data() + pos, end - pos);
    if (line.size() < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' || line[2] < '0' ||
        line[2] > '9')
      return false;
    if (line.size() > 3 && line[3] != ' ' && line[3] != '-') return false;
    for (char c : line)
      if (c == '\r' || c == '\n' || c == '\0') return false;
    pos = end + 2;
  }
  return true;
}

struct Checker {
  bool tls;
  bool plaintext_auth;
  QuirkSet quirks;
  QuirkSet retired;
  bool handshake = false;  // StartTlsDownstream emitted, onDownstreamTls not yet
  bool done = false;       // Close or EnterRelay emitted

  void check(const Actions& acts, bool data_call) {
    if (done) {
      require(acts.empty());
      return;
    }
    int sends = 0;
    bool after_tls = false;
    for (const auto& a : acts) {
      require(!done);
      if (const auto* s = std::get_if<SendDownstream>(&a)) {
        require(!after_tls && !handshake);
        require(wellFormedReplies(s->bytes));
        ++sends;
      } else if (std::holds_alternative<StartTlsDownstream>(a)) {
        require(!tls && !handshake);
        after_tls = true;
        handshake = true;
      } else if (const auto* au = std::get_if<Authenticate>(&a)) {
        require(!handshake);
        require(tls || plaintext_auth);
        require(!au->creds.user.empty());
        for (char c : au->creds.user) require(c != '\r' && c != '\n' && c != '\0');
        for (char c : au->creds.password.reveal()) require(c != '\r' && c != '\n' && c != '\0');
        for (char c : au->helo) require(c > 0x20 && c < 0x7f);
        require(au->esmtp);  // AUTH only after EHLO, or after HELO with smtp.helo_only
      } else if (std::holds_alternative<Close>(a) || std::holds_alternative<EnterRelay>(a)) {
        done = true;
      } else if (std::holds_alternative<SendUpstream>(a) || std::holds_alternative<StartTlsUpstream>(a) ||
                 std::holds_alternative<LoginDone>(a) || std::holds_alternative<ConnectUpstream>(a)) {
        require(false);
      } else if (const auto* n = std::get_if<LogNote>(&a)) {
        for (char c : n->text) require(c != '\r' && c != '\n' && c != '\0');
      } else if (const auto* q = std::get_if<QuirkUsed>(&a)) {
        for (char c : q->detail) require(c != '\r' && c != '\n' && c != '\0');
        require(quirks.has(q->quirk) || (retired.has(q->quirk) && q->detail.starts_with("retired: ")));
      } else if (std::holds_alternative<ArmTimer>(a)) {
        require(!done);
      }
    }
    if (data_call) require(sends <= 1);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  SessionContext ctx;
  ctx.server_name = "mail.example.test";
  ctx.client_ip = (data[0] & 1) ? "::1" : "127.0.0.2";
  ctx.client_tls = data[0] & 2;
  ctx.starttls_available = data[0] & 4;
  if (data[0] & 8) ctx.quirks.add(Quirk::PlaintextAuth);
  if (data[0] & 16) ctx.quirks.add(Quirk::SmtpHeloNormalize);
  ctx.max_errors = data[1] % 12;
  ctx.max_line_bytes = 32 + (data[0] >> 5) * 64;
  ctx.max_message_bytes = data[1];
  if (data[2] & 1) ctx.quirks.add(Quirk::SmtpAuthEquals);
  if (data[2] & 2) ctx.quirks.add(Quirk::SmtpHeloOnly);
  // Retired quirks are never also enabled (conf keeps the sets apart).
  const Quirk retirable[] = {Quirk::PlaintextAuth, Quirk::SmtpHeloNormalize, Quirk::SmtpAuthEquals,
                             Quirk::SmtpHeloOnly};
  for (size_t i = 0; i < std::size(retirable); ++i)
    if ((data[2] & (4u << i)) && !ctx.quirks.has(retirable[i])) ctx.retired_quirks.add(retirable[i]);
  if (data[2] & 64) ctx.retired_message = (data[2] & 128) ? "平文ログインは廃止されました: https://x.test/" : "Retired.";
  auto phase = smtp::makeSmtpFrontPhase(ctx);
  Checker chk{ctx.client_tls, ctx.quirks.has(Quirk::PlaintextAuth), ctx.quirks, ctx.retired_quirks};
  chk.check(phase->start(), false);

  size_t pos = 3;
  while (pos < size) {
    uint8_t op = data[pos++];
    switch (op % 8) {
      case 4: {
        Actions a = phase->onDownstreamTls();
        if (chk.handshake && !chk.done) {
          chk.handshake = false;
          chk.tls = true;
        } else {
          require(a.empty());
        }
        chk.check(a, false);
        break;
      }
      case 5: {
        LoginResult r;
        uint8_t k = pos < size ? data[pos++] : 0;
        r.kind = static_cast<LoginResult::Kind>(k % 3);
        if (k & 4) r.code = (k & 8) ? "535" : "454";
        if (k & 16) r.text = "5.7.8 Error: authentication failed";
        if (k & 32) r.text = "bad\r\ntext";
        if (k & 64) r.leftover = "250 x\r\n";
        chk.check(phase->onLoginResult(r), false);
        break;
      }
      case 6:
        chk.check(phase->onTimeout(), false);
        break;
      case 7: {
        std::string_view c = kCanned[(op >> 3) % std::size(kCanned)];
        chk.check(phase->onDownstreamData(c), true);
        break;
      }
      default: {
        size_t n = std::min<size_t>((op >> 2) + 1, size - pos);
        chk.check(phase->onDownstreamData(std::string_view(reinterpret_cast<const char*>(data + pos), n)), true);
        pos += n;
        break;
      }
    }
  }
  return 0;
}
