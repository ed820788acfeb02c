// SMTP command codec. See smtp_command.h. No I/O.
#include "protocols/smtp/smtp_command.h"

#include <array>

#include "protocols/common/text.h"

namespace mailshim::proto::smtp {
namespace {

struct VerbRow {
  std::string_view name;
  Verb verb;
};
constexpr std::array<VerbRow, 17> kVerbs{{
    {"HELO", Verb::Helo},         {"EHLO", Verb::Ehlo}, {"STARTTLS", Verb::Starttls},
    {"AUTH", Verb::Auth},         {"MAIL", Verb::Mail}, {"RCPT", Verb::Rcpt},
    {"DATA", Verb::Data},         {"BDAT", Verb::Bdat}, {"RSET", Verb::Rset},
    {"NOOP", Verb::Noop},         {"QUIT", Verb::Quit}, {"HELP", Verb::Help},
    {"VRFY", Verb::Vrfy},         {"EXPN", Verb::Expn}, {"ETRN", Verb::Etrn},
    {"XCLIENT", Verb::Xclient},   {"XFORWARD", Verb::Xforward},
}};

bool isSpace(char c) { return c == ' ' || c == '\t'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isHex(char c) { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool isUpperHex(char c) { return isDigit(c) || (c >= 'A' && c <= 'F'); }
int hexVal(char c) {
  if (isDigit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Shared by MAIL FROM: and RCPT TO:.
std::optional<PathArg> parsePathArg(std::string_view args, std::string_view keyword) {
  if (!istartsWith(args, keyword)) return std::nullopt;
  std::string_view rest = trim(args.substr(keyword.size()));
  PathArg out;
  if (rest.empty()) return std::nullopt;
  if (rest.front() != '<') {
    // Unbracketed (Postfix accepts it unless strict_rfc821_envelopes).
    size_t end = 0;
    while (end < rest.size() && !isSpace(rest[end])) ++end;
    out.path = rest.substr(0, end);
    out.params = trim(rest.substr(end));
    return out;
  }
  // Bracketed: find the closing '>' outside a quoted string.
  bool quoted = false;
  for (size_t i = 1; i < rest.size(); ++i) {
    char c = rest[i];
    if (quoted && c == '\\') {
      ++i;  // quoted-pair
      continue;
    }
    if (c == '"') quoted = !quoted;
    if (!quoted && c == '>') {
      out.path = rest.substr(1, i - 1);
      out.params = trim(rest.substr(i + 1));
      out.bracketed = true;
      return out;
    }
  }
  return std::nullopt;
}

bool endsWithLabel(std::string_view host, std::string_view suffix) {
  return host.size() > suffix.size() && iequals(host.substr(host.size() - suffix.size()), suffix);
}

}  // namespace

Command parseCommand(std::string_view line) {
  Command c;
  size_t end = 0;
  while (end < line.size() && !isSpace(line[end])) ++end;
  c.name = line.substr(0, end);
  c.args = trim(line.substr(end));
  for (const auto& row : kVerbs) {
    if (iequals(c.name, row.name)) {
      c.verb = row.verb;
      break;
    }
  }
  return c;
}

std::string_view verbName(Verb v) {
  for (const auto& row : kVerbs)
    if (row.verb == v) return row.name;
  return "UNKNOWN";
}

std::optional<PathArg> parseMailFrom(std::string_view args) { return parsePathArg(args, "FROM:"); }
std::optional<PathArg> parseRcptTo(std::string_view args) { return parsePathArg(args, "TO:"); }

std::optional<std::string> stripRcptQuotes(std::string_view line, std::string* address) {
  // PCRE \s and [:space:].
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; };
  const size_t n = line.size();
  if (!istartsWith(line, "RCPT")) return std::nullopt;
  size_t i = 4;
  const size_t ws = i;
  while (i < n && space(line[i])) ++i;
  if (i == ws || !istartsWith(line.substr(i), "TO:")) return std::nullopt;
  i += 3;
  while (i < n && space(line[i])) ++i;
  if (i + 1 >= n || line[i] != '<' || line[i + 1] != '\'') return std::nullopt;
  const size_t open = i + 1;  // the opening quote
  const size_t p = open + 1;  // group 2 starts here
  size_t run = p;
  while (run < n && !space(line[run])) ++run;
  // Greedy group 2: the last "'>" inside the run, at least one byte after p.
  for (size_t q = run >= 2 ? run - 2 : 0; q > p && q + 1 < run; --q) {
    if (line[q] == '\'' && line[q + 1] == '>') {
      if (address) *address = std::string(line.substr(p, q - p));
      std::string out;
      out.reserve(n - 2);
      out.append(line.substr(0, open));
      out.append(line.substr(p, q - p));
      out.append(line.substr(q + 1));
      return out;
    }
  }
  return std::nullopt;
}

std::optional<std::string> replaceMailFromPath(std::string_view line, std::string_view sender, std::string* old_path) {
  Command cmd = parseCommand(line);
  if (cmd.verb != Verb::Mail) return std::nullopt;
  auto arg = parseMailFrom(cmd.args);
  if (!arg || (arg->bracketed && arg->path.empty()) || iequals(arg->path, sender)) return std::nullopt;
  if (old_path) *old_path = std::string(arg->path);
  // Views into `line`: splice the new path in place of the old one.
  const size_t begin = static_cast<size_t>(arg->path.data() - line.data());
  const size_t end = begin + arg->path.size();
  std::string out(line.substr(0, begin));
  if (arg->bracketed) {
    out.append(sender);
  } else {
    out += '<';
    out.append(sender);
    out += '>';
  }
  out.append(line.substr(end));
  return out;
}

bool isIpv4(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (true) {
    size_t start = i;
    int value = 0;
    while (i < s.size() && isDigit(s[i]) && i - start < 3) value = value * 10 + (s[i++] - '0');
    size_t len = i - start;
    if (len == 0 || value > 255 || (len > 1 && s[start] == '0')) return false;
    ++parts;
    if (i == s.size()) return parts == 4;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
}

bool isIpv6(std::string_view s) {
  if (s.size() < 2 || s.size() > 45) return false;
  int groups = 0;
  bool compressed = false;
  size_t i = 0;
  if (s.substr(0, 2) == "::") {
    compressed = true;
    i = 2;
    if (i == s.size()) return true;
  } else if (s.front() == ':') {
    return false;
  }
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && isHex(s[i]) && i - start < 5) ++i;
    size_t len = i - start;
    if (i < s.size() && s[i] == '.') {
      // Embedded IPv4 in the last 32 bits.
      if (!isIpv4(s.substr(start))) return false;
      groups += 2;
      i = s.size();
      break;
    }
    if (len == 0 || len > 4) return false;
    ++groups;
    if (i == s.size()) break;
    if (s[i] != ':') return false;
    ++i;
    if (i < s.size() && s[i] == ':') {
      if (compressed) return false;
      compressed = true;
      ++i;
      if (i == s.size()) break;
    } else if (i == s.size()) {
      return false;  // trailing single ':'
    }
  }
  return compressed ? groups <= 7 : groups == 8;
}

bool isAddressLiteral(std::string_view s) {
  if (s.size() < 3 || s.front() != '[' || s.back() != ']') return false;
  std::string_view inner = s.substr(1, s.size() - 2);
  if (istartsWith(inner, "IPv6:")) return isIpv6(inner.substr(5));
  return isIpv4(inner);
}

bool isFqdn(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  if (iequals(s, "localhost") || iequals(s, "localhost.localdomain")) return false;
  for (std::string_view bad : {".local", ".localdomain", ".lan", ".home", ".internal"})
    if (endsWithLabel(s, bad)) return false;
  bool dot = false;
  bool all_numeric = true;
  size_t label_start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '.') {
      size_t len = i - label_start;
      if (len == 0 || len > 63) return false;
      if (s[label_start] == '-' || s[i - 1] == '-') return false;
      if (i < s.size()) dot = true;
      label_start = i + 1;
      continue;
    }
    char c = s[i];
    if (isAlpha(c) || c == '-') {
      all_numeric = false;
    } else if (!isDigit(c)) {
      return false;
    }
  }
  return dot && !all_numeric;
}

std::optional<std::string> addressLiteralFor(std::string_view ip) {
  if (isIpv4(ip)) return "[" + std::string(ip) + "]";
  if (isIpv6(ip)) return "[IPv6:" + std::string(ip) + "]";
  return std::nullopt;
}

std::optional<std::string> xtextEncode(std::string_view v) {
  if (!isLineSafe(v)) return std::nullopt;
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(v.size());
  for (char ch : v) {
    auto c = static_cast<unsigned char>(ch);
    if (c >= 33 && c <= 126 && c != '+' && c != '=') {
      out += static_cast<char>(c);
    } else {
      out += '+';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::optional<std::string> xtextDecode(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    auto c = static_cast<unsigned char>(v[i]);
    if (c == '+') {
      if (i + 2 >= v.size()) return std::nullopt;
      if (!isUpperHex(v[i + 1]) || !isUpperHex(v[i + 2])) return std::nullopt;
      out += static_cast<char>(hexVal(v[i + 1]) * 16 + hexVal(v[i + 2]));
      i += 2;
    } else if (c >= 33 && c <= 126 && c != '=') {
      out += static_cast<char>(c);
    } else {
      return std::nullopt;
    }
  }
  return out;
}

std::optional<std::string> formatCommand(std::string_view verb, std::string_view arg) {
  if (verb.empty() || !isLineSafe(verb) || !isLineSafe(arg)) return std::nullopt;
  std::string out(verb);
  if (!arg.empty()) {
    out += ' ';
    out += arg;
  }
  out += "\r\n";
  return out;
}

std::optional<std::string> formatXclient(const XclientParams& p, const std::vector<std::string>& allowed) {
  auto permitted = [&](std::string_view attr) {
    for (const auto& a : allowed)
      if (iequals(a, attr)) return true;
    return false;
  };
  std::string line = "XCLIENT";
  bool any = false;
  auto add = [&](std::string_view attr, std::string_view raw) -> bool {
    if (!permitted(attr)) return true;
    auto x = xtextEncode(raw);
    if (!x) return false;
    line += ' ';
    line += attr;
    line += '=';
    line += *x;
    any = true;
    return true;
  };
  if (!p.addr.empty()) {
    std::string addr = isIpv6(p.addr) ? "IPV6:" + p.addr : p.addr;
    if (!add("ADDR", addr)) return std::nullopt;
  }
  if (p.port != 0 && !add("PORT", std::to_string(p.port))) return std::nullopt;
  if (!add("NAME", "[UNAVAILABLE]")) return std::nullopt;
  if (!p.helo.empty() && !add("HELO", p.helo)) return std::nullopt;
  if (!add("PROTO", p.esmtp ? "ESMTP" : "SMTP")) return std::nullopt;
  if (!any) return std::nullopt;
  line += "\r\n";
  return line;
}

}  // namespace mailshim::proto::smtp
