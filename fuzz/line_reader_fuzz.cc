// libFuzzer target for LineReader, the CRLF framing of every pre-login phase.
// The first two bytes pick the line bound and the chunking; the rest is fed
// once whole and once in chunks, and both runs must produce the same events
// (lines and TooLong reports) as an independent reference framer:
// a line ends at LF, one CR before it is dropped, a line longer than the bound
// is reported TooLong once and skipped. Every line is within the bound and
// holds no LF. takeRaw() and clear() are exercised on a third reader. No I/O.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/common/line_reader.h"

using mailshim::proto::LineReader;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// "L:<line>" or "T" per event.
std::vector<std::string> drain(LineReader& r, size_t max) {
  std::vector<std::string> ev;
  for (;;) {
    std::string_view line;
    auto st = r.next(line);
    if (st == LineReader::Status::NeedMore) break;
    if (st == LineReader::Status::TooLong) {
      ev.push_back("T");
      continue;
    }
    check(line.size() <= max && line.find('\n') == std::string_view::npos);
    ev.push_back("L:" + std::string(line));
  }
  return ev;
}

std::vector<std::string> reference(std::string_view in, size_t max) {
  std::vector<std::string> ev;
  size_t pos = 0;
  while (pos < in.size()) {
    size_t lf = in.find('\n', pos);
    if (lf == std::string_view::npos) {
      size_t body = in.size() - pos;
      if (in.back() == '\r') --body;
      if (body > max) ev.push_back("T");
      break;
    }
    size_t len = lf - pos;
    if (len > 0 && in[lf - 1] == '\r') --len;
    if (len > max)
      ev.push_back("T");
    else
      ev.push_back("L:" + std::string(in.substr(pos, len)));
    pos = lf + 1;
  }
  return ev;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t max = data[0] % 64;
  uint8_t step = data[1];
  std::string_view in(reinterpret_cast<const char*>(data) + 2, size - 2);

  LineReader whole(max);
  whole.feed(in);
  auto a = drain(whole, max);

  LineReader split(max);
  std::vector<std::string> b;
  for (size_t pos = 0; pos < in.size();) {
    step = static_cast<uint8_t>(step * 33 + 7);
    size_t n = 1 + step % 17;
    if (n > in.size() - pos) n = in.size() - pos;
    split.feed(in.substr(pos, n));
    pos += n;
    auto ev = drain(split, max);
    b.insert(b.end(), ev.begin(), ev.end());
  }
  check(a == b);
  check(a == reference(in, max));

  // takeRaw / clear interleaved with lines (IMAP literals, STARTTLS).
  LineReader raw(max);
  std::string taken;
  for (size_t pos = 0; pos < in.size();) {
    size_t n = 1 + static_cast<uint8_t>(in[pos]) % 9;
    if (n > in.size() - pos) n = in.size() - pos;
    raw.feed(in.substr(pos, n));
    pos += n;
    std::string_view before = raw.pending();
    std::string expect(before.substr(0, n / 2));
    std::string got = raw.takeRaw(n / 2);
    check(got == expect);
    taken += got;
    std::string_view line;
    (void)raw.next(line);
    if (n == 9) {
      raw.clear();
      check(!raw.hasPending() && raw.pending().empty());
    }
  }
  check(taken.size() <= in.size());
  return 0;
}
