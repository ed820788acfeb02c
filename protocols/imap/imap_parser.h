// IMAP command parser and encoders for the pre-login phase: an incremental,
// byte-resumable parser for client commands (RFC 9051 / RFC 3501 section 9
// subset: tag, command name, atoms, quoted strings with escapes, synchronizing
// literals {n} and non-synchronizing literals {n+} (RFC 7888), NIL and
// parenthesized lists as used by ID, RFC 2971), every part size-capped; a
// splitter for backend response lines; and the quote-or-literal astring
// encoder used toward the backend. No I/O. Standard library only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailshim::proto::imap {

// One command argument. Lists only appear as ID's parenthesized field list.
struct ImapArg {
  enum class Kind : uint8_t { Atom, Quoted, Literal, List };
  Kind kind = Kind::Atom;
  std::string value;           // Atom, Quoted (unescaped), Literal (raw octets)
  std::vector<ImapArg> items;  // List

  bool isString() const { return kind == Kind::Quoted || kind == Kind::Literal; }
  // astring = atom / string (RFC 9051 section 9).
  bool isAstring() const { return kind != Kind::List; }
  // The atom NIL (case-insensitive); a quoted "NIL" is a string, not NIL.
  bool isNil() const;
};

struct ImapCommand {
  std::string tag;
  std::string name;  // as sent; compare case-insensitively
  std::vector<ImapArg> args;
  // Overwrites every argument value (LOGIN passwords) before release.
  void wipe();
};

enum class ImapParseError : uint8_t {
  InvalidTag,        // no usable tag: answered untagged "* BAD"
  MissingCommand,    // "<tag>" alone
  Syntax,            // bad quoting, stray bytes, unbalanced list, bare CR, NUL
  LineTooLong,       // command text beyond max_line_bytes
  LiteralTooLarge,   // announced literal beyond max_literal_bytes
  TooManyArguments,  // beyond max_args (counting list items)
};
std::string_view imapParseErrorText(ImapParseError e);

class ImapParser {
 public:
  struct Limits {
    size_t max_line_bytes = 4096;     // command text, literal data excluded
    size_t max_literal_bytes = 8192;  // sum of literal octets per command
    size_t max_args = 80;             // arguments incl. list items (ID: 30 pairs)
    size_t max_depth = 2;             // list nesting
  };
  enum class Status : uint8_t {
    Command,           // command() holds a complete command
    NeedMore,          // everything buffered was consumed
    NeedContinuation,  // a {n} literal was announced: send "+ ..." and keep calling next()
    Error,             // error()/errorTag(); the rest of the line is discarded
  };
  enum class LineStatus : uint8_t { Line, NeedMore, TooLong };

  explicit ImapParser(Limits limits) : limits_(limits) {}
  ~ImapParser();
  ImapParser(const ImapParser&) = delete;
  ImapParser& operator=(const ImapParser&) = delete;

  void feed(std::string_view bytes);
  // Parses until a command completes, a continuation is due, an error is found
  // or the buffer is exhausted. Stops right after a command's line end, so the
  // bytes of later commands stay unparsed in pending().
  Status next();
  ImapCommand& command() { return cmd_; }
  ImapParseError error() const { return error_; }
  // Tag of the failed command, "*" when none was read yet.
  const std::string& errorTag() const { return error_tag_; }
  // The failed literal was non-synchronizing: its octets are already on the
  // way and cannot be told apart from commands, so the session must end.
  bool errorIsFatal() const { return error_fatal_; }

  // After NeedContinuation: the command is refused instead (tagged NO/BAD in
  // place of "+"), so its literal will not come; parsing restarts at the
  // next command. command() holds the partial tag and name until then.
  void abortCommand();

  // Reads one raw line (a SASL response) when at a command boundary.
  LineStatus nextLine(std::string& line);

  // True when no command is partly parsed.
  bool atCommandStart() const { return state_ == State::Start; }
  size_t pendingBytes() const { return buf_.size() - pos_; }
  // Unparsed bytes (pipelined after the login command), removed from the parser.
  std::string takePending();
  // Drops everything buffered and any partial command (STARTTLS).
  void clear();

 private:
  enum class State : uint8_t {
    Start,
    Tag,
    Name,
    ArgStart,
    Atom,
    Quoted,
    QuotedEscape,
    LiteralSize,
    LiteralClose,
    LiteralLf,
    LiteralData,
    AfterArg,
    Cr,
    Skip,
  };
  Status fail(ImapParseError e, bool at_line_end);
  Status endOfLine();
  bool finishArg(ImapArg&& arg);
  bool openList();
  bool closeList();
  void resetCommand();  // clears cmd_ and the scan state
  void resetScan();     // scan state only (cmd_ stays readable)
  void compact();

  Limits limits_;
  std::string buf_;
  size_t pos_ = 0;
  State state_ = State::Start;
  ImapCommand cmd_;
  std::vector<std::vector<ImapArg>> stack_;  // [0] = top-level args, then open lists
  std::string tok_;
  size_t line_bytes_ = 0;
  size_t literal_total_ = 0;
  uint64_t literal_size_ = 0;
  size_t literal_digits_ = 0;
  bool literal_plus_ = false;
  bool literal_cr_ = false;
  size_t arg_count_ = 0;
  bool tag_done_ = false;
  ImapParseError error_ = ImapParseError::Syntax;
  std::string error_tag_;
  bool error_fatal_ = false;
};

// --- backend responses ---------------------------------------------------

struct ImapResponseLine {
  enum class Kind : uint8_t { Untagged, Continuation, Tagged };
  Kind kind = Kind::Untagged;
  std::string_view tag;   // Tagged only
  std::string_view word;  // status or response name, as sent ("OK", "CAPABILITY", "5")
  std::string_view rest;  // after the word and one space ("[CAPABILITY ...] Logged in")
  std::string_view code;  // inside a leading "[...]" of rest, when present
};
// Splits one backend line (without CRLF). nullopt when it is not a response.
std::optional<ImapResponseLine> parseResponseLine(std::string_view line);
// Capability tokens of a "CAPABILITY a b c" code or an untagged CAPABILITY
// line's rest, upper-cased.
std::vector<std::string> parseCapabilities(std::string_view list);
// Backend text to pass on in a LoginResult or a client reply: `text` when it
// is one line without control characters, else `fallback` (also when empty).
std::string responseTextOr(std::string_view text, std::string_view fallback);
// The literal size a response line ends with ("{12}" or "{12+}"), if any.
std::optional<uint64_t> trailingLiteral(std::string_view line);

// --- encoders toward the backend -----------------------------------------

// `v` as a quoted string with '\' and '"' escaped; nullopt when it cannot be
// quoted (8-bit, CR, LF, NUL, other controls).
std::optional<std::string> quoteString(std::string_view v);
// Appends `v` as an astring to `segments`, the pieces of one command line:
// the sender writes segment 0 and waits for a "+" continuation before each
// further one. A quoted string when possible, otherwise a literal: {n+}
// (LITERAL+) inline, or {n} which ends the current segment. Refuses (returns
// false, appends nothing) values with CR, LF or NUL: security invariant 3.
bool appendAstring(std::vector<std::string>& segments, std::string_view v, bool literal_plus);

}  // namespace mailshim::proto::imap
