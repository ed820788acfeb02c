// Secret wiping. See secret.h. No I/O.
#include "protocols/common/secret.h"

#include <string.h>

namespace mailshim::proto {

void wipe(std::string& s) {
  if (s.capacity() > 0) explicit_bzero(s.data(), s.capacity());
  s.clear();
}

void appendWiped(std::string& s, std::string_view tail) {
  if (s.size() + tail.size() > s.capacity()) {
    std::string grown;
    grown.reserve(s.size() + tail.size());
    grown += s;
    wipe(s);
    s.swap(grown);
  }
  s += tail;
}

}  // namespace mailshim::proto
