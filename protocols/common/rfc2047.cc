// Display-name phrases and RFC 2047 encoded-words. See rfc2047.h. No I/O.
#include "protocols/common/rfc2047.h"

#include "protocols/common/base64.h"
#include "protocols/common/text.h"

namespace mailshim::proto::rfc2047 {
namespace {

constexpr std::string_view kWordStart = "=?UTF-8?B?";
constexpr std::string_view kWordEnd = "?=";
constexpr size_t kMinWordChars = 20;  // 12 bytes of framing + 8 base64 chars (one 4-byte character)

// Length of the UTF-8 sequence starting with `lead`; 1 for anything invalid,
// so that encodeWords() never loops on bad input.
size_t sequenceLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 1;
}

std::string_view trimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool printableAscii(std::string_view s) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// Words of atext separated by single spaces: usable as an RFC 5322 phrase
// without quoting.
bool isAtomPhrase(std::string_view s) {
  if (s.empty() || s.front() == ' ' || s.back() == ' ') return false;
  char prev = 'x';
  for (char c : s) {
    if (c == ' ') {
      if (prev == ' ') return false;
    } else if (!isAtext(c)) {
      return false;
    }
    prev = c;
  }
  return true;
}

std::string quotedString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

bool isValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n = sequenceLength(c);
    if (n == 1 || i + n > s.size()) return false;
    auto c1 = static_cast<unsigned char>(s[i + 1]);
    if ((c1 & 0xC0) != 0x80) return false;
    if (c == 0xE0 && c1 < 0xA0) return false;  // overlong
    if (c == 0xED && c1 > 0x9F) return false;  // surrogates
    if (c == 0xF0 && c1 < 0x90) return false;  // overlong
    if (c == 0xF4 && c1 > 0x8F) return false;  // above U+10FFFF
    for (size_t k = 2; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

bool isAtext(char ch) {
  auto c = static_cast<unsigned char>(ch);
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-/=?^_`{|}~").find(ch) != std::string_view::npos;
}

bool isUsableDisplayName(std::string_view name) {
  name = trimSpaces(name);
  if (name.empty() || name.size() > kMaxDisplayNameBytes || !isValidUtf8(name)) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f) return false;
    // C1 controls U+0080..U+009F are C2 80..C2 9F.
    if (c == 0xC2 && i + 1 < name.size() && static_cast<unsigned char>(name[i + 1]) < 0xA0) return false;
  }
  return true;
}

std::vector<std::string> encodeWords(std::string_view utf8, size_t first_max, size_t max) {
  auto payloadBytes = [](size_t budget) {
    if (budget > kMaxEncodedWordChars) budget = kMaxEncodedWordChars;
    if (budget < kMinWordChars) budget = kMinWordChars;
    size_t b64 = (budget - kWordStart.size() - kWordEnd.size()) / 4 * 4;
    return b64 / 4 * 3;
  };
  std::vector<std::string> words;
  size_t limit = payloadBytes(first_max);
  size_t start = 0;
  size_t i = 0;
  auto flush = [&](size_t end) {
    words.push_back(std::string(kWordStart) + base64Encode(utf8.substr(start, end - start)) + std::string(kWordEnd));
    start = end;
    limit = payloadBytes(max);
  };
  while (i < utf8.size()) {
    size_t n = sequenceLength(static_cast<unsigned char>(utf8[i]));
    if (i + n > utf8.size()) n = utf8.size() - i;
    if (i + n - start > limit && i > start) flush(i);
    i += n;
  }
  if (start < utf8.size()) flush(utf8.size());
  return words;
}

std::optional<std::string> decodeWord(std::string_view word) {
  if (word.size() < 8 || !word.starts_with("=?") || !word.ends_with("?=")) return std::nullopt;
  std::string_view inner = word.substr(2, word.size() - 4);
  size_t q1 = inner.find('?');
  if (q1 == std::string_view::npos || q1 == 0) return std::nullopt;
  std::string_view rest = inner.substr(q1 + 1);
  if (rest.size() < 2 || rest[1] != '?') return std::nullopt;
  char enc = rest[0];
  std::string_view text = rest.substr(2);
  if (text.find('?') != std::string_view::npos) return std::nullopt;
  if (enc == 'B' || enc == 'b') return base64Decode(text);
  if (enc != 'Q' && enc != 'q') return std::nullopt;
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '_') {
      out += ' ';
    } else if (c == '=') {
      if (i + 2 >= text.size()) return std::nullopt;
      int hi = hexValue(text[i + 1]);
      int lo = hexValue(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::string> formatMailboxField(std::string_view field_name, std::string_view name,
                                              std::string_view addr) {
  if (!isUsableDisplayName(name) || !isLineSafe(addr) || !isLineSafe(field_name)) return std::nullopt;
  name = trimSpaces(name);
  const std::string prefix = std::string(field_name) + ": ";
  const std::string angle = "<" + std::string(addr) + ">";
  if (printableAscii(name) && name.find("=?") == std::string_view::npos) {
    std::string phrase = isAtomPhrase(name) ? std::string(name) : quotedString(name);
    if (prefix.size() + phrase.size() + 1 + angle.size() <= kMaxLineChars)
      return prefix + phrase + " " + angle + "\r\n";
    if (prefix.size() + phrase.size() <= kMaxLineChars) return prefix + phrase + "\r\n " + angle + "\r\n";
    // Too long for one line: encoded-words can be folded.
  }
  const size_t first_budget = prefix.size() < kMaxLineChars ? kMaxLineChars - prefix.size() : 0;
  std::vector<std::string> words = encodeWords(name, first_budget, kMaxLineChars - 1);
  std::string out = prefix;
  size_t line = prefix.size();
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) {
      out += "\r\n ";
      line = 1;
    }
    out += words[i];
    line += words[i].size();
  }
  if (line + 1 + angle.size() <= kMaxLineChars) {
    out += " ";
  } else {
    out += "\r\n ";
  }
  out += angle;
  out += "\r\n";
  return out;
}

}  // namespace mailshim::proto::rfc2047
