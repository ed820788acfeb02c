// SmtpRelayFilter. See smtp_relay_filter.h. RFC 5321 sections 3.3, 4.1.1,
// 4.5.2; RFC 2920; RFC 3030; RFC 5322 section 3.4; RFC 2047. No I/O.
#include "protocols/smtp/smtp_relay_filter.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "protocols/common/rfc2047.h"
#include "protocols/common/text.h"
#include "protocols/smtp/smtp.h"

namespace mailshim::proto::smtp {
namespace {

constexpr std::string_view kNotRecognized = "502 5.5.2 Error: command not recognized\r\n";


// "BDAT <size> [LAST]": the chunk size and whether it is the last one.
bool parseBdat(std::string_view args, uint64_t& size, bool& last) {
  std::string_view rest = args;
  std::string_view num = nextWord(rest);
  if (num.empty() || num.size() > 18) return false;
  uint64_t n = 0;
  for (char c : num) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (rest.empty()) {
    last = false;
  } else if (iequals(rest, "LAST")) {
    last = true;
  } else {
    return false;
  }
  size = n;
  return true;
}

std::string_view trimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}


// Position of the next CR or LF at or after `from`, or npos. (string_view's
// find_first_of calls memchr on the two-byte set once per input byte; this is
// the DATA hot path.)
size_t findLineEnd(std::string_view in, size_t from) {
  const char* p = in.data();
  size_t i = from;
  const size_t n = in.size();
#if defined(__SSE2__)
  // 16 bytes per step: a byte loop costs about a cycle per byte of message.
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  for (; i + 16 <= n; i += 16) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const int m = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(b, cr), _mm_cmpeq_epi8(b, lf)));
    if (m) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(m)));
  }
#endif
  for (; i < n; ++i)
    if (p[i] == '\r' || p[i] == '\n') return i;
  return std::string_view::npos;
}

// Length of the clean content at the start of `in` when the scanner is
// mid-line: whole CRLF-terminated lines, none starting with "." and no bare CR
// or LF, ending just before a CR or LF (or at the end of `in`). Only the bytes
// the strict state machine would copy unchanged are covered; the next line
// end or dot is left to it.
size_t cleanSpan(std::string_view in) {
  size_t k = 0;
  for (;;) {
    size_t j = findLineEnd(in, k);
    if (j == std::string_view::npos) return in.size();
    // "\r\n" followed by an ordinary byte (not ".", CR or LF): still clean.
    if (in[j] != '\r' || j + 2 >= in.size() || in[j + 1] != '\n') return j;
    const char next = in[j + 2];
    if (next == '.' || next == '\r' || next == '\n') return j;
    k = j + 2;
  }
}

}  // namespace

SmtpRelayFilter::SmtpRelayFilter(const SessionContext& ctx)
    : name_(isPrintableToken(ctx.server_name) ? ctx.server_name : "localhost"),
      quirks_(ctx.quirks),
      retired_(ctx.retired_quirks),
      retired_message_(isLineSafe(ctx.retired_message) ? ctx.retired_message : std::string()),
      raw_user_(ctx.user),
      directory_(ctx.directory),
      fallback_local_part_(ctx.display_name_fallback_local_part),
      max_header_bytes_(ctx.max_header_bytes),
      parser_(kMaxReplyLine, 1000),
      header_(ctx.max_header_bytes) {
  if (isPlainAddress(ctx.user)) user_ = ctx.user;
}

Actions SmtpRelayFilter::take() {
  if (!up_.empty()) {
    acts_.push_back(SendUpstream{std::move(up_)});
    up_.clear();
  }
  if (!down_.empty()) {
    acts_.push_back(SendDownstream{std::move(down_)});
    down_.clear();
  }
  if (close_) {
    acts_.push_back(Close{*close_});
    close_.reset();
  }
  Actions out = std::move(acts_);
  acts_.clear();
  return out;
}

Actions SmtpRelayFilter::onDownstreamData(std::string_view bytes) {
  if (mode_ == Mode::Closed) return {};
  if (opaque_) {
    up_.append(bytes);
    return take();
  }
  if (held_.empty()) {
    // Usual case: nothing held over, so scan the caller's bytes in place and
    // keep only what is left (a partial line, bytes waiting for a DATA reply).
    held_.assign(bytes.substr(scanClient(bytes)));
  } else {
    held_.append(bytes);
    processClient();
  }
  if (mode_ == Mode::WaitDataReply && held_.size() > kMaxHeldBytes) {
    acts_.push_back(LogNote{LogNote::Level::Warn, "client sent more than " + std::to_string(kMaxHeldBytes) +
                                                      " bytes before the backend answered DATA"});
    down_ += "421 4.7.0 " + name_ + " Error: too much pipelined input\r\n";
    close_ = CloseReason::LineTooLong;
    held_.clear();
    mode_ = Mode::Closed;
  }
  return take();
}

void SmtpRelayFilter::processClient() { held_.erase(0, scanClient(held_)); }

size_t SmtpRelayFilter::scanClient(std::string_view data) {
  size_t pos = 0;
  while (pos < data.size()) {
    std::string_view rest = data.substr(pos);
    if (mode_ == Mode::WaitDataReply || mode_ == Mode::Closed) break;
    if (mode_ == Mode::Command) {
      if (swallow_lf_) {
        // smtp.bare_lf: the end-of-data line ended in CR, already sent as
        // CRLF; an LF right after it is part of that line end.
        swallow_lf_ = false;
        if (rest.front() == '\n') {
          ++pos;
          continue;
        }
      }
      size_t lf = rest.find('\n');
      if (lf == std::string_view::npos) {
        if (rest.size() > kMaxCommandLine) {
          // Over-long: stream it uninterpreted; the backend answers it once.
          up_.append(rest);
          pos = data.size();
          expect(Expect::Normal);
          mode_ = Mode::LongLine;
        }
        break;
      }
      std::string_view line = rest.substr(0, lf + 1);
      pos += lf + 1;
      if (line.size() > kMaxCommandLine + 2) {
        up_.append(line);
        expect(Expect::Normal);
      } else {
        handleCommandLine(line);
      }
      continue;
    }
    if (mode_ == Mode::LongLine) {
      size_t lf = rest.find('\n');
      size_t n = lf == std::string_view::npos ? rest.size() : lf + 1;
      up_.append(rest.substr(0, n));
      pos += n;
      if (lf != std::string_view::npos) mode_ = Mode::Command;
      continue;
    }
    if (mode_ == Mode::BdatChunk) {
      // Length-framed: no end-of-data to confuse, no header rewrite (it would
      // change the chunk size). Passed through untouched.
      size_t n = rest.size() < bdat_left_ ? rest.size() : static_cast<size_t>(bdat_left_);
      up_.append(rest.substr(0, n));
      bdat_left_ -= n;
      pos += n;
      if (bdat_left_ == 0) mode_ = Mode::Command;
      continue;
    }
    // DATA content, up to and including the end-of-data line.
    bool end = false;
    pos += scanContent(rest, end);
    if (mode_ == Mode::Closed) {
      pos = data.size();  // nothing after a refused message is ever interpreted
      break;
    }
  }
  return pos;
}

void SmtpRelayFilter::handleCommandLine(std::string_view line) {
  std::string_view text = line;
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  std::string_view terminator = line.substr(text.size());
  Command cmd = parseCommand(text);
  if (cmd.verb == Verb::Xclient || cmd.verb == Verb::Xforward) {
    acts_.push_back(LogNote{LogNote::Level::Warn, "refused " + std::string(verbName(cmd.verb)) +
                                                      " from the client: " + logSafe(text, 120)});
    localReply(std::string(kNotRecognized));
    return;
  }
  up_ += rewriteCommand(text, cmd.verb);
  up_ += terminator;
  if (cmd.verb == Verb::Quit) quit_ = true;
  switch (cmd.verb) {
    case Verb::Data:
      expect(Expect::Data);
      mode_ = Mode::WaitDataReply;
      return;
    case Verb::Bdat: {
      uint64_t size = 0;
      bool last = false;
      if (!parseBdat(cmd.args, size, last)) {
        expect(Expect::Normal);
        return;
      }
      expect(last ? Expect::BdatLast : Expect::Bdat);
      if (size > 0) {
        bdat_left_ = size;
        mode_ = Mode::BdatChunk;
      }
      return;
    }
    default:
      expect(Expect::Normal);
      return;
  }
}

std::string SmtpRelayFilter::rewriteCommand(std::string_view text, Verb verb) {
  if (verb == Verb::Rcpt) {
    const bool on = quirks_.has(Quirk::SmtpRcptStripQuotes);
    if (on || retired_.has(Quirk::SmtpRcptStripQuotes)) {
      std::string addr;
      if (auto out = stripRcptQuotes(text, &addr)) {
        const std::string shown = logSafe(addr, 200);
        if (on) {
          acts_.push_back(QuirkUsed{Quirk::SmtpRcptStripQuotes, "RCPT TO:<'" + shown + "'> -> <" + shown + ">"});
          return *out;
        }
        acts_.push_back(
            QuirkUsed{Quirk::SmtpRcptStripQuotes, "retired: RCPT TO:<'" + shown + "'> passed unchanged"});
      }
    }
  } else if (verb == Verb::Mail) {
    const bool on = quirks_.has(Quirk::SmtpSenderAlign);
    if (on && user_.empty()) {
      if (!sender_note_done_) {
        sender_note_done_ = true;
        acts_.push_back(LogNote{LogNote::Level::Warn, "smtp.sender_align: login name \"" + logSafe(raw_user_, 100) +
                                                          "\" is not an address; MAIL FROM left unchanged"});
      }
    } else if (on || (retired_.has(Quirk::SmtpSenderAlign) && !user_.empty())) {
      std::string old;
      if (auto out = replaceMailFromPath(text, user_, &old)) {
        const std::string shown = "MAIL FROM:<" + logSafe(old, 200) + ">";
        if (on) {
          acts_.push_back(QuirkUsed{Quirk::SmtpSenderAlign, shown + " -> <" + user_ + ">"});
          return *out;
        }
        acts_.push_back(
            QuirkUsed{Quirk::SmtpSenderAlign, "retired: " + shown + " left unaligned (login <" + user_ + ">)"});
      }
    }
  }
  return std::string(text);
}

// --- DATA content -------------------------------------------------------------

void SmtpRelayFilter::startMessage() {
  line_ = Line::Start;
  refusing_ = false;
  bare_lf_ = 0;
  bare_cr_ = 0;
  in_header_ = true;
  header_.take();
}

size_t SmtpRelayFilter::scanContent(std::string_view in, bool& end) {
  end = false;
  size_t n = 0;
  if (!refusing_ && !in_header_ && !quirks_.has(Quirk::SmtpBareLf)) {
    // The body, strict: scanned straight into the backend's buffer (no copy
    // through a temporary); a refusal takes back what this call added.
    const size_t mark = up_.size();
    n = scanStrict(in, up_, end);
    if (!refusing_) {
      if (end) endOfData();
      return n;
    }
    up_.resize(mark);  // A bare CR/LF: dropped with the rest of the message.
  } else if (!refusing_) {
    std::string out;
    n = quirks_.has(Quirk::SmtpBareLf) ? scanLenient(in, out, end) : scanStrict(in, out, end);
    if (!refusing_) {
      if (!out.empty()) emitContent(out);
      if (end) endOfData();
      return n;
    }
    // A bare CR/LF: `out` is dropped with the rest of the message.
  }
  if (!end) n += scanRefused(in.substr(n), end);
  if (end) {
    const bool retired = retired_.has(Quirk::SmtpBareLf) && !retired_message_.empty();
    down_ += "550 5.6.11 " + (retired ? retired_message_ : std::string(kBareLineEndText)) + "\r\n";
    close_ = CloseReason::MessageRefused;
    mode_ = Mode::Closed;
    refusing_ = false;
  }
  return n;
}

// Strict: only CRLF line ends; "\r\n.\r\n" ends the message. A CR and a
// line-initial dot are held until the next byte shows what they are, so no
// bare CR and no "." line ever reaches the backend before it is known good.
size_t SmtpRelayFilter::scanStrict(std::string_view in, std::string& out, bool& end) {
  size_t i = 0;
  while (i < in.size()) {
    const char c = in[i];
    switch (line_) {
      case Line::Start:
        if (c == '.') {
          line_ = Line::Dot;
          ++i;
          continue;
        }
        [[fallthrough]];
      case Line::Mid: {
        if (c == '\r') {
          line_ = Line::Cr;
          ++i;
          continue;
        }
        if (c == '\n') {
          refuse(true);
          line_ = Line::Start;
          return i + 1;
        }
        const size_t j = i + cleanSpan(in.substr(i));
        out.append(in.substr(i, j - i));
        line_ = Line::Mid;
        i = j;
        continue;
      }
      case Line::Cr:
        if (c == '\n') {
          out += "\r\n";
          line_ = Line::Start;
          ++i;
          continue;
        }
        refuse(false);
        line_ = Line::Start;  // the bare CR ended a line; `c` starts the next
        return i;
      case Line::Dot:
        if (c == '\r') {
          line_ = Line::DotCr;
          ++i;
          continue;
        }
        if (c == '\n') {
          refuse(true);
          end = true;  // "." + bare LF: the client's end of the refused message
          return i + 1;
        }
        out += '.';  // a dot-stuffed or ordinary line: `c` is handled as mid-line
        line_ = Line::Mid;
        continue;
      case Line::DotCr:
        if (c == '\n') {
          end = true;
          line_ = Line::Start;
          return i + 1;
        }
        refuse(false);
        end = true;  // "." + bare CR: the client's end of the refused message
        return i;
    }
  }
  return i;
}

// smtp.bare_lf: every line end (CRLF, bare LF, bare CR) goes out as CRLF and
// a "." line after any of them is the end-of-data, so mailshim and the
// backend read the same message.
size_t SmtpRelayFilter::scanLenient(std::string_view in, std::string& out, bool& end) {
  size_t i = 0;
  while (i < in.size()) {
    const char c = in[i];
    if (swallow_lf_) {
      swallow_lf_ = false;
      if (c == '\n') {
        ++i;
        continue;
      }
      ++bare_cr_;
    }
    switch (line_) {
      case Line::Start:
        if (c == '.') {
          line_ = Line::Dot;
          ++i;
          continue;
        }
        [[fallthrough]];
      case Line::Mid:
      case Line::Cr:
      case Line::DotCr: {
        if (c == '\r') {
          out += "\r\n";
          swallow_lf_ = true;
          line_ = Line::Start;
          ++i;
          continue;
        }
        if (c == '\n') {
          out += "\r\n";
          ++bare_lf_;
          line_ = Line::Start;
          ++i;
          continue;
        }
        size_t j = findLineEnd(in, i);
        if (j == std::string_view::npos) j = in.size();
        out.append(in.substr(i, j - i));
        line_ = Line::Mid;
        i = j;
        continue;
      }
      case Line::Dot:
        if (c == '\r' || c == '\n') {
          if (c == '\r') {
            swallow_lf_ = true;
          } else {
            ++bare_lf_;
          }
          end = true;
          line_ = Line::Start;
          return i + 1;
        }
        out += '.';
        line_ = Line::Mid;
        continue;
    }
  }
  return i;
}

// After a refusal: nothing is forwarded; a "." line after any line end is the
// client's end of the message.
size_t SmtpRelayFilter::scanRefused(std::string_view in, bool& end) {
  size_t i = 0;
  while (i < in.size()) {
    const char c = in[i];
    const bool eol = c == '\r' || c == '\n';
    if (line_ == Line::Dot) {
      if (eol) {
        end = true;
        return i + 1;
      }
      line_ = Line::Mid;
    } else if (line_ == Line::Start && c == '.') {
      line_ = Line::Dot;
    } else if (eol) {
      line_ = Line::Start;
    } else {
      size_t j = findLineEnd(in, i);
      if (j == std::string_view::npos) j = in.size();
      line_ = Line::Mid;
      i = j;
      continue;
    }
    ++i;
  }
  return i;
}

void SmtpRelayFilter::refuse(bool bare_lf) {
  refusing_ = true;
  header_.take();
  in_header_ = false;
  const char* what = bare_lf ? "bare LF" : "bare CR";
  acts_.push_back(LogNote{LogNote::Level::Warn,
                          std::string(what) +
                              " in message content: message not forwarded, backend transaction abandoned, client "
                              "refused at its end of data (SMTP smuggling defence; smtp.bare_lf is off)"});
  if (retired_.has(Quirk::SmtpBareLf))
    acts_.push_back(QuirkUsed{Quirk::SmtpBareLf, std::string("retired: ") + what + " in message content refused"});
}

void SmtpRelayFilter::endOfData() {
  if (in_header_) {
    header_.finish();
    processHeader();
  }
  up_ += ".\r\n";
  if (bare_lf_ + bare_cr_ > 0)
    acts_.push_back(QuirkUsed{Quirk::SmtpBareLf, "normalised " + std::to_string(bare_lf_) + " bare LF and " +
                                                     std::to_string(bare_cr_) + " bare CR line ends to CRLF"});
  expect(Expect::EndOfData);
  mode_ = Mode::Command;
}

void SmtpRelayFilter::emitContent(std::string_view chunk) {
  if (!in_header_) {
    up_.append(chunk);
    return;
  }
  switch (header_.append(chunk)) {
    case HeaderCollector::Status::NeedMore:
      return;
    case HeaderCollector::Status::Complete:
      processHeader();
      return;
    case HeaderCollector::Status::TooLarge:
      acts_.push_back(LogNote{LogNote::Level::Info, "header section larger than " + std::to_string(max_header_bytes_) +
                                                        " bytes: forwarded unchanged (smtp.display_name, X-Mailer "
                                                        "and User-Agent not looked at)"});
      up_ += header_.take();
      in_header_ = false;
      return;
  }
}

void SmtpRelayFilter::processHeader() {
  const size_t header_end = header_.headerEnd();
  std::string block = header_.take();
  in_header_ = false;
  std::vector<HeaderField> fields = splitHeaderFields(std::string_view(block).substr(0, header_end));
  const HeaderField* from = nullptr;
  bool mailer = false;
  bool agent = false;
  for (const auto& f : fields) {
    if (!from && iequals(f.name, "From")) {
      from = &f;
    } else if (!mailer && iequals(f.name, "X-Mailer")) {
      mailer = true;
      if (auto v = informationalValue(f.value); !v.empty()) acts_.push_back(ClientInfo{"x-mailer", std::move(v)});
    } else if (!agent && iequals(f.name, "User-Agent")) {
      agent = true;
      if (auto v = informationalValue(f.value); !v.empty()) acts_.push_back(ClientInfo{"user-agent", std::move(v)});
    }
  }
  if (from) rewriteFrom(block, *from);
  up_ += block;
}

void SmtpRelayFilter::rewriteFrom(std::string& block, const HeaderField& from) {
  const bool on = quirks_.has(Quirk::SmtpDisplayName);
  if (!on && !retired_.has(Quirk::SmtpDisplayName)) return;
  auto addr = bareMailboxAddress(from.value);
  if (!addr) return;
  if (!on) {
    acts_.push_back(QuirkUsed{Quirk::SmtpDisplayName, "retired: From: <" + *addr + "> has no display name; left unchanged"});
    return;
  }
  std::optional<std::string> name;
  if (directory_) name = directory_->displayName(*addr);
  if (name && !rfc2047::isUsableDisplayName(*name)) {
    acts_.push_back(LogNote{LogNote::Level::Warn, "smtp.display_name: the directory's name for <" + *addr +
                                                      "> is empty, too long or has control characters; not used"});
    name.reset();
  }
  bool local_part = false;
  if (!name && fallback_local_part_) {
    name = addr->substr(0, addr->rfind('@'));
    local_part = true;
  }
  if (!name) {
    acts_.push_back(
        LogNote{LogNote::Level::Info, "smtp.display_name: no name known for <" + *addr + ">; From left unchanged"});
    return;
  }
  const std::string spelled(from.name);
  auto field = rfc2047::formatMailboxField(spelled, *name, *addr);
  if (!field) return;  // cannot happen: name and address were validated
  block.replace(from.begin, from.end - from.begin, *field);
  acts_.push_back(QuirkUsed{Quirk::SmtpDisplayName, "From: <" + *addr + "> -> \"" + std::string(trimSpaces(*name)) +
                                                        "\"" + (local_part ? " (local part)" : "")});
}

// --- backend replies ----------------------------------------------------------

void SmtpRelayFilter::expect(Expect kind) { queue_.push_back(Pending{kind, {}}); }

void SmtpRelayFilter::localReply(std::string bytes) {
  if (queue_.empty()) {
    down_ += bytes;
  } else {
    queue_.push_back(Pending{Expect::Local, std::move(bytes)});
  }
}

void SmtpRelayFilter::drainLocal() {
  while (!queue_.empty() && queue_.front().kind == Expect::Local) {
    down_ += queue_.front().local;
    queue_.pop_front();
  }
}

Actions SmtpRelayFilter::onUpstreamData(std::string_view bytes) {
  if (mode_ == Mode::Closed) return {};
  if (opaque_) {
    down_.append(bytes);
    return take();
  }
  parser_.feed(bytes);
  Reply r;
  for (;;) {
    auto st = parser_.next(r);
    if (st == ReplyParser::Status::NeedMore) break;
    if (st == ReplyParser::Status::Error) {
      goOpaque("backend reply not understood (" + std::string(parser_.error()) + "); relaying without inspection");
      break;
    }
    down_ += r.raw;
    said_bye_ = r.code == 421 || r.code == 221;
    onReply(r);
    if (mode_ == Mode::Closed) break;
  }
  return take();
}

Actions SmtpRelayFilter::onUpstreamClosed() {
  if (mode_ == Mode::Closed || opaque_ || quit_ || said_bye_) return {};
  parser_.clear();  // an unfinished reply line is not a reply
  held_.clear();
  queue_.clear();
  acts_.push_back(LogNote{LogNote::Level::Warn, "backend closed the connection; 421 sent to the client"});
  down_ += smtpCloseNotice(CloseReason::UpstreamLost, name_);
  close_ = CloseReason::UpstreamLost;
  mode_ = Mode::Closed;
  return take();
}

void SmtpRelayFilter::onReply(const Reply& r) {
  if (queue_.empty()) return;  // unsolicited (e.g. a 421 before closing): passed on as is
  Expect kind = queue_.front().kind;
  queue_.pop_front();
  switch (kind) {
    case Expect::Data:
      if (mode_ == Mode::WaitDataReply) {
        if (r.code == 354) {
          mode_ = Mode::Content;
          startMessage();
        } else {
          mode_ = Mode::Command;
        }
      }
      break;
    case Expect::EndOfData:
    case Expect::BdatLast: {
      std::string text(r.lastText());
      if (r.code == 250) {
        acts_.push_back(LogNote{LogNote::Level::Info, "message accepted: " + logSafe(text, 200)});
      } else {
        acts_.push_back(
            LogNote{LogNote::Level::Info, "message rejected: " + logSafe(std::to_string(r.code) + " " + text, 200)});
      }
      break;
    }
    default:
      break;
  }
  drainLocal();
  // Held client bytes may now be content (354) or commands.
  processClient();
}

void SmtpRelayFilter::goOpaque(std::string why) {
  acts_.push_back(LogNote{LogNote::Level::Warn, std::move(why)});
  if (mode_ == Mode::Content && refusing_) {
    // A refused message must never be spliced through: give up instead.
    down_.append(parser_.pending());
    down_ += smtpCloseNotice(CloseReason::UpstreamProtocol, name_);
    parser_.clear();
    held_.clear();
    close_ = CloseReason::UpstreamProtocol;
    mode_ = Mode::Closed;
    return;
  }
  opaque_ = true;
  down_.append(parser_.pending());
  parser_.clear();
  for (auto& p : queue_)
    if (p.kind == Expect::Local) down_ += p.local;
  queue_.clear();
  if (mode_ == Mode::Content) {
    // Whatever the content path still holds goes out first, in order.
    if (in_header_) up_ += header_.take();
    in_header_ = false;
    if (line_ == Line::Cr) up_ += '\r';
    if (line_ == Line::Dot) up_ += '.';
    if (line_ == Line::DotCr) up_ += ".\r";
  }
  if (swallow_lf_ && !held_.empty() && held_.front() == '\n') held_.erase(0, 1);
  swallow_lf_ = false;
  up_ += held_;
  held_.clear();
  mode_ = Mode::Command;
}

}  // namespace mailshim::proto::smtp
