// libFuzzer target for the POP3 codec: client command lines, backend status
// lines, SASL continuations and CAPA listings. The input is split at LF into
// lines; each is parsed every way. Checks: a command's keyword is 1..16
// upper-case letters/digits and its args a suffix of the line with no control
// characters but TAB; a status's text and code are slices of the line; a
// responseTextOr() result is either the fallback or one clean line; a CAPA
// listing keeps at most kMaxLines lines, ends exactly at ".", and every
// listed SASL mechanism is upper-case and non-empty. No I/O.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocols/common/text.h"
#include "protocols/pop3/pop3_codec.h"

using namespace mailshim::proto;
using namespace mailshim::proto::pop3;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool within(std::string_view outer, std::string_view inner) {
  return inner.empty() || (inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size());
}

bool clean(std::string_view s, bool tab_ok) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && !(tab_ok && c == '\t')) || u == 0x7f) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  CapaList capa;
  bool capa_done = false;
  size_t capa_lines = 0;
  size_t pos = 0;
  while (pos <= in.size()) {
    size_t lf = in.find('\n', pos);
    std::string_view line = in.substr(pos, lf == std::string_view::npos ? std::string_view::npos : lf - pos);
    pos = lf == std::string_view::npos ? in.size() + 1 : lf + 1;

    if (auto cmd = parseCommand(line)) {
      check(!cmd->keyword.empty() && cmd->keyword.size() <= kMaxKeyword);
      for (char c : cmd->keyword) check((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'));
      check(within(line, cmd->args) && clean(cmd->args, true));
      check(iequals(line.substr(0, cmd->keyword.size()), cmd->keyword));
      if (!cmd->args.empty()) check(line.size() == cmd->keyword.size() + 1 + cmd->args.size());
    } else {
      // A clean line starting with a 1..16 character alphanumeric word parses.
      std::string_view rest = line;
      std::string_view kw = nextWord(rest);
      bool alnum = !kw.empty() && kw.size() <= kMaxKeyword;
      for (char c : kw) alnum = alnum && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'));
      check(!(alnum && clean(line, true)));
    }

    if (auto st = parseStatus(line)) {
      check(istartsWith(line, st->ok ? "+OK" : "-ERR"));
      check(within(line, st->text) && within(st->text, st->code));
      if (!st->code.empty()) check(st->text.starts_with("[") && st->text.find(']') == st->code.size() + 1);
    }
    std::string text = responseTextOr(line, "fallback");
    check(text == "fallback" || (text == line && clean(text, false)));
    check(!text.empty());
    if (isContinuation(line)) check(line.starts_with("+") && (line.size() == 1 || line[1] == ' '));

    if (!capa_done) {
      capa_done = capa.add(line);
      if (capa_done) {
        check(line == ".");
      } else {
        ++capa_lines;
        check(capa.lines().size() == std::min(capa_lines, CapaList::kMaxLines));
      }
    }
  }
  check(capa.lines().size() <= CapaList::kMaxLines);
  for (const auto& m : capa.saslMechanisms()) {
    check(!m.empty() && m.find(' ') == std::string::npos);
    check(m == asciiUpper(m));
  }
  if (capa.has("SASL")) (void)capa.saslMechanisms();
  capa.clear();
  check(capa.lines().empty());
  return 0;
}
