// libFuzzer target: the admin console command parser never crashes, and a
// parsed command is either Invalid with a reason or a verb without one; a
// KILL argument is always a short alphanumeric token.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "protocols/common/admin_command.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mailshim::proto;
  auto c = parseAdminCommand(std::string_view(reinterpret_cast<const char*>(data), size));
  if ((c.verb == AdminVerb::Invalid) == c.error.empty()) std::abort();
  if (c.verb == AdminVerb::Kill) {
    if (c.arg.empty() || c.arg.size() > 32) std::abort();
    for (char ch : c.arg)
      if (!((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z'))) std::abort();
  }
  return 0;
}
