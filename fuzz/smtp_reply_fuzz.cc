// libFuzzer target for the incremental SMTP ReplyParser: the same input fed
// whole and at fuzzer-chosen split points must yield the same replies (or the
// same error); every reply's raw bytes are a contiguous slice of the input and
// its text holds no control characters but TAB. No I/O beyond libFuzzer's own.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/smtp/smtp_reply.h"

namespace {

using namespace mailshim::proto::smtp;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

struct Result {
  std::vector<Reply> replies;
  bool error = false;
};

Result run(std::string_view in, size_t step, size_t max_line, size_t max_lines) {
  ReplyParser p(max_line, max_lines);
  Result out;
  size_t pos = 0;
  while (pos < in.size() && !out.error) {
    size_t n = step == 0 ? in.size() : std::min(step, in.size() - pos);
    p.feed(in.substr(pos, n));
    pos += n;
    Reply r;
    for (;;) {
      auto st = p.next(r);
      if (st == ReplyParser::Status::Reply) {
        out.replies.push_back(r);
        continue;
      }
      if (st == ReplyParser::Status::Error) out.error = true;
      break;
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  size_t step = data[0] % 13;
  size_t max_line = 16 + data[1];
  std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
  Result whole = run(in, 0, max_line, 20);
  Result split = run(in, step == 0 ? 1 : step, max_line, 20);
  size_t n = std::min(whole.replies.size(), split.replies.size());
  require(whole.error == split.error);
  if (!whole.error) require(whole.replies.size() == split.replies.size());
  std::string concat;
  for (size_t i = 0; i < n; ++i) {
    const Reply& a = whole.replies[i];
    const Reply& b = split.replies[i];
    require(a.code == b.code && a.lines == b.lines && a.raw == b.raw && a.enhanced == b.enhanced);
  }
  for (const auto& r : whole.replies) {
    require(r.code >= 200 && r.code <= 599 && !r.lines.empty() && r.lines.size() <= 20);
    for (const auto& l : r.lines) {
      require(l.size() <= max_line);
      for (char ch : l) {
        auto c = static_cast<unsigned char>(ch);
        require(!((c < 0x20 && c != '\t') || c == 0x7f));
      }
    }
    concat += r.raw;
  }
  require(in.substr(0, concat.size()) == concat);
  for (const auto& r : whole.replies) {
    auto enc = formatMultiline(r.code, r.lines);
    require(enc.has_value());
  }
  return 0;
}
