// SASL helpers. See sasl.h. No I/O.
#include "protocols/common/sasl.h"

#include "protocols/common/base64.h"
#include "protocols/common/text.h"

namespace mailshim::proto::sasl {

std::optional<Mechanism> mechanismFromName(std::string_view name) {
  if (iequals(name, "PLAIN")) return Mechanism::Plain;
  if (iequals(name, "LOGIN")) return Mechanism::Login;
  return std::nullopt;
}

bool validField(std::string_view v) { return v.size() <= kMaxFieldBytes && isLineSafe(v); }

std::optional<Credentials> decodePlain(std::string_view b64) {
  auto raw = base64Decode(b64);
  if (!raw) return std::nullopt;
  Secret guard(std::move(*raw));  // wiped on every return path
  std::string_view s = guard.reveal();
  auto a = s.find('\0');
  if (a == std::string_view::npos) return std::nullopt;
  auto b = s.find('\0', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  std::string_view authzid = s.substr(0, a);
  std::string_view user = s.substr(a + 1, b - a - 1);
  std::string_view pass = s.substr(b + 1);
  if (user.empty() || !validField(authzid) || !validField(user) || !validField(pass))
    return std::nullopt;
  Credentials c;
  c.authzid = std::string(authzid);
  c.user = std::string(user);
  c.password = Secret(std::string(pass));
  c.method = AuthMethod::Plain;
  return c;
}

std::optional<std::string> decodeLoginField(std::string_view b64) {
  auto raw = base64Decode(b64);
  if (!raw) return std::nullopt;
  if (!validField(*raw)) {
    wipe(*raw);
    return std::nullopt;
  }
  return raw;
}

std::string encodePlain(const Credentials& creds) {
  std::string raw;
  raw.reserve(creds.authzid.size() + creds.user.size() + creds.password.size() + 2);
  raw += creds.authzid;
  raw += '\0';
  raw += creds.user;
  raw += '\0';
  raw += creds.password.reveal();
  std::string out = base64Encode(raw);
  wipe(raw);
  return out;
}

}  // namespace mailshim::proto::sasl
