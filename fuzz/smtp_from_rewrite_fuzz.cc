// libFuzzer target for the SMTP relay filter's DATA path: the bare CR/LF
// (smuggling) defence, smtp.bare_lf normalisation, the header block and the
// smtp.display_name From rewrite, with a small directory. The first bytes
// pick the quirks, the header bound and the write sizes; the rest is the
// message content sent after "354". Each input runs twice, display_name on
// and off, and is checked against an independent reference:
// * the filter's own verdict ("message accepted" after the backend's 250)
//   happens exactly when the bytes it sent hold an end-of-data, and the
//   content it sent before that has no bare CR or LF (what the backend reads
//   is what mailshim read);
// * strict mode: content is forwarded byte-exact up to the end-of-data, or
//   refused (550 + Close) only when the client sent a bare CR/LF;
// * smtp.bare_lf: the content equals a simple line-by-line normalisation;
// * display_name changes nothing but one From field, into a folded field of
//   lines of at most 78 characters (plus the address), reported once.
// No I/O beyond libFuzzer's own.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "protocols/common/text.h"
#include "protocols/smtp/smtp_relay_filter.h"

namespace {

using namespace mailshim::proto;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

struct Run {
  std::string up;
  std::string down;
  bool closed = false;
  bool accepted = false;
  int display_uses = 0;
  int bare_uses = 0;
};

bool lineSafe(std::string_view s) { return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos; }

Run run(const SessionContext& ctx, std::string_view msg, const uint8_t* sizes, size_t nsizes) {
  smtp::SmtpRelayFilter f(ctx);
  Run r;
  auto collect = [&](Actions&& acts) {
    for (auto& a : acts) {
      if (auto* s = std::get_if<SendUpstream>(&a)) {
        require(!r.closed);
        r.up += s->bytes;
      } else if (auto* d = std::get_if<SendDownstream>(&a)) {
        require(!r.closed);
        r.down += d->bytes;
      } else if (std::holds_alternative<Close>(a)) {
        require(std::get<Close>(a).reason == CloseReason::MessageRefused);
        r.closed = true;
      } else if (auto* n = std::get_if<LogNote>(&a)) {
        require(lineSafe(n->text));
        if (n->text.starts_with("message accepted")) r.accepted = true;
      } else if (auto* q = std::get_if<QuirkUsed>(&a)) {
        require(lineSafe(q->detail));
        if (q->quirk == Quirk::SmtpDisplayName && !q->detail.starts_with("retired:")) ++r.display_uses;
        if (q->quirk == Quirk::SmtpBareLf && !q->detail.starts_with("retired:")) ++r.bare_uses;
      } else if (auto* i = std::get_if<ClientInfo>(&a)) {
        require(i->key == "x-mailer" || i->key == "user-agent");
        require(!i->value.empty() && i->value.size() <= 200);
        for (char c : i->value) require(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
      } else {
        require(false);
      }
    }
  };
  collect(f.onDownstreamData("DATA\r\n"));
  collect(f.onUpstreamData("354 go\r\n"));
  size_t pos = 0;
  size_t k = 0;
  while (pos < msg.size()) {
    size_t n = nsizes ? 1 + sizes[k++ % nsizes] % 64 : msg.size();
    if (n > msg.size() - pos) n = msg.size() - pos;
    collect(f.onDownstreamData(msg.substr(pos, n)));
    pos += n;
  }
  if (!r.closed) collect(f.onUpstreamData("250 2.0.0 Ok: queued as F\r\n"));
  require(r.up.starts_with("DATA\r\n"));
  r.up.erase(0, 6);
  return r;
}

bool hasBareLineEnd(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return true;
    if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n')) return true;
  }
  return false;
}

// End of the first "\r\n.\r\n" (or a leading ".\r\n"), npos if none.
size_t strictEnd(std::string_view s) {
  if (s.starts_with(".\r\n")) return 3;
  size_t p = s.find("\r\n.\r\n");
  return p == std::string_view::npos ? p : p + 5;
}

// smtp.bare_lf reference: every CRLF, LF or CR ends a line, sent as CRLF; a
// "." line ends the message. Returns the normalised content, `eod` if found.
std::string normalise(std::string_view in, bool& eod) {
  std::string out, line;
  eod = false;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c != '\r' && c != '\n') {
      line += c;
      continue;
    }
    if (c == '\r' && i + 1 < in.size() && in[i + 1] == '\n') ++i;
    if (line == ".") {
      out += ".\r\n";
      eod = true;
      return out;
    }
    out += line + "\r\n";
    line.clear();
  }
  return out + line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const uint8_t flags = data[0];
  const bool lenient = flags & 1;
  SessionContext ctx;
  ctx.server_name = "mail.example.test";
  ctx.user = "alice@example.test";
  if (lenient) ctx.quirks.add(Quirk::SmtpBareLf);
  if (flags & 2) ctx.retired_quirks.add(Quirk::SmtpBareLf);
  if (flags & 4) ctx.display_name_fallback_local_part = true;
  if (flags & 8) ctx.max_header_bytes = 16 + data[1];
  if (flags & 16) ctx.directory = std::make_shared<const Directory>(std::map<std::string, std::string>{
                      {"alice@example.test", "Alice Liddell"},
                      {"liddell@example.test", "Liddell, Alice"},
                      {"yamada@example.test", "山田 太郎"},
                      {"long@example.test", "寿限無寿限無五劫の擦り切れ海砂利水魚の水行末雲来末風来末食う寝る処に住む処"},
                  });
  if (flags & 32) ctx.retired_message = "改行は CRLF のみ: https://help.example.test/lf";
  const size_t nsizes = data[2] % 8;
  if (size < 3 + nsizes) return 0;
  const uint8_t* sizes = data + 3;
  std::string_view msg(reinterpret_cast<const char*>(data + 3 + nsizes), size - 3 - nsizes);

  Run off = run(ctx, msg, sizes, nsizes);
  SessionContext on_ctx = ctx;
  on_ctx.quirks.add(Quirk::SmtpDisplayName);
  Run on = run(on_ctx, msg, sizes, nsizes);

  for (const Run* r : {&off, &on}) {
    // What was sent up to its first end-of-data is clean, and the filter
    // counted a message exactly when it sent an end-of-data.
    size_t e = strictEnd(r->up);
    std::string_view content = std::string_view(r->up).substr(0, e == std::string::npos ? r->up.size() : e);
    // (Strict mode holds a CR until it knows it is not bare; smtp.bare_lf
    // sends every line end as CRLF at once.)
    require(!hasBareLineEnd(content));
    require(r->accepted == (e != std::string::npos));
    if (r->closed) {
      require(!lenient && !r->accepted);
      require(r->down.ends_with("\r\n") && r->down.find("550 5.6.11 ") != std::string::npos);
    }
  }

  if (!lenient) {
    size_t e = strictEnd(msg);
    std::string_view body = msg.substr(0, e == std::string_view::npos ? msg.size() : e);
    std::string_view no_tail = body;
    if (e == std::string_view::npos && !no_tail.empty() && no_tail.back() == '\r') no_tail.remove_suffix(1);
    if (hasBareLineEnd(no_tail)) {
      require(!off.accepted);
      require(std::string_view(msg).starts_with(off.up));  // forwarded bytes: a prefix, never more
    } else if (e != std::string_view::npos) {
      // Byte-exact up to the end-of-data (commands after it may be answered
      // locally, e.g. XCLIENT, so they are not compared).
      require(!off.closed && off.accepted);
      require(off.up.size() >= e && off.up.compare(0, e, msg.substr(0, e)) == 0);
    } else {
      require(!off.closed);
      require(msg.starts_with(off.up));  // byte-exact; the header block or a CR may still be held
    }
    require(off.bare_uses == 0 && on.bare_uses == 0);
  } else {
    bool eod = false;
    std::string want = normalise(msg, eod);
    require(!off.closed && !on.closed);
    if (eod) {
      require(off.up.compare(0, want.size(), want) == 0);
    } else {
      require(std::string_view(want).starts_with(off.up));
    }
    require(off.bare_uses <= 1);
  }

  // display_name: nothing but one From field differs.
  require(off.display_uses == 0 && on.display_uses <= 1);
  if (on.display_uses == 0) {
    require(on.up == off.up && on.down == off.down && on.closed == off.closed);
  } else {
    size_t p = 0;
    while (p < on.up.size() && p < off.up.size() && on.up[p] == off.up[p]) ++p;
    size_t s = 0;
    while (s < on.up.size() - p && s < off.up.size() - p &&
           on.up[on.up.size() - 1 - s] == off.up[off.up.size() - 1 - s])
      ++s;
    while (p > 0 && on.up[p - 1] != '\n') --p;  // back to the start of the field
    std::string_view was = std::string_view(off.up).substr(p, off.up.size() - s - p);
    std::string_view now = std::string_view(on.up).substr(p, on.up.size() - s - p);
    require(mailshim::proto::istartsWith(was, "from") && mailshim::proto::istartsWith(now, "from"));
    size_t line = 0;
    for (size_t i = 0; i < now.size(); ++i) {
      if (now[i] == '\n') {
        line = 0;
        continue;
      }
      if (now[i] == '\r') continue;  // 78 characters excluding the CRLF (RFC 5322 2.1.1)
      if (++line > 78) require(now.find('<', i - line + 1) != std::string_view::npos);  // only the address may be long
    }
  }
  return 0;
}
