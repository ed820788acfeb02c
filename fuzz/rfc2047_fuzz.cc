// libFuzzer target for the RFC 2047 / RFC 5322 display-name encoder used by
// smtp.display_name. The first byte picks the word budgets and the field
// name; the rest, cut at the first NUL, is a display name and an address.
// Checks:
// * isValidUtf8 agrees with an independent strict decoder (RFC 3629);
// * encodeWords: every word is a "=?UTF-8?B?...?=" of at most 75 characters
//   that decodeWord() turns back into a slice, the slices concatenate to the
//   input, and for valid UTF-8 no slice splits a character;
// * formatMailboxField: accepted exactly when isUsableDisplayName(name) and
//   the address is line-safe; the result starts with "<field>: ", ends with
//   " <addr>\r\n" (after a space or a fold), has only CRLF-SP folds, and no
//   line but the one carrying the address exceeds 78 characters;
// * decodeWord never crashes on the raw input.
// No I/O.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/common/rfc2047.h"
#include "protocols/common/text.h"

using namespace mailshim::proto;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool referenceUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    size_t n;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      cp = c & 0x1F;
      n = 2;
    } else if ((c & 0xF0) == 0xE0) {
      cp = c & 0x0F;
      n = 3;
    } else if ((c & 0xF8) == 0xF0) {
      cp = c & 0x07;
      n = 4;
    } else {
      return false;
    }
    if (i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return false;  // overlong
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

bool isContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t cfg = data[0];
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  (void)rfc2047::decodeWord(in);

  const bool valid = rfc2047::isValidUtf8(in);
  check(valid == referenceUtf8(in));

  const size_t first_max = 1 + (cfg & 0x0F) * 6;
  const size_t max = 1 + (cfg >> 4) * 6;
  auto words = rfc2047::encodeWords(in, first_max, max);
  check(in.empty() == words.empty());
  std::string joined;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    size_t budget = i == 0 ? first_max : max;
    if (budget < 20) budget = 20;
    if (budget > rfc2047::kMaxEncodedWordChars) budget = rfc2047::kMaxEncodedWordChars;
    check(w.starts_with("=?UTF-8?B?") && w.ends_with("?="));
    // A single character may exceed a tiny budget only if it alone is bigger.
    auto piece = rfc2047::decodeWord(w);
    check(piece.has_value() && !piece->empty());
    check(w.size() <= budget || piece->size() <= 4);
    if (valid && joined.size() + piece->size() < in.size()) check(!isContinuationByte(in[joined.size() + piece->size()]));
    joined += *piece;
  }
  check(joined == in);

  // name \0 address, field name chosen by cfg.
  size_t nul = in.find('\0');
  std::string_view name = in.substr(0, nul);
  std::string_view addr = nul == std::string_view::npos ? std::string_view("alice@example.test") : in.substr(nul + 1);
  const std::string_view field = (cfg & 1) ? "From" : "Reply-To";
  auto out = rfc2047::formatMailboxField(field, name, addr);
  check(out.has_value() == (rfc2047::isUsableDisplayName(name) && isLineSafe(addr)));
  if (!out) return 0;
  const std::string prefix = std::string(field) + ": ";
  const std::string tail = "<" + std::string(addr) + ">\r\n";
  check(out->starts_with(prefix) && out->ends_with(tail));
  check(out->size() > prefix.size() + tail.size());
  char before = (*out)[out->size() - tail.size() - 1];
  check(before == ' ');
  // Lines: CRLF only as fold "\r\n " or at the very end.
  size_t start = 0;
  for (;;) {
    size_t crlf = out->find("\r\n", start);
    check(crlf != std::string::npos);
    std::string_view line(out->data() + start, crlf - start);
    bool last = crlf + 2 == out->size();
    bool holds_addr = line.ends_with("<" + std::string(addr) + ">");
    if (!holds_addr) check(line.size() <= rfc2047::kMaxLineChars);
    check(line.find('\r') == std::string_view::npos && line.find('\n') == std::string_view::npos);
    if (last) break;
    check((*out)[crlf + 2] == ' ');
    start = crlf + 2;
  }
  return 0;
}
