// libFuzzer target for the SASL helpers and the strict base64 codec they sit
// on. The input is used three ways: as a base64 client response (PLAIN and
// LOGIN decoders), as raw bytes to encode, and as a mechanism name. Checks:
// * base64: decode(encode(x)) == x; the encoding uses only the alphabet and
//   '=' and is 4/3 as long; whatever decodes has a length that is a multiple
//   of 4 and re-encodes to something that decodes to the same bytes; the
//   decoder agrees with a small independent reference (accepts exactly the
//   same strings, same bytes);
// * PLAIN: decoded credentials hold no CR, LF or NUL, a non-empty user, all
//   fields within kMaxFieldBytes, and encodePlain() of them decodes back to
//   the same three fields;
// * LOGIN: a decoded field is validField();
// * mechanism names: only PLAIN/LOGIN in any case.
// No I/O.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocols/common/base64.h"
#include "protocols/common/sasl.h"
#include "protocols/common/text.h"

using namespace mailshim::proto;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// Reference RFC 4648 decoder: alphabet only, '=' only as the last one or two
// characters of the last quantum, length a multiple of 4.
std::optional<std::string> referenceDecode(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  size_t pad = 0;
  if (!in.empty() && in.back() == '=') pad = (in.size() >= 2 && in[in.size() - 2] == '=') ? 2 : 1;
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < in.size() - pad; ++i) {
    int v = val(in[i]);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  // base64 round trip of arbitrary bytes.
  std::string enc = base64Encode(in);
  check(enc.size() == (in.size() + 2) / 3 * 4);
  for (char c : enc)
    check((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
          c == '=');
  auto back = base64Decode(enc);
  check(back && *back == in);

  // The input as base64 text.
  auto dec = base64Decode(in);
  auto ref = referenceDecode(in);
  check(dec.has_value() == ref.has_value());
  if (dec) {
    check(*dec == *ref);
    check(in.size() % 4 == 0 && dec->size() <= in.size() / 4 * 3);
    auto again = base64Decode(base64Encode(*dec));
    check(again && *again == *dec);
  }

  if (auto creds = sasl::decodePlain(in)) {
    check(dec.has_value());
    check(!creds->user.empty());
    check(sasl::validField(creds->user) && sasl::validField(creds->authzid) &&
          sasl::validField(creds->password.reveal()));
    check(creds->user.size() <= sasl::kMaxFieldBytes);
    auto re = sasl::decodePlain(sasl::encodePlain(*creds));
    check(re && re->user == creds->user && re->authzid == creds->authzid &&
          re->password.reveal() == creds->password.reveal());
  }
  if (auto field = sasl::decodeLoginField(in)) {
    check(dec && *field == *dec);
    check(sasl::validField(*field) && isLineSafe(*field));
  }

  // Arbitrary bytes as a PLAIN message and as LOGIN fields (the encoded side).
  if (auto creds = sasl::decodePlain(enc)) {
    std::string raw = creds->authzid + '\0' + creds->user + '\0' + std::string(creds->password.reveal());
    check(raw == in);
  }

  if (auto m = sasl::mechanismFromName(in)) {
    check(iequals(in, *m == sasl::Mechanism::Plain ? "PLAIN" : "LOGIN"));
  } else {
    check(!iequals(in, "PLAIN") && !iequals(in, "LOGIN"));
  }
  return 0;
}
