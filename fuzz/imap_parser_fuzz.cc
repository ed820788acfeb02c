// libFuzzer target for the IMAP command parser and astring encoder: the input
// is cut into chunks at points chosen by its own bytes, fed to an ImapParser
// with small limits, and every command's arguments are re-encoded with
// appendAstring and parsed back (the values must survive the round trip).
// Raw-line reads, takePending and clear are interleaved. No I/O.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/common/text.h"
#include "protocols/imap/imap_parser.h"

using mailshim::proto::isLineSafe;
using namespace mailshim::proto::imap;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void roundTrip(const ImapArg& a) {
  if (a.kind == ImapArg::Kind::List) {
    for (const auto& i : a.items) roundTrip(i);
    return;
  }
  std::vector<std::string> segs{"t X "};
  bool ok = appendAstring(segs, a.value, true);
  check(ok == isLineSafe(a.value));
  if (!ok) return;
  check(segs.size() == 1);
  segs.back() += "\r\n";
  ImapParser p(ImapParser::Limits{1 << 16, 1 << 16, 4, 1});
  p.feed(segs[0]);
  auto st = p.next();
  check(st == ImapParser::Status::Command);
  check(p.command().args.size() == 1 && p.command().args[0].value == a.value);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  ImapParser::Limits limits;
  limits.max_line_bytes = 16 + data[0] * 4;
  limits.max_literal_bytes = 8 + data[1] * 2;
  limits.max_args = 1 + data[0] % 40;
  limits.max_depth = 1 + data[1] % 3;
  ImapParser parser(limits);
  std::string_view in(reinterpret_cast<const char*>(data) + 2, size - 2);
  size_t pos = 0;
  uint8_t step = data[0] ^ data[1];
  while (pos < in.size()) {
    step = static_cast<uint8_t>(step * 33 + 7);
    size_t n = 1 + step % 23;
    if (n > in.size() - pos) n = in.size() - pos;
    parser.feed(in.substr(pos, n));
    pos += n;
    for (int guard = 0; guard < 10000; ++guard) {
      if (parser.atCommandStart() && (step & 0xF0) == 0x40) {
        std::string line;
        if (parser.nextLine(line) != ImapParser::LineStatus::Line) break;
        check(line.size() <= limits.max_line_bytes && line.find('\n') == std::string::npos);
        continue;
      }
      auto st = parser.next();
      if (st == ImapParser::Status::NeedMore) break;
      if (st == ImapParser::Status::Error) {
        check(!parser.errorTag().empty() && isLineSafe(parser.errorTag()));
        if (parser.errorIsFatal()) return 0;
        continue;
      }
      if (st == ImapParser::Status::Command) {
        const ImapCommand& c = parser.command();
        check(!c.tag.empty() && !c.name.empty() && isLineSafe(c.tag) && isLineSafe(c.name));
        for (const auto& a : c.args) roundTrip(a);
        if ((step & 0x0F) == 3) parser.takePending();
        if ((step & 0x0F) == 5) parser.clear();
      }
    }
  }
  return 0;
}
