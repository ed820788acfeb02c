// SMTP reply codec. See smtp_reply.h. No I/O.
#include "protocols/smtp/smtp_reply.h"

#include "protocols/common/text.h"

namespace mailshim::proto::smtp {
namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }

bool validCodeDigits(std::string_view c) {
  return c.size() == 3 && c[0] >= '2' && c[0] <= '5' && isDigit(c[1]) && isDigit(c[2]);
}

// RFC 5321 textstring plus 8-bit bytes: no controls except TAB.
bool validText(std::string_view t) {
  for (char ch : t) {
    auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

size_t digitRun(std::string_view s, size_t pos, size_t max) {
  size_t n = 0;
  while (pos + n < s.size() && n < max && isDigit(s[pos + n])) ++n;
  return n;
}

}  // namespace

std::string_view Reply::lastText() const {
  return lines.empty() ? std::string_view{} : std::string_view(lines.back());
}

size_t enhancedCodeLength(std::string_view t) {
  if (t.size() < 5 || (t[0] != '2' && t[0] != '4' && t[0] != '5') || t[1] != '.') return 0;
  size_t pos = 2;
  size_t n = digitRun(t, pos, 3);
  if (n == 0 || pos + n >= t.size() || t[pos + n] != '.') return 0;
  pos += n + 1;
  n = digitRun(t, pos, 3);
  if (n == 0) return 0;
  pos += n;
  if (pos < t.size() && t[pos] != ' ') return 0;
  return pos;
}

void ReplyParser::feed(std::string_view bytes) {
  if (failed()) return;
  compact();
  buf_.append(bytes);
}

void ReplyParser::compact() {
  if (start_ > 0) {
    buf_.erase(0, start_);
    scan_ -= start_;
    start_ = 0;
  }
}

void ReplyParser::clear() {
  buf_.clear();
  start_ = scan_ = 0;
  cur_ = Reply{};
}

ReplyParser::Status ReplyParser::fail(std::string msg) {
  // The buffer is kept so that pending() still shows the unparsed bytes.
  error_ = std::move(msg);
  cur_ = Reply{};
  return Status::Error;
}

ReplyParser::Status ReplyParser::next(Reply& out) {
  if (failed()) return Status::Error;
  for (;;) {
    std::string_view rest = std::string_view(buf_).substr(scan_);
    size_t lf = rest.find('\n');
    if (lf == std::string_view::npos) {
      if (rest.size() > max_line_ + 1) return fail("reply line longer than " + std::to_string(max_line_) + " bytes");
      return Status::NeedMore;
    }
    std::string_view line = rest.substr(0, lf);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > max_line_) return fail("reply line longer than " + std::to_string(max_line_) + " bytes");
    if (line.size() < 3 || !validCodeDigits(line.substr(0, 3)))
      return fail("malformed reply line: " + logSafe(line, 80));
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    bool more = false;
    std::string_view text;
    if (line.size() > 3) {
      if (line[3] == '-') {
        more = true;
      } else if (line[3] != ' ') {
        return fail("malformed reply line: " + logSafe(line, 80));
      }
      text = line.substr(4);
    }
    if (!validText(text)) return fail("control character in reply: " + logSafe(line, 80));
    if (!cur_.lines.empty() && code != cur_.code)
      return fail("reply code changed inside a multi-line reply: " + logSafe(line, 80));
    if (cur_.lines.size() + 1 > max_lines_)
      return fail("reply longer than " + std::to_string(max_lines_) + " lines");
    if (cur_.lines.empty()) {
      cur_.code = code;
      size_t e = enhancedCodeLength(text);
      if (e > 0 && text[0] == line[0]) cur_.enhanced = std::string(text.substr(0, e));
    }
    cur_.lines.emplace_back(text);
    scan_ += lf + 1;
    if (!more) {
      cur_.raw = buf_.substr(start_, scan_ - start_);
      start_ = scan_;
      out = std::move(cur_);
      cur_ = Reply{};
      return Status::Reply;
    }
  }
}

std::optional<int> parseReplyCode(std::string_view code) {
  if (!validCodeDigits(code)) return std::nullopt;
  return (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
}

std::optional<std::string> formatReply(int code, std::string_view text) {
  if (code < 200 || code > 599 || !isLineSafe(text)) return std::nullopt;
  std::string out = std::to_string(code);
  if (!text.empty()) {
    out += ' ';
    out += text;
  }
  out += "\r\n";
  return out;
}

std::optional<std::string> formatMultiline(int code, const std::vector<std::string>& lines) {
  if (code < 200 || code > 599 || lines.empty()) return std::nullopt;
  std::string c = std::to_string(code);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!isLineSafe(lines[i])) return std::nullopt;
    out += c;
    out += (i + 1 == lines.size()) ? ' ' : '-';
    out += lines[i];
    out += "\r\n";
  }
  return out;
}

}  // namespace mailshim::proto::smtp
