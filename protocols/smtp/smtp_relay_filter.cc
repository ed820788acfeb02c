// SmtpRelayFilter. See smtp_relay_filter.h. No I/O.
#include "protocols/smtp/smtp_relay_filter.h"

#include "protocols/common/text.h"
#include "protocols/smtp/smtp_command.h"

namespace mailshim::proto::smtp {
namespace {

constexpr std::string_view kNotRecognized = "502 5.5.2 Error: command not recognized\r\n";

bool printableToken(std::string_view s) {
  if (s.empty()) return false;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

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

}  // namespace

SmtpRelayFilter::SmtpRelayFilter(const SessionContext& ctx)
    : name_(printableToken(ctx.server_name) ? ctx.server_name : "localhost"), parser_(kMaxReplyLine, 1000) {}

Actions SmtpRelayFilter::take() {
  if (!up_.empty()) {
    acts_.push_back(SendUpstream{std::move(up_)});
    up_.clear();
  }
  if (!down_.empty()) {
    acts_.push_back(SendDownstream{std::move(down_)});
    down_.clear();
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
  held_.append(bytes);
  processClient();
  if (mode_ == Mode::WaitDataReply && held_.size() > kMaxHeldBytes) {
    acts_.push_back(LogNote{LogNote::Level::Warn, "client sent more than " + std::to_string(kMaxHeldBytes) +
                                                      " bytes before the backend answered DATA"});
    Actions out = take();
    out.push_back(SendDownstream{"421 4.7.0 " + name_ + " Error: too much pipelined input\r\n"});
    out.push_back(Close{CloseReason::LineTooLong});
    held_.clear();
    mode_ = Mode::Closed;
    return out;
  }
  return take();
}

void SmtpRelayFilter::processClient() {
  size_t pos = 0;
  while (pos < held_.size()) {
    std::string_view rest = std::string_view(held_).substr(pos);
    if (mode_ == Mode::WaitDataReply || mode_ == Mode::Closed) break;
    if (mode_ == Mode::Command) {
      size_t lf = rest.find('\n');
      if (lf == std::string_view::npos) {
        if (rest.size() > kMaxCommandLine) {
          // Over-long: stream it uninterpreted; the backend answers it once.
          up_.append(rest);
          pos = held_.size();
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
      size_t n = rest.size() < bdat_left_ ? rest.size() : static_cast<size_t>(bdat_left_);
      emitContent(rest.substr(0, n));
      bdat_left_ -= n;
      pos += n;
      if (bdat_left_ == 0) mode_ = Mode::Command;
      continue;
    }
    // Content: stream up to and including the end-of-data line.
    size_t i = 0;
    bool end = false;
    for (; i < rest.size() && !end; ++i) {
      char c = rest[i];
      switch (eod_) {
        case Eod::Mid: eod_ = c == '\r' ? Eod::Cr : Eod::Mid; break;
        case Eod::Cr: eod_ = c == '\n' ? Eod::LineStart : c == '\r' ? Eod::Cr : Eod::Mid; break;
        case Eod::LineStart: eod_ = c == '.' ? Eod::Dot : c == '\r' ? Eod::Cr : Eod::Mid; break;
        case Eod::Dot: eod_ = c == '\r' ? Eod::DotCr : Eod::Mid; break;
        case Eod::DotCr:
          if (c == '\n') {
            end = true;
          } else {
            eod_ = c == '\r' ? Eod::Cr : Eod::Mid;
          }
          break;
      }
    }
    emitContent(rest.substr(0, i));
    pos += i;
    if (end) {
      expect(Expect::EndOfData);
      mode_ = Mode::Command;
    }
  }
  held_.erase(0, pos);
}

void SmtpRelayFilter::handleCommandLine(std::string_view line) {
  std::string_view text = line;
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  Command cmd = parseCommand(text);
  if (cmd.verb == Verb::Xclient || cmd.verb == Verb::Xforward) {
    acts_.push_back(LogNote{LogNote::Level::Warn, "refused " + std::string(verbName(cmd.verb)) +
                                                      " from the client: " + logSafe(text, 120)});
    localReply(std::string(kNotRecognized));
    return;
  }
  up_ += rewriteCommand(line);
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

std::string SmtpRelayFilter::rewriteCommand(std::string_view line) {
  // Hook for command-line quirks (RCPT quote stripping, sender alignment).
  return std::string(line);
}

void SmtpRelayFilter::emitContent(std::string_view chunk) {
  // Hook for content quirks (bounded header-block buffering for the From:
  // rewrite, bare-LF normalisation). Today: byte-exact pass-through.
  up_.append(chunk);
}

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
    onReply(r);
  }
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
          eod_ = Eod::LineStart;
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
  opaque_ = true;
  down_.append(parser_.pending());
  parser_.clear();
  for (auto& p : queue_)
    if (p.kind == Expect::Local) down_ += p.local;
  queue_.clear();
  up_ += held_;
  held_.clear();
  mode_ = Mode::Command;
}

}  // namespace mailshim::proto::smtp
