// Header block of DATA content. See smtp_header.h. RFC 5322 sections 2.1,
// 2.2, 3.4. No I/O.
#include "protocols/smtp/smtp_header.h"

#include "protocols/common/rfc2047.h"

namespace mailshim::proto::smtp {
namespace {

bool isWsp(char c) { return c == ' ' || c == '\t'; }

std::string_view trimWsp(std::string_view s) {
  while (!s.empty() && isWsp(s.front())) s.remove_prefix(1);
  while (!s.empty() && isWsp(s.back())) s.remove_suffix(1);
  return s;
}

// Drops the CR and LF of folding and of the final line end.
std::string unfold(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value)
    if (c != '\r' && c != '\n') out += c;
  return out;
}

bool isLdh(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

}  // namespace

HeaderCollector::Status HeaderCollector::append(std::string_view bytes) {
  if (status_ != Status::NeedMore) {
    buf_.append(bytes);
    return status_;
  }
  buf_.append(bytes);
  while (status_ == Status::NeedMore) {
    size_t lf = buf_.find('\n', scan_);
    if (lf == std::string::npos) break;
    size_t end = lf + 1;
    if (end > max_) {
      status_ = Status::TooLarge;
      break;
    }
    std::string_view line = std::string_view(buf_).substr(scan_, end - scan_);
    std::string_view text = line.substr(0, line.size() - 1);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (text.empty()) {
      status_ = Status::Complete;  // the empty line ending the header section
      break;
    }
    if (isWsp(text.front())) {
      if (!seen_field_) {
        status_ = Status::Complete;  // a continuation with nothing to continue: body
        break;
      }
    } else if (isHeaderFieldLine(text)) {
      seen_field_ = true;
    } else {
      status_ = Status::Complete;  // first non-header line starts the body
      break;
    }
    header_end_ = end;
    scan_ = end;
  }
  if (status_ == Status::NeedMore && buf_.size() > max_) status_ = Status::TooLarge;
  return status_;
}

void HeaderCollector::finish() {
  if (status_ == Status::NeedMore) status_ = Status::Complete;
}

std::string HeaderCollector::take() {
  std::string out = std::move(buf_);
  buf_.clear();
  scan_ = 0;
  header_end_ = 0;
  seen_field_ = false;
  status_ = Status::NeedMore;
  return out;
}

bool isHeaderFieldLine(std::string_view line) {
  size_t i = 0;
  while (i < line.size()) {
    auto c = static_cast<unsigned char>(line[i]);
    if (c < 33 || c > 126 || c == ':') break;
    ++i;
  }
  if (i == 0) return false;
  while (i < line.size() && isWsp(line[i])) ++i;
  return i < line.size() && line[i] == ':';
}

std::vector<HeaderField> splitHeaderFields(std::string_view header) {
  std::vector<HeaderField> fields;
  size_t pos = 0;
  while (pos < header.size()) {
    size_t lf = header.find('\n', pos);
    size_t end = lf == std::string_view::npos ? header.size() : lf + 1;
    std::string_view line = header.substr(pos, end - pos);
    if (isWsp(line.front()) && !fields.empty()) {
      fields.back().end = end;
    } else {
      HeaderField f;
      f.begin = pos;
      f.end = end;
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) colon = line.size();
      f.name = line.substr(0, colon);
      while (!f.name.empty() && isWsp(f.name.back())) f.name.remove_suffix(1);
      fields.push_back(f);
    }
    pos = end;
  }
  for (auto& f : fields) {
    std::string_view raw = header.substr(f.begin, f.end - f.begin);
    size_t colon = raw.find(':');
    f.value = colon == std::string_view::npos ? std::string_view() : raw.substr(colon + 1);
  }
  return fields;
}

bool isPlainAddress(std::string_view addr) {
  if (addr.empty() || addr.size() > 254) return false;
  size_t at = addr.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == addr.size()) return false;
  std::string_view local = addr.substr(0, at);
  std::string_view domain = addr.substr(at + 1);
  if (local.size() > 64 || local.front() == '.' || local.back() == '.') return false;
  char prev = 'x';
  for (char c : local) {
    if (c == '.') {
      if (prev == '.') return false;
    } else if (!rfc2047::isAtext(c)) {
      return false;
    }
    prev = c;
  }
  size_t label = 0;
  prev = '.';
  for (char c : domain) {
    if (c == '.') {
      if (label == 0 || prev == '-') return false;
      label = 0;
    } else {
      if (!isLdh(c) || (label == 0 && c == '-') || ++label > 63) return false;
    }
    prev = c;
  }
  return label > 0 && prev != '-';
}

std::optional<std::string> bareMailboxAddress(std::string_view value) {
  std::string flat = unfold(value);
  std::string_view v = trimWsp(flat);
  if (v.empty()) return std::nullopt;
  std::string_view addr;
  if (v.front() == '<' || v.starts_with("\"\"")) {
    if (v.front() == '"') v = trimWsp(v.substr(2));
    if (v.size() < 2 || v.front() != '<' || v.back() != '>') return std::nullopt;
    addr = trimWsp(v.substr(1, v.size() - 2));
  } else {
    addr = v;
  }
  if (!isPlainAddress(addr)) return std::nullopt;
  return std::string(addr);
}

std::string informationalValue(std::string_view value, size_t max) {
  std::string flat = unfold(value);
  std::string out;
  out.reserve(flat.size() < max ? flat.size() : max);
  bool space = false;
  for (char ch : trimWsp(flat)) {
    auto c = static_cast<unsigned char>(ch);
    if (isWsp(ch)) {
      space = true;
      continue;
    }
    if (space) {
      out += ' ';
      space = false;
    }
    out += (c < 0x20 || c == 0x7f) ? '?' : ch;
  }
  if (out.size() > max) {
    size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(out[n]) & 0xC0) == 0x80) --n;
    out.resize(n);
  }
  return out;
}

}  // namespace mailshim::proto::smtp
