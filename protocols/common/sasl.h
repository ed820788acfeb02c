// SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login, [MS-XLOGIN])
// message handling shared by the SMTP, IMAP and POP3 phases: decoding the
// client's base64 responses into Credentials, encoding PLAIN toward the
// backend, and the byte-exact LOGIN challenges Outlook and Xerox depend on.
//
// Every decoded value is checked: no NUL inside fields (other than PLAIN's
// separators), no CR or LF, bounded length. No I/O. Standard library only.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "protocols/common/phase.h"

namespace mailshim::proto::sasl {

// Base64 of "Username:" and "Password:" exactly as Postfix/Dovecot send them.
inline constexpr std::string_view kLoginUserChallenge = "VXNlcm5hbWU6";
inline constexpr std::string_view kLoginPassChallenge = "UGFzc3dvcmQ6";

inline constexpr size_t kMaxFieldBytes = 1024;

enum class Mechanism { Plain, Login };
std::optional<Mechanism> mechanismFromName(std::string_view name);

// Decodes a base64 PLAIN response "authzid\0authcid\0passwd".
std::optional<Credentials> decodePlain(std::string_view b64);
// Decodes one base64 LOGIN response (user name or password).
std::optional<std::string> decodeLoginField(std::string_view b64);
// Builds the base64 PLAIN response for the backend.
std::string encodePlain(const Credentials& creds);
// A user name or password is acceptable on the wire: bounded, no CR/LF/NUL.
bool validField(std::string_view v);

}  // namespace mailshim::proto::sasl
