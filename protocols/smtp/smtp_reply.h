// SMTP reply codec: an incremental parser for the backend's replies (RFC 5321
// section 4.2: "NNN-text" continuation lines and a final "NNN text" line, the
// same code on every line), the RFC 3463 enhanced status code of a reply, and
// the reply encoders mailshim uses toward clients, which refuse CR, LF and NUL
// in interpolated text (security invariant 3).
//
// The parser is resumable at any byte split, bounds line length and line
// count, and rejects control characters other than TAB in reply text; after an
// error it stays in the error state (the stream cannot be resynchronised).
// Lines end in CRLF; a bare LF is tolerated as a line end (the raw bytes are
// kept unchanged for pass-through).
//
// No I/O. Standard library only.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailshim::proto::smtp {

struct Reply {
  int code = 0;                    // 200..599
  std::string enhanced;            // "2.0.0" when the first line starts with one, else ""
  std::vector<std::string> lines;  // text of each line after "NNN-"/"NNN ", enhanced code included
  std::string raw;                 // the reply's exact bytes, line ends included

  // Text of the final line ("5.7.8 Error: authentication failed: ...").
  std::string_view lastText() const;
  bool positive() const { return code >= 200 && code < 400; }
};

class ReplyParser {
 public:
  static constexpr size_t kDefaultMaxLineBytes = 2048;
  static constexpr size_t kDefaultMaxLines = 100;

  explicit ReplyParser(size_t max_line_bytes = kDefaultMaxLineBytes, size_t max_lines = kDefaultMaxLines)
      : max_line_(max_line_bytes), max_lines_(max_lines) {}

  enum class Status { Reply, NeedMore, Error };

  void feed(std::string_view bytes);
  // Extracts the next complete reply into `out`. Error is sticky; error()
  // explains it (log-safe).
  Status next(Reply& out);

  std::string_view error() const { return error_; }
  bool failed() const { return !error_.empty(); }
  // Bytes received but not yet returned in a Reply (a partial reply and
  // anything after the last complete one), exactly as received.
  std::string_view pending() const { return std::string_view(buf_).substr(start_); }
  bool hasPending() const { return start_ < buf_.size(); }
  // Drops everything buffered and any partial reply (used at STARTTLS: no
  // plaintext crosses it). Does not clear a sticky error.
  void clear();

 private:
  Status fail(std::string msg);
  void compact();

  size_t max_line_;
  size_t max_lines_;
  std::string buf_;
  size_t start_ = 0;     // first byte of the reply being assembled
  size_t scan_ = 0;      // first byte not yet split into lines
  Reply cur_;            // lines of the reply being assembled
  std::string error_;
};

// RFC 3463 "class.subject.detail" at the start of `text` followed by SP or
// end; returns its length (0 if none).
size_t enhancedCodeLength(std::string_view text);

// "NNN text\r\n" (or "NNN\r\n" for empty text); nullopt when `code` is not a
// 2xx..5xx three-digit code or `text` contains CR, LF or NUL.
std::optional<std::string> formatReply(int code, std::string_view text);
// "NNN-l1\r\n...NNN ln\r\n"; same refusals, and nullopt for no lines.
std::optional<std::string> formatMultiline(int code, const std::vector<std::string>& lines);
// Parses "NNN" (2xx..5xx); nullopt otherwise.
std::optional<int> parseReplyCode(std::string_view code);

}  // namespace mailshim::proto::smtp
