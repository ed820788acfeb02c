// libFuzzer target for SmtpRelayFilter: interleaved arbitrary client and
// backend bytes; the first byte switches the message quirks on
// (smtp.bare_lf, smtp.rcpt_strip_quotes, smtp.sender_align,
// smtp.display_name), retires them, or sets the login name and directory.
// Checks pass-through: without a rewriting quirk the bytes sent upstream are
// always a prefix of what the client sent, and the bytes sent downstream a
// prefix of what the backend sent (when the client never said
// XCLIENT/XFORWARD, which are answered locally, and the session was not
// closed). Always: nothing after Close, log lines and quirk details are
// line-safe, ClientInfo only for x-mailer/user-agent. No I/O beyond
// libFuzzer's own.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "protocols/common/text.h"
#include "protocols/smtp/smtp.h"

namespace {

using namespace mailshim::proto;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

const std::string_view kClient[] = {
    "MAIL FROM:<a@b.example>\r\n", "RCPT TO:<c@d.example>\r\n", "DATA\r\n", "\r\n.\r\n", "BDAT 4 LAST\r\n",
    "Subject: x\r\n\r\n..dot\r\n", "RCPT TO:<'e@f.example'> NOTIFY=NEVER\r\n",
    "From: alice@example.test\r\nX-Mailer: m\r\n\r\n", "\n.\n", "MAIL FROM:<> SIZE=1\r\n",
    "From: <yamada@example.test>\r\n", "line\rmore\n",
};
const std::string_view kBackend[] = {
    "250 2.1.0 Ok\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n", "250 2.0.0 Ok: queued as ABC\r\n",
    "554 5.5.1 Error: no valid recipients\r\n", "250-x\r\n250 y\r\n",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  SessionContext ctx;
  ctx.server_name = "mail.example.test";
  const Quirk message_quirks[] = {Quirk::SmtpBareLf, Quirk::SmtpRcptStripQuotes, Quirk::SmtpSenderAlign,
                                  Quirk::SmtpDisplayName};
  for (size_t i = 0; i < std::size(message_quirks); ++i) {
    if (!(flags & (1u << i))) continue;
    if (flags & 16) {
      ctx.retired_quirks.add(message_quirks[i]);
    } else {
      ctx.quirks.add(message_quirks[i]);
    }
  }
  ctx.retired_message = "改行は CRLF のみ";
  ctx.user = (flags & 32) ? "alice@example.test" : "alice";
  if (flags & 64)
    ctx.directory = std::make_shared<const Directory>(
        std::map<std::string, std::string>{{"alice@example.test", "Alice Liddell"}, {"yamada@example.test", "山田 太郎"}});
  ctx.display_name_fallback_local_part = flags & 128;
  ctx.max_header_bytes = 64 + (flags & 32) * 8;
  const bool rewrites = !ctx.quirks.empty();
  auto filter = smtp::makeSmtpRelayFilter(ctx);
  std::string client, backend, up, down;
  bool closed = false;
  auto collect = [&](Actions&& acts) {
    for (auto& a : acts) {
      if (auto* s = std::get_if<SendUpstream>(&a)) {
        require(!closed);
        up += s->bytes;
      } else if (auto* d = std::get_if<SendDownstream>(&a)) {
        require(!closed);
        down += d->bytes;
      } else if (std::holds_alternative<Close>(a)) {
        closed = true;
      } else if (auto* n = std::get_if<LogNote>(&a)) {
        for (char c : n->text) require(c != '\r' && c != '\n' && c != '\0');
      } else if (auto* q = std::get_if<QuirkUsed>(&a)) {
        for (char c : q->detail) require(c != '\r' && c != '\n' && c != '\0');
        require(ctx.quirks.has(q->quirk) || (ctx.retired_quirks.has(q->quirk) && q->detail.starts_with("retired: ")));
      } else if (auto* i = std::get_if<ClientInfo>(&a)) {
        require(i->key == "x-mailer" || i->key == "user-agent");
      } else {
        require(false);
      }
    }
  };
  size_t pos = 1;
  while (pos < size) {
    uint8_t op = data[pos++];
    std::string_view chunk;
    switch (op % 4) {
      case 0:
        chunk = kClient[(op >> 2) % std::size(kClient)];
        break;
      case 1:
        chunk = kBackend[(op >> 2) % std::size(kBackend)];
        break;
      default: {
        size_t n = std::min<size_t>((op >> 2) + 1, size - pos);
        chunk = std::string_view(reinterpret_cast<const char*>(data + pos), n);
        pos += n;
        break;
      }
    }
    if (op % 2 == 0) {
      client += chunk;
      collect(filter->onDownstreamData(chunk));
    } else {
      backend += chunk;
      collect(filter->onUpstreamData(chunk));
    }
  }
  bool local = false;
  for (size_t i = 0; i < client.size(); ++i)
    if (asciiLower(client[i]) == 'x') local = true;
  if (!rewrites) {
    require(up.size() <= client.size());
    if (!local) require(client.compare(0, up.size(), up) == 0);
  }
  if (!local && !closed) require(backend.compare(0, down.size(), down) == 0);
  return 0;
}
