// SMTP command codec: splits a client command line into a verb (matched
// case-insensitively, RFC 5321 section 2.4) and its argument text, extracts
// the reverse-path / forward-path of MAIL FROM: and RCPT TO: (RFC 5321
// section 4.1.1.2-3, 4.1.2) with their ESMTP parameters, validates HELO/EHLO
// domains and address literals (section 4.1.3), and encodes the commands
// mailshim itself sends toward the backend: plain command lines and XCLIENT
// with xtext values (RFC 3461 section 4, Postfix XCLIENT_README). Every
// encoder refuses CR, LF and NUL in interpolated values (security invariant 3).
//
// No I/O. Standard library only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailshim::proto::smtp {

enum class Verb : uint8_t {
  Helo,
  Ehlo,
  Starttls,
  Auth,
  Mail,
  Rcpt,
  Data,
  Bdat,
  Rset,
  Noop,
  Quit,
  Help,
  Vrfy,
  Expn,
  Etrn,
  Xclient,
  Xforward,
  Unknown,
};

// One parsed command line (without CRLF). Views point into the parsed line.
struct Command {
  Verb verb = Verb::Unknown;
  std::string_view name;  // the verb as the client spelled it
  std::string_view args;  // text after the verb, leading/trailing SP/TAB trimmed
};

// Splits `line` (no CRLF) at the first SP/TAB. Never fails: an empty or
// non-alphabetic verb yields Verb::Unknown.
Command parseCommand(std::string_view line);
std::string_view verbName(Verb v);

// A MAIL FROM: / RCPT TO: argument taken apart. Views point into the input.
struct PathArg {
  std::string_view path;    // between < and > (or the bare token when unbracketed)
  std::string_view params;  // ESMTP parameters after the path, trimmed
  bool bracketed = false;   // the client used <...>
};
// `args` is Command::args of a MAIL command ("FROM:<a@b> SIZE=10"). Tolerates
// "FROM: <a@b>" (space after the colon) and an unbracketed path, as Postfix
// does; quoted local parts may contain '>' and spaces. nullopt when the
// keyword is missing or the path is unterminated.
std::optional<PathArg> parseMailFrom(std::string_view args);
std::optional<PathArg> parseRcptTo(std::string_view args);

// smtp.rcpt_strip_quotes: iRedMail's smtpd_command_filter rule
//   /^(RCPT\s+TO:\s*<)'([^[:space:]]+)'(>.*)/   $1$2$3
// with PCRE semantics (Postfix pcre tables match case-insensitively; \s is
// SP, HT, LF, VT, FF, CR; the middle group is greedy). `line` is a command
// line without its line end. Returns the rewritten line, nullopt when the
// rule does not match. The stripped address is put in `*address` if given.
std::optional<std::string> stripRcptQuotes(std::string_view line, std::string* address = nullptr);

// smtp.sender_align: `line` (no line end) with the reverse-path of its
// "MAIL FROM:" replaced by `sender`, everything else byte-exact (the
// keyword's spelling, spaces, every ESMTP parameter). An unbracketed path
// becomes <sender>. nullopt when `line` is not a parsable MAIL FROM, when
// its path is the null sender <> (bounces stay bounces), or when it already
// equals `sender` ignoring ASCII case. The old path is put in `*old_path`.
std::optional<std::string> replaceMailFromPath(std::string_view line, std::string_view sender,
                                               std::string* old_path = nullptr);

// RFC 5321 section 4.1.3 address literal: "[1.2.3.4]" or "[IPv6:...]".
bool isAddressLiteral(std::string_view s);
bool isIpv4(std::string_view s);
bool isIpv6(std::string_view s);
// A fully-qualified host name by the rules of smtp.helo_normalize: at least one
// dot, LDH labels of 1..63 bytes, not all-numeric, not localhost(.localdomain),
// not under .local/.localdomain/.lan/.home/.internal.
bool isFqdn(std::string_view s);
// The client's address as an address literal: "[127.0.0.2]", "[IPv6:::1]".
// nullopt when `ip` is not a textual IPv4/IPv6 address.
std::optional<std::string> addressLiteralFor(std::string_view ip);

// xtext (RFC 3461 section 4): bytes 33..126 except '+' and '=' stay, every
// other byte becomes "+XX" (upper-case hex). nullopt if `v` contains CR, LF or
// NUL: such a value must never reach the backend, not even encoded.
std::optional<std::string> xtextEncode(std::string_view v);
// Strict decoder (for tests and fuzzing): nullopt on a bad "+XX" or a byte
// outside 33..126.
std::optional<std::string> xtextDecode(std::string_view v);

// "<verb>[ <arg>]\r\n"; nullopt if either contains CR, LF or NUL.
std::optional<std::string> formatCommand(std::string_view verb, std::string_view arg = {});

// The values mailshim tells the backend about the real client.
struct XclientParams {
  std::string addr;  // textual IP without brackets; IPv6 is sent as IPV6:<addr>
  uint16_t port = 0; // 0 = omitted
  std::string helo;  // the client's (normalised) HELO; empty = omitted
  bool esmtp = true; // PROTO=ESMTP or PROTO=SMTP
};
// Builds "XCLIENT ADDR=.. PORT=.. NAME=[UNAVAILABLE] HELO=.. PROTO=..\r\n"
// with only the attributes listed in `allowed` (the XCLIENT EHLO keyword's
// parameters, upper-case). nullopt when a value holds CR/LF/NUL or when no
// attribute is left to send.
std::optional<std::string> formatXclient(const XclientParams& p, const std::vector<std::string>& allowed);

}  // namespace mailshim::proto::smtp
