// libFuzzer target for the TOML config loader (toml++ in no-exceptions mode
// plus every validation in conf/config_loader.cc). The input is the config
// text; file readability checks are off (LoadOptions::check_files), so no
// file is touched and the verdict does not depend on the machine.
// MAILSHIM_FUZZ_MAX_LEN 16384
// Checks: a load either yields a config and no errors, or errors and no
// config; every message is one line ("file:line:col: ..."); a loaded config
// is internally consistent (listeners exist and point at an upstream or pool
// of their protocol, unique listener names, non-zero ports, rules' networks
// parsed); and rules can be evaluated for a few sessions without surprises
// (the decision's rule is one of the config's, retired quirks only when
// overdue). No I/O.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "conf/config_loader.h"

using namespace mailshim::conf;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool oneLine(const std::string& s) {
  return !s.empty() && s.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  LoadResult r = loadConfigString(in, "fuzz.toml", LoadOptions{.check_files = false});
  for (const auto& e : r.errors) check(oneLine(e) && e.starts_with("fuzz.toml"));
  for (const auto& w : r.warnings) check(oneLine(w));
  check((r.config != nullptr) == r.errors.empty());
  if (!r.ok()) return 0;

  const Config& c = *r.config;
  check(!c.listeners.empty());
  std::set<std::string> names;
  for (const auto& l : c.listeners) {
    check(names.insert(l.name).second);
    check(l.port != 0);
    const Upstream* u = c.findUpstream(l.upstream);
    const Pool* p = c.findPool(l.upstream);
    check(u || p);
    if (p)
      check(p->protocol == l.protocol);
    else
      check(u->protocol == l.protocol && c.upstreamIndex(u->name) >= 0);
  }
  static const char* const kAddresses[] = {"127.0.0.1", "127.0.0.2", "192.0.2.7", "::1", "2001:db8::5"};
  const Date days[] = {Date{2000, 1, 1}, Date{2099, 12, 31}};
  for (const char* a : kAddresses) {
    auto addr = IpAddress::parse(a);
    check(addr.has_value());
    (void)c.matchRule(*addr);
    for (const auto& l : c.listeners) {
      RuleQuery q;
      q.address = *addr;
      q.listener = l.name;
      q.user = "alice@example.test";
      q.fingerprint = "Outlook 16.0";
      for (const Date& d : days) {
        RuleDecision dec = c.decide(q, d);
        if (!dec.rule) {
          check(dec.quirks.empty() && dec.retired.empty() && !dec.overdue);
          continue;
        }
        check(dec.rule >= c.rules.data() && dec.rule < c.rules.data() + c.rules.size());
        if (!dec.retired.empty()) check(dec.overdue && dec.quirks.empty());
      }
    }
  }
  return 0;
}
