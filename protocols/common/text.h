// Small text helpers shared by every codec: ASCII case-insensitive compare,
// the "no CR/LF/NUL in an interpolated value" check (security invariant 3),
// and a log-safe rendering of untrusted bytes.
//
// No I/O. Standard library only.
#pragma once

#include <string>
#include <string_view>

namespace mailshim::proto {

char asciiLower(char c);
bool iequals(std::string_view a, std::string_view b);
bool istartsWith(std::string_view s, std::string_view prefix);
std::string asciiUpper(std::string_view s);

// True when `v` may be interpolated into a protocol line: no CR, LF or NUL.
bool isLineSafe(std::string_view v);

// True when `v` is one non-empty token of visible ASCII (0x21-0x7e): no
// spaces, controls or 8-bit bytes (HELO names, EHLO keywords).
bool isPrintableToken(std::string_view v);

// True when `v` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF). Plain ASCII is valid.
bool isValidUtf8(std::string_view v);

// Copy of `v` with every byte that is not part of a well-formed UTF-8
// sequence replaced by '?'.
std::string replaceInvalidUtf8(std::string_view v);

// Renders untrusted bytes for a log line: printable ASCII kept, everything
// else (controls, bytes >= 0x7f, '\\') escaped as \xNN, cut at `max` bytes
// with "..." appended. Never returns a CR, LF or NUL.
std::string logSafe(std::string_view v, size_t max = 200);

// Splits off the first space-delimited word: returns it and advances `rest`
// past the single separator. Leading spaces are not skipped.
std::string_view nextWord(std::string_view& rest);

}  // namespace mailshim::proto
