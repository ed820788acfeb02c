// POP3 codec: splits client command lines into keyword and argument text
// (RFC 1939 section 3, RFC 2449 section 4 length rules relaxed for SASL
// initial responses), splits backend status lines ("+OK"/"-ERR" with an
// optional RFC 2449 [RESP-CODE] and RFC 3206 codes), recognises SASL
// continuations (RFC 5034 section 4) and collects a CAPA listing (RFC 2449
// section 5, dot-unstuffed). No I/O. Standard library only.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailshim::proto::pop3 {

struct Pop3Command {
  std::string keyword;    // upper-cased, 1..kMaxKeyword letters/digits
  std::string_view args;  // everything after the first space, verbatim (PASS keeps spaces)
};
inline constexpr size_t kMaxKeyword = 16;

// nullopt when the line is not a command: empty keyword, non-alphanumeric
// keyword, or control characters other than TAB (NUL, bare CR, ...) in the line.
// `args` points into `line`.
std::optional<Pop3Command> parseCommand(std::string_view line);

struct Pop3Status {
  bool ok = false;
  std::string_view text;  // after "+OK " / "-ERR " (may be empty)
  std::string_view code;  // inside a leading "[...]" of text, e.g. "SYS/TEMP"
};
// nullopt when the line is neither "+OK..." nor "-ERR...".
std::optional<Pop3Status> parseStatus(std::string_view line);
// Backend text to pass on in a LoginResult or a client reply: `text` when it
// is one line without control characters, else `fallback` (also when empty).
std::string responseTextOr(std::string_view text, std::string_view fallback);
// "+ <base64>" or "+": a SASL continuation request.
bool isContinuation(std::string_view line);

// A CAPA listing: feed lines after the "+OK" until add() returns true (".").
class CapaList {
 public:
  static constexpr size_t kMaxLines = 64;
  // Returns true at the terminating "."; false while more lines are due.
  // Lines beyond kMaxLines are dropped.
  bool add(std::string_view line);
  void clear() { lines_.clear(); }
  // The capability named `name` (first word, case-insensitive) is listed.
  bool has(std::string_view name) const;
  // Mechanisms of the "SASL" line, upper-cased.
  std::vector<std::string> saslMechanisms() const;
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  std::vector<std::string> lines_;
};

}  // namespace mailshim::proto::pop3
