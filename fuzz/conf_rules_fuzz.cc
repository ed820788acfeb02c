// libFuzzer target for the rule matchers in conf/: IP address and CIDR
// parsing (round trip through toString, containment of the base and of
// IPv4-mapped addresses), the case-insensitive '*'/'?' glob against an
// independent reference matcher, and sunset dates (parse/toString round
// trip, ordering agrees with daysSinceEpoch). The input is cut at the first
// NUL into a pattern and a text. Inputs over 256 bytes are skipped so that
// the O(n*m) reference stays fast. No I/O.
// MAILSHIM_FUZZ_MAX_LEN 256
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "conf/cidr.h"
#include "conf/config.h"

using namespace mailshim::conf;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Dynamic programming, one row per pattern character: row[j] = the pattern
// so far matches text[0,j).
bool referenceGlob(std::string_view p, std::string_view t) {
  std::vector<char> row(t.size() + 1, 0), next(t.size() + 1, 0);
  row[0] = 1;
  for (size_t i = 0; i < p.size(); ++i) {
    for (size_t j = 0; j <= t.size(); ++j) {
      if (p[i] == '*')
        next[j] = row[j] || (j > 0 && next[j - 1]);
      else
        next[j] = j > 0 && row[j - 1] && (p[i] == '?' || lower(p[i]) == lower(t[j - 1]));
    }
    row.swap(next);
  }
  return row[t.size()];
}

void checkAddress(std::string_view s) {
  auto a = IpAddress::parse(s);
  if (!a) return;
  std::string text = a->toString();
  auto b = IpAddress::parse(text);
  check(b && b->v6 == a->v6 && b->bytes == a->bytes);
  auto host = Cidr::parse(text + (a->v6 ? "/128" : "/32"));
  check(host && host->contains(*a));
  auto all = Cidr::parse(a->v6 ? "::/0" : "0.0.0.0/0");
  check(all && all->contains(*a));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 256) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nul = in.find('\0');
  std::string_view a = in.substr(0, nul);
  std::string_view b = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);

  check(globMatch(a, b) == referenceGlob(a, b));
  check(globMatch(b, a) == referenceGlob(b, a));

  checkAddress(a);
  checkAddress(b);
  if (auto c = Cidr::parse(a)) {
    check(c->prefix <= (c->base.v6 ? 128 : 32));
    auto again = Cidr::parse(c->toString());
    check(again && again->prefix == c->prefix && again->base.v6 == c->base.v6);
    check(again->toString() == c->toString());
    if (auto addr = IpAddress::parse(b)) {
      check(c->contains(*addr) == again->contains(*addr));
      // IPv4-mapped IPv6 matches IPv4 networks.
      if (!addr->v6 && !c->base.v6) {
        auto mapped = IpAddress::parse("::ffff:" + addr->toString());
        check(mapped && c->contains(*mapped) == c->contains(*addr));
      }
    }
  }

  auto d1 = Date::parse(a);
  auto d2 = Date::parse(b);
  if (d1) {
    check(d1->toString() == a);
    auto r = Date::parse(d1->toString());
    check(r && *r == *d1);
  }
  if (d1 && d2) check((*d1 < *d2) == (d1->daysSinceEpoch() < d2->daysSinceEpoch()));
  return 0;
}
