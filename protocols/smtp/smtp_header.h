// Message header block of DATA content, for the SMTP relay filter: a bounded
// incremental collector that finds where the header section ends (RFC 5322
// section 2.1: the first empty line, or — as Postfix's cleanup does — the
// first line that is neither a header field nor a continuation), a splitter
// into header fields in wire form (section 2.2, folding of section 2.2.3 kept
// byte-exact), the test for a From field that is a single mailbox with an
// address and no display name (section 3.4), and the sanitised value of
// informational fields (X-Mailer, User-Agent) for client fingerprints.
//
// Works on message content as the relay filter forwards it: CRLF line ends,
// still dot-stuffed (RFC 5321 section 4.5.2). A dot-stuffed line never looks
// like a field this code cares about, and continuation lines start with WSP,
// so nothing here needs to unstuff.
//
// No I/O. Standard library only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailshim::proto::smtp {

class HeaderCollector {
 public:
  enum class Status : uint8_t {
    NeedMore,  // header section not finished yet
    Complete,  // headerEnd() is known; bytes() may hold body bytes after it
    TooLarge,  // the header section does not end within max_bytes
  };

  explicit HeaderCollector(size_t max_bytes) : max_(max_bytes) {}

  // Appends content bytes and scans the complete lines among them. The
  // section must end within the first max_bytes bytes: the empty line that
  // ends it, or the first non-header line, must be complete by then.
  Status append(std::string_view bytes);
  // End of data: the section is whatever has been scanned.
  void finish();

  Status status() const { return status_; }
  const std::string& bytes() const { return buf_; }
  // End of the last header line: fields live in bytes()[0, headerEnd()).
  size_t headerEnd() const { return header_end_; }
  // Hands out the buffer and starts over.
  std::string take();

 private:
  size_t max_;
  std::string buf_;
  size_t scan_ = 0;        // start of the first line not yet classified
  size_t header_end_ = 0;  // end of the last header line
  bool seen_field_ = false;
  Status status_ = Status::NeedMore;
};

// One header field in wire form: its first line and continuation lines.
struct HeaderField {
  size_t begin = 0;        // offset of the field in the header section
  size_t end = 0;          // one past its final CRLF
  std::string_view name;   // as spelled, without trailing WSP and the colon
  std::string_view value;  // everything after the colon, folding and final CRLF included
};

// Splits the header section (bytes()[0, headerEnd())) into fields.
std::vector<HeaderField> splitHeaderFields(std::string_view header);

// "name: value" where name is RFC 5322 ftext, optionally followed by WSP
// (obsolete syntax, section 4.5) before the colon.
bool isHeaderFieldLine(std::string_view line);

// The address of a From value that is a single mailbox without a display
// name: "alice@example.test", "<alice@example.test>" or
// "\"\" <alice@example.test>" (folding and surrounding WSP allowed).
// nullopt for everything else: a display name, comments, groups, lists,
// quoted local parts, domain literals, anything unparsable.
std::optional<std::string> bareMailboxAddress(std::string_view value);

// A plain address: dot-atom local part "@" a domain of LDH labels, ASCII,
// at most 254 bytes (RFC 5321 section 4.5.3.1). Used for From addresses and
// for the login name of smtp.sender_align.
bool isPlainAddress(std::string_view addr);

// A field value for a log line: unfolded, WSP runs kept as single spaces,
// trimmed, control characters replaced by '?', cut to at most `max` bytes
// on a UTF-8 character boundary.
std::string informationalValue(std::string_view value, size_t max = 200);

}  // namespace mailshim::proto::smtp
