// Secret wiping. See secret.h. No I/O.
#include "protocols/common/secret.h"

#include <string.h>

namespace mailshim::proto {

void wipe(std::string& s) {
  if (s.capacity() > 0) explicit_bzero(s.data(), s.capacity());
  s.clear();
}

}  // namespace mailshim::proto
