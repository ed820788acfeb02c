// Display names for message headers: an RFC 5322 phrase (section 3.2.5) as
// atoms or a quoted-string, or — for names that are not printable ASCII —
// RFC 2047 encoded-words ("=?UTF-8?B?...?=", section 4.1), each at most 75
// characters, holding whole UTF-8 characters (section 5), folded with CRLF SP
// so that no line of the header field exceeds 78 characters (RFC 5322
// section 2.1.1) unless the address itself is longer. Used by the SMTP relay
// filter's smtp.display_name quirk to turn `From: alice@example.test` into
// `From: Alice Liddell <alice@example.test>`.
//
// No I/O. Standard library only.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailshim::proto::rfc2047 {

// RFC 5322 line length (SHOULD) and RFC 2047 encoded-word length (MUST).
inline constexpr size_t kMaxLineChars = 78;
inline constexpr size_t kMaxEncodedWordChars = 75;

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
// U+10FFFF.
bool isValidUtf8(std::string_view s);

// RFC 5322 atext (section 3.2.3).
bool isAtext(char c);

// A display name usable as-is: non-empty after trimming spaces, at most
// kMaxDisplayNameBytes, valid UTF-8, no control characters (C0, DEL and C1
// are refused: they cannot be shown and could break the header).
inline constexpr size_t kMaxDisplayNameBytes = 256;
bool isUsableDisplayName(std::string_view name);

// Base64 encoded-words ("=?UTF-8?B?...?=") for `utf8`, split on character
// boundaries. The first word is at most `first_max` characters, the others
// at most `max` (both capped at 75; a budget below 20 is raised to 20 so
// that one character of up to four bytes always fits). Empty input gives no words.
std::vector<std::string> encodeWords(std::string_view utf8, size_t first_max = kMaxEncodedWordChars,
                                     size_t max = kMaxEncodedWordChars);

// Decodes one "=?charset?B|Q?text?=" word (for tests and fuzzing); nullopt
// when it is not one.
std::optional<std::string> decodeWord(std::string_view word);

// The complete header field "<name>: <phrase> <addr>\r\n" (`field_name` e.g.
// "From"), folded as described above. The phrase is the name as atoms when
// it is only atext words separated by single spaces, a quoted-string when it
// is other printable ASCII and fits, and encoded-words otherwise. nullopt
// when !isUsableDisplayName(name) or `addr` holds CR, LF or NUL.
std::optional<std::string> formatMailboxField(std::string_view field_name, std::string_view name,
                                              std::string_view addr);

}  // namespace mailshim::proto::rfc2047
