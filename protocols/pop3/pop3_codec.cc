// POP3 codec. See pop3_codec.h. RFC 1939, RFC 2449, RFC 5034. No I/O.
#include "protocols/pop3/pop3_codec.h"

#include "protocols/common/text.h"

namespace mailshim::proto::pop3 {

std::optional<Pop3Command> parseCommand(std::string_view line) {
  for (char c : line) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return std::nullopt;  // NUL, bare CR, ...
  }
  std::string_view rest = line;
  std::string_view kw = nextWord(rest);
  if (kw.empty() || kw.size() > kMaxKeyword) return std::nullopt;
  for (char c : kw) {
    bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum) return std::nullopt;
  }
  return Pop3Command{asciiUpper(kw), rest};
}

std::optional<Pop3Status> parseStatus(std::string_view line) {
  Pop3Status s;
  std::string_view rest;
  if (istartsWith(line, "+OK")) {
    s.ok = true;
    rest = line.substr(3);
  } else if (istartsWith(line, "-ERR")) {
    rest = line.substr(4);
  } else {
    return std::nullopt;
  }
  if (!rest.empty()) {
    if (rest[0] != ' ') return std::nullopt;  // "+OKAY" is not a status
    rest.remove_prefix(1);
  }
  s.text = rest;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close != std::string_view::npos) s.code = rest.substr(1, close - 1);
  }
  return s;
}

std::string responseTextOr(std::string_view text, std::string_view fallback) {
  if (text.empty()) return std::string(fallback);
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return std::string(fallback);
  }
  return std::string(text);
}

bool isContinuation(std::string_view line) {
  return line == "+" || (line.size() >= 2 && line[0] == '+' && line[1] == ' ');
}

bool CapaList::add(std::string_view line) {
  if (line == ".") return true;
  if (!line.empty() && line[0] == '.') line.remove_prefix(1);  // dot-stuffing
  if (lines_.size() < kMaxLines) lines_.emplace_back(line);
  return false;
}

bool CapaList::has(std::string_view name) const {
  for (const auto& l : lines_) {
    std::string_view rest = l;
    if (iequals(nextWord(rest), name)) return true;
  }
  return false;
}

std::vector<std::string> CapaList::saslMechanisms() const {
  std::vector<std::string> mechs;
  for (const auto& l : lines_) {
    std::string_view rest = l;
    if (!iequals(nextWord(rest), "SASL")) continue;
    while (!rest.empty()) {
      std::string_view m = nextWord(rest);
      if (!m.empty()) mechs.push_back(asciiUpper(m));
    }
  }
  return mechs;
}

}  // namespace mailshim::proto::pop3
