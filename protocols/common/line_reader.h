// LineReader: incremental CRLF framing for the pre-login phases of SMTP, IMAP
// and POP3. Feed it any split of the input; it hands back complete lines
// (without the line end) and keeps the rest. A line longer than the bound is
// reported once as TooLong and then skipped up to its line end, so the phase
// can answer with a protocol error and carry on (or close after max errors).
//
// A bare LF ends a line too (clients such as old scanners send them pre-login;
// every backend accepts it there); a bare CR inside a line is kept as data and
// the phases reject lines containing one. No I/O. Standard library only.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mailshim::proto {

class LineReader {
 public:
  explicit LineReader(size_t max_line_bytes) : max_(max_line_bytes) {}

  enum class Status { Line, NeedMore, TooLong };

  // Appends bytes to the internal buffer.
  void feed(std::string_view bytes);

  // Extracts the next event. On Line, `line` holds it without CR LF and stays
  // valid until the next call to feed() or next(). TooLong is reported once
  // per over-long line.
  Status next(std::string_view& line);

  // Bytes buffered but not yet returned as a line.
  std::string_view pending() const { return std::string_view(buf_).substr(pos_); }
  bool hasPending() const { return pos_ < buf_.size(); }
  // Drops (and zeroes) everything buffered (used at STARTTLS: no plaintext
  // crosses it). Consumed bytes are zeroed when the buffer compacts, since
  // pre-login lines may carry credentials.
  void clear();
  ~LineReader() { clear(); }
  LineReader(const LineReader&) = default;
  LineReader& operator=(const LineReader&) = default;
  // Takes out up to `n` raw bytes (IMAP literals are not line-framed).
  std::string takeRaw(size_t n);
  size_t maxLineBytes() const { return max_; }

 private:
  void compact();

  size_t max_;
  std::string buf_;
  size_t pos_ = 0;          // start of unread data in buf_
  bool skipping_ = false;   // inside an over-long line, discarding to its end
};

}  // namespace mailshim::proto
