// libFuzzer target for the SMTP command codec: command and path parsing, the
// HELO domain / address-literal checks, xtext, the command/reply encoders
// (which must refuse CR, LF and NUL and otherwise emit exactly one line), and
// the relay's command rewrites (smtp.rcpt_strip_quotes removes exactly the
// two quotes; smtp.sender_align yields a MAIL FROM whose path is the sender
// and whose parameters are unchanged).
// No I/O beyond libFuzzer's own.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocols/common/text.h"
#include "protocols/smtp/smtp_command.h"
#include "protocols/smtp/smtp_reply.h"

namespace {

using namespace mailshim::proto;
using namespace mailshim::proto::smtp;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

bool oneLine(const std::string& s) {
  return s.size() >= 2 && s.ends_with("\r\n") && s.find('\n') == s.size() - 1 && s.find('\r') == s.size() - 2 &&
         s.find('\0') == std::string::npos;
}

bool within(std::string_view outer, std::string_view inner) {
  return inner.empty() || (inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  Command cmd = parseCommand(in);
  require(within(in, cmd.name) && within(in, cmd.args));
  (void)verbName(cmd.verb);
  for (auto p : {parseMailFrom(cmd.args), parseRcptTo(cmd.args), parseMailFrom(in), parseRcptTo(in)}) {
    if (p) require(within(in, p->path) && within(in, p->params));
  }

  bool fqdn = isFqdn(in);
  bool literal = isAddressLiteral(in);
  require(!(fqdn && literal));
  if (fqdn) require(in.find('.') != std::string_view::npos && isLineSafe(in));
  if (auto lit = addressLiteralFor(in)) require(isAddressLiteral(*lit));
  if (isIpv4(in) || isIpv6(in)) require(addressLiteralFor(in).has_value());

  auto x = xtextEncode(in);
  require(x.has_value() == isLineSafe(in));
  if (x) {
    for (char c : *x) require(c >= 33 && c <= 126 && c != '=');
    auto back = xtextDecode(*x);
    require(back && *back == in);
  }
  (void)xtextDecode(in);

  auto c = formatCommand("EHLO", in);
  require(c.has_value() == isLineSafe(in));
  if (c) require(oneLine(*c));

  auto r = formatReply(250, in);
  require(r.has_value() == isLineSafe(in));
  if (r) require(oneLine(*r));

  XclientParams p;
  p.addr = std::string(in.substr(0, in.size() / 2));
  p.helo = std::string(in.substr(in.size() / 2));
  p.port = static_cast<uint16_t>(size);
  p.esmtp = size % 2 == 0;
  if (auto line = formatXclient(p, {"ADDR", "PORT", "NAME", "HELO", "PROTO"})) {
    require(oneLine(*line));
    require(line->starts_with("XCLIENT "));
    require(line->find(' ', 8) == std::string::npos || line->find("  ") == std::string::npos);
  }

  std::string addr;
  if (auto stripped = stripRcptQuotes(in, &addr)) {
    require(stripped->size() + 2 == in.size() && !addr.empty());
    require(stripped->find("<" + addr + ">") != std::string::npos);
    size_t removed = 0;
    for (size_t i = 0, j = 0; i < in.size(); ++i) {
      if (j < stripped->size() && (*stripped)[j] == in[i]) {
        ++j;
      } else {
        require(in[i] == '\'');
        ++removed;
      }
    }
    require(removed == 2);
    require(!stripRcptQuotes(*stripped) || stripped->find("<'") != std::string::npos);
  }
  std::string old;
  if (auto aligned = replaceMailFromPath(in, "alice@example.test", &old)) {
    Command a = parseCommand(*aligned);
    require(a.verb == Verb::Mail);
    auto path = parseMailFrom(a.args);
    auto orig = parseMailFrom(parseCommand(in).args);
    require(path && orig && path->path == "alice@example.test" && path->bracketed);
    require(path->params == orig->params && old == orig->path);
    require(!replaceMailFromPath(*aligned, "alice@example.test"));
  }
  return 0;
}
