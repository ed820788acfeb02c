// IMAP command parser and encoders. See imap_parser.h. RFC 9051 section 9,
// RFC 7888 (LITERAL+), RFC 2971 (ID lists). No I/O.
#include "protocols/imap/imap_parser.h"

#include <algorithm>

#include "protocols/common/secret.h"
#include "protocols/common/text.h"

namespace mailshim::proto::imap {
namespace {

// A literal size is tracked up to this value; anything larger is "too large"
// whatever the configured bound, and the arithmetic cannot overflow.
constexpr uint64_t kLiteralSizeCeiling = 1ull << 40;

// tag = 1*<any ASTRING-CHAR except "+">: printable ASCII without
// atom-specials ( ) { SP % * " \ and without "+"; "]" is allowed.
bool isTagChar(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u <= 0x20 || u >= 0x7f) return false;
  switch (c) {
    case '(':
    case ')':
    case '{':
    case '%':
    case '*':
    case '"':
    case '\\':
    case '+':
      return false;
    default:
      return true;
  }
}

// Atoms are read leniently, like Dovecot: anything but SP, controls, DEL,
// parentheses and the double quote. 8-bit octets are kept (UTF-8 user names).
bool isAtomChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u != 0x7f && c != '(' && c != ')' && c != '"';
}

void zeroPrefix(std::string& s, size_t n) { std::fill(s.begin(), s.begin() + static_cast<long>(n), '\0'); }

}  // namespace

bool ImapArg::isNil() const { return kind == Kind::Atom && iequals(value, "NIL"); }

void ImapCommand::wipe() {
  for (auto& a : args) {
    proto::wipe(a.value);
    for (auto& i : a.items) proto::wipe(i.value);
  }
  args.clear();
}

std::string_view imapParseErrorText(ImapParseError e) {
  switch (e) {
    case ImapParseError::InvalidTag:
      return "Invalid tag.";
    case ImapParseError::MissingCommand:
      return "Missing command.";
    case ImapParseError::Syntax:
      return "Error in IMAP command: syntax error.";
    case ImapParseError::LineTooLong:
      return "Command line too long.";
    case ImapParseError::LiteralTooLarge:
      return "[TOOBIG] Literal too large.";
    case ImapParseError::TooManyArguments:
      return "Too many arguments.";
  }
  return "Error in IMAP command.";
}

ImapParser::~ImapParser() {
  proto::wipe(buf_);
  proto::wipe(tok_);
  cmd_.wipe();
}

void ImapParser::feed(std::string_view bytes) {
  compact();
  buf_.append(bytes);
}

void ImapParser::compact() {
  if (pos_ == 0) return;
  zeroPrefix(buf_, pos_);  // consumed commands may hold passwords
  buf_.erase(0, pos_);
  pos_ = 0;
}

void ImapParser::clear() {
  proto::wipe(buf_);
  pos_ = 0;
  state_ = State::Start;
  resetCommand();
}

void ImapParser::abortCommand() {
  resetCommand();
  state_ = State::Start;
}

std::string ImapParser::takePending() {
  std::string out = buf_.substr(pos_);
  clear();
  return out;
}

void ImapParser::resetCommand() {
  cmd_.wipe();
  cmd_.tag.clear();
  cmd_.name.clear();
  resetScan();
}

void ImapParser::resetScan() {
  stack_.clear();
  stack_.emplace_back();
  proto::wipe(tok_);
  line_bytes_ = 0;
  literal_total_ = 0;
  literal_size_ = 0;
  literal_digits_ = 0;
  literal_plus_ = false;
  arg_count_ = 0;
  tag_done_ = false;
}

ImapParser::Status ImapParser::fail(ImapParseError e, bool at_line_end) {
  error_ = e;
  error_tag_ = tag_done_ ? cmd_.tag : "*";
  error_fatal_ = (e == ImapParseError::LiteralTooLarge && literal_plus_);
  resetCommand();
  state_ = at_line_end ? State::Start : State::Skip;
  return Status::Error;
}

bool ImapParser::finishArg(ImapArg&& arg) {
  if (++arg_count_ > limits_.max_args) return false;
  stack_.back().push_back(std::move(arg));
  return true;
}

bool ImapParser::openList() {
  if (stack_.size() > limits_.max_depth) return false;
  stack_.emplace_back();
  return true;
}

bool ImapParser::closeList() {
  if (stack_.size() <= 1) return false;
  ImapArg list;
  list.kind = ImapArg::Kind::List;
  list.items = std::move(stack_.back());
  stack_.pop_back();
  return finishArg(std::move(list));
}

// Called on the LF that ends the command line (after the last literal).
ImapParser::Status ImapParser::endOfLine() {
  if (!tag_done_) {
    // "tag" alone: treat the word as the tag so the client can match the BAD.
    cmd_.tag = tok_;
    tag_done_ = true;
    return fail(ImapParseError::MissingCommand, true);
  }
  if (cmd_.name.empty()) return fail(ImapParseError::MissingCommand, true);
  if (stack_.size() != 1) return fail(ImapParseError::Syntax, true);
  cmd_.args = std::move(stack_.front());
  resetScan();
  state_ = State::Start;
  return Status::Command;
}

ImapParser::Status ImapParser::next() {
  while (pos_ < buf_.size()) {
    if (state_ == State::LiteralData) {
      size_t n = std::min<uint64_t>(buf_.size() - pos_, literal_size_);
      tok_.append(buf_, pos_, n);
      pos_ += n;
      literal_size_ -= n;
      if (literal_size_ == 0) {
        ImapArg a{ImapArg::Kind::Literal, std::move(tok_), {}};
        tok_.clear();
        if (!finishArg(std::move(a))) return fail(ImapParseError::TooManyArguments, false);
        state_ = State::AfterArg;
      }
      continue;
    }
    if (state_ == State::Skip) {
      size_t lf = buf_.find('\n', pos_);
      if (lf == std::string::npos) {
        pos_ = buf_.size();
        break;
      }
      pos_ = lf + 1;
      state_ = State::Start;
      continue;
    }

    const char c = buf_[pos_++];
    const bool lf = (c == '\n');
    if (c != '\n' && c != '\r' && ++line_bytes_ > limits_.max_line_bytes)
      return fail(ImapParseError::LineTooLong, false);

    switch (state_) {
      case State::Start:
        resetCommand();
        if (lf) break;  // empty line: ignored
        if (c == '\r') {
          state_ = State::Cr;
          break;
        }
        if (!isTagChar(c)) return fail(ImapParseError::InvalidTag, false);
        tok_ = c;
        line_bytes_ = 1;
        state_ = State::Tag;
        break;

      case State::Tag:
        if (isTagChar(c)) {
          tok_ += c;
        } else if (c == ' ') {
          cmd_.tag = std::move(tok_);
          tok_.clear();
          tag_done_ = true;
          state_ = State::Name;
        } else if (c == '\r') {
          state_ = State::Cr;
        } else if (lf) {
          return endOfLine();
        } else {
          return fail(ImapParseError::InvalidTag, false);
        }
        break;

      case State::Name:
        if (c == ' ') {
          if (!tok_.empty()) {
            cmd_.name = std::move(tok_);
            tok_.clear();
            state_ = State::ArgStart;
          }
        } else if (c == '\r' || lf) {
          if (!tok_.empty()) cmd_.name = std::move(tok_);
          tok_.clear();
          if (lf) return endOfLine();
          state_ = State::Cr;
        } else if (isAtomChar(c) && static_cast<unsigned char>(c) < 0x80) {
          tok_ += c;
        } else {
          return fail(ImapParseError::Syntax, false);
        }
        break;

      case State::ArgStart:
        if (c == ' ') break;
        if (c == '"') {
          tok_.clear();
          state_ = State::Quoted;
        } else if (c == '{') {
          literal_size_ = 0;
          literal_digits_ = 0;
          literal_plus_ = false;
          state_ = State::LiteralSize;
        } else if (c == '(') {
          if (!openList()) return fail(ImapParseError::Syntax, false);
        } else if (c == ')') {
          if (!closeList()) return fail(ImapParseError::Syntax, false);
          state_ = State::AfterArg;
        } else if (c == '\r') {
          state_ = State::Cr;
        } else if (lf) {
          return endOfLine();
        } else if (isAtomChar(c)) {
          tok_ = c;
          state_ = State::Atom;
        } else {
          return fail(ImapParseError::Syntax, false);
        }
        break;

      case State::Atom:
        if (isAtomChar(c)) {
          tok_ += c;
          break;
        }
        if (c != ' ' && c != ')' && c != '\r' && !lf) return fail(ImapParseError::Syntax, false);
        {
          ImapArg a{ImapArg::Kind::Atom, std::move(tok_), {}};
          tok_.clear();
          if (!finishArg(std::move(a))) return fail(ImapParseError::TooManyArguments, lf);
        }
        if (c == ' ') {
          state_ = State::ArgStart;
        } else if (c == ')') {
          if (!closeList()) return fail(ImapParseError::Syntax, false);
          state_ = State::AfterArg;
        } else if (c == '\r') {
          state_ = State::Cr;
        } else {
          return endOfLine();
        }
        break;

      case State::Quoted:
        if (c == '"') {
          ImapArg a{ImapArg::Kind::Quoted, std::move(tok_), {}};
          tok_.clear();
          if (!finishArg(std::move(a))) return fail(ImapParseError::TooManyArguments, false);
          state_ = State::AfterArg;
        } else if (c == '\\') {
          state_ = State::QuotedEscape;
        } else if (c == '\r' || lf || c == '\0') {
          return fail(ImapParseError::Syntax, lf);
        } else {
          tok_ += c;
        }
        break;

      case State::QuotedEscape:
        // RFC 9051 allows only \\ and \"; like Dovecot, any other escaped
        // octet stands for itself. Line ends and NUL never.
        if (c == '\r' || lf || c == '\0') return fail(ImapParseError::Syntax, lf);
        tok_ += c;
        state_ = State::Quoted;
        break;

      case State::LiteralSize:
        if (c >= '0' && c <= '9') {
          ++literal_digits_;
          literal_size_ =
              std::min<uint64_t>(literal_size_ * 10 + static_cast<uint64_t>(c - '0'), kLiteralSizeCeiling);
        } else if (c == '+' && literal_digits_ > 0) {
          literal_plus_ = true;
          state_ = State::LiteralClose;
        } else if (c == '}' && literal_digits_ > 0) {
          literal_cr_ = false;
          state_ = State::LiteralLf;
        } else {
          return fail(ImapParseError::Syntax, lf);
        }
        break;

      case State::LiteralClose:
        if (c != '}') return fail(ImapParseError::Syntax, lf);
        literal_cr_ = false;
        state_ = State::LiteralLf;
        break;

      case State::LiteralLf:
        if (c == '\r' && !literal_cr_) {  // "{n}\r\n"; a bare LF is accepted like elsewhere
          literal_cr_ = true;
          break;
        }
        if (!lf) return fail(ImapParseError::Syntax, false);
        if (literal_size_ > limits_.max_literal_bytes ||
            literal_total_ + literal_size_ > limits_.max_literal_bytes)
          return fail(ImapParseError::LiteralTooLarge, true);
        literal_total_ += literal_size_;
        tok_.clear();
        if (literal_size_ == 0) {
          if (!finishArg(ImapArg{ImapArg::Kind::Literal, {}, {}}))
            return fail(ImapParseError::TooManyArguments, false);
          state_ = State::AfterArg;
        } else {
          state_ = State::LiteralData;
        }
        if (!literal_plus_) return Status::NeedContinuation;
        break;

      case State::AfterArg:
        if (c == ' ') {
          state_ = State::ArgStart;
        } else if (c == ')') {
          if (!closeList()) return fail(ImapParseError::Syntax, false);
        } else if (c == '\r') {
          state_ = State::Cr;
        } else if (lf) {
          return endOfLine();
        } else {
          return fail(ImapParseError::Syntax, false);
        }
        break;

      case State::Cr:
        if (!lf) return fail(ImapParseError::Syntax, false);  // bare CR
        if (!tag_done_ && tok_.empty()) {                     // empty line
          state_ = State::Start;
          break;
        }
        return endOfLine();

      case State::LiteralData:
      case State::Skip:
        break;  // handled above
    }
  }
  compact();
  return Status::NeedMore;
}

ImapParser::LineStatus ImapParser::nextLine(std::string& line) {
  for (;;) {
    size_t lf = buf_.find('\n', pos_);
    if (state_ == State::Skip) {
      if (lf == std::string::npos) {
        pos_ = buf_.size();
        return LineStatus::NeedMore;
      }
      pos_ = lf + 1;
      state_ = State::Start;
      continue;
    }
    if (lf == std::string::npos) {
      // A trailing CR may be the first half of the line end: not counted.
      size_t body = buf_.size() - pos_ - (buf_.size() > pos_ && buf_.back() == '\r' ? 1 : 0);
      if (body > limits_.max_line_bytes) {
        pos_ = buf_.size();
        state_ = State::Skip;
        return LineStatus::TooLong;
      }
      return LineStatus::NeedMore;
    }
    size_t len = lf - pos_;
    if (len > 0 && buf_[lf - 1] == '\r') --len;
    size_t start = pos_;
    pos_ = lf + 1;
    if (len > limits_.max_line_bytes) return LineStatus::TooLong;
    proto::wipe(line);
    line.assign(buf_, start, len);
    return LineStatus::Line;
  }
}

// --- responses -------------------------------------------------------------

std::optional<ImapResponseLine> parseResponseLine(std::string_view line) {
  ImapResponseLine r;
  if (line.empty()) return std::nullopt;
  if (line[0] == '+') {
    r.kind = ImapResponseLine::Kind::Continuation;
    r.rest = line.substr(1);
    if (!r.rest.empty() && r.rest[0] == ' ') r.rest.remove_prefix(1);
    return r;
  }
  std::string_view rest = line;
  std::string_view first = nextWord(rest);
  if (first.empty()) return std::nullopt;
  if (first == "*") {
    r.kind = ImapResponseLine::Kind::Untagged;
  } else {
    r.kind = ImapResponseLine::Kind::Tagged;
    r.tag = first;
  }
  r.word = nextWord(rest);
  if (r.word.empty()) return std::nullopt;
  r.rest = rest;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close != std::string_view::npos) r.code = rest.substr(1, close - 1);
  }
  return r;
}

std::vector<std::string> parseCapabilities(std::string_view list) {
  std::vector<std::string> caps;
  while (!list.empty()) {
    std::string_view w = nextWord(list);
    if (!w.empty()) caps.push_back(asciiUpper(w));
  }
  return caps;
}

std::string responseTextOr(std::string_view text, std::string_view fallback) {
  if (text.empty()) return std::string(fallback);
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return std::string(fallback);
  }
  return std::string(text);
}

std::optional<uint64_t> trailingLiteral(std::string_view line) {
  if (line.size() < 3 || line.back() != '}') return std::nullopt;
  size_t open = line.rfind('{');
  if (open == std::string_view::npos) return std::nullopt;
  std::string_view digits = line.substr(open + 1, line.size() - open - 2);
  if (!digits.empty() && digits.back() == '+') digits.remove_suffix(1);
  if (digits.empty() || digits.size() > 12) return std::nullopt;
  uint64_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

// --- encoders --------------------------------------------------------------

std::optional<std::string> quoteString(std::string_view v) {
  std::string out;
  out.reserve(v.size() + 2);
  out += '"';
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) {
      proto::wipe(out);
      return std::nullopt;
    }
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

bool appendAstring(std::vector<std::string>& segments, std::string_view v, bool literal_plus) {
  if (!isLineSafe(v)) return false;
  if (segments.empty()) segments.emplace_back();
  if (auto q = quoteString(v)) {
    segments.back() += *q;
    proto::wipe(*q);
    return true;
  }
  std::string header = "{" + std::to_string(v.size()) + (literal_plus ? "+}\r\n" : "}\r\n");
  segments.back() += header;
  if (literal_plus) {
    segments.back() += v;
  } else {
    segments.emplace_back(v);
  }
  return true;
}

}  // namespace mailshim::proto::imap
