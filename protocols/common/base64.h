// RFC 4648 base64, strict: the decoder rejects characters outside the
// alphabet, bad padding and embedded whitespace (SASL responses never carry
// any, RFC 4954 section 4).
//
// No I/O. Standard library only.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mailshim::proto {

std::string base64Encode(std::string_view in);
std::optional<std::string> base64Decode(std::string_view in);

}  // namespace mailshim::proto
