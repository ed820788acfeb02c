// Rule evaluation, dates and globs. See config.h. No I/O (reads the clock).
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "conf/config.h"

namespace mailshim::conf {

std::optional<Date> Date::parse(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  auto num = [&](size_t pos, size_t len, int& out) {
    out = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      out = out * 10 + (text[i] - '0');
    }
    return true;
  };
  Date d;
  if (!num(0, 4, d.year) || !num(5, 2, d.month) || !num(8, 2, d.day)) return std::nullopt;
  std::chrono::year_month_day ymd{std::chrono::year(d.year), std::chrono::month(static_cast<unsigned>(d.month)),
                                  std::chrono::day(static_cast<unsigned>(d.day))};
  if (!ymd.ok()) return std::nullopt;
  return d;
}

Date Date::today() {
  auto days = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
  std::chrono::year_month_day ymd{days};
  return Date{static_cast<int>(ymd.year()), static_cast<int>(static_cast<unsigned>(ymd.month())),
              static_cast<int>(static_cast<unsigned>(ymd.day()))};
}

std::string Date::toString() const {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", year, month, day);
  return buf;
}

long long Date::daysSinceEpoch() const {
  std::chrono::year_month_day ymd{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month)),
                                  std::chrono::day(static_cast<unsigned>(day))};
  return std::chrono::sys_days(ymd).time_since_epoch().count();
}

bool globMatch(std::string_view pattern, std::string_view text) {
  // Iterative matcher with single backtrack point (classic wildcard algorithm).
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  while (t < text.size()) {
    // '*' first: it is a wildcard even where the text holds a literal '*'.
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && (pattern[p] == '?' || lower(pattern[p]) == lower(text[t]))) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

const Pool* Config::findPool(const std::string& name) const {
  for (const auto& p : pools)
    if (p.name == name) return &p;
  return nullptr;
}

int Config::upstreamIndex(const std::string& name) const {
  for (size_t i = 0; i < upstreams.size(); ++i)
    if (upstreams[i].name == name) return static_cast<int>(i);
  return -1;
}

const Rule* Config::matchRule(const IpAddress& addr) const {
  for (const auto& r : rules)
    for (const auto& n : r.networks)
      if (n.contains(addr)) return &r;
  return nullptr;
}

namespace {

bool anyGlob(const std::vector<std::string>& globs, const std::string& text) {
  for (const auto& g : globs)
    if (globMatch(g, text)) return true;
  return false;
}

bool matches(const Rule& r, const RuleQuery& q) {
  if (!r.networks.empty()) {
    bool hit = false;
    for (const auto& n : r.networks) hit = hit || n.contains(q.address);
    if (!hit) return false;
  }
  if (!r.listeners.empty()) {
    bool hit = false;
    for (const auto& l : r.listeners) hit = hit || l == q.listener;
    if (!hit) return false;
  }
  if (!r.users.empty() && (!q.user || !anyGlob(r.users, *q.user))) return false;
  if (!r.fingerprints.empty() && (!q.fingerprint || !anyGlob(r.fingerprints, *q.fingerprint))) return false;
  return true;
}

}  // namespace

RuleDecision Config::decide(const RuleQuery& q, const Date& today) const {
  RuleDecision d;
  for (const auto& r : rules) {
    if (matches(r, q)) {
      d.rule = &r;
      break;
    }
  }
  if (!d.rule) return d;
  const Rule& r = *d.rule;
  proto::QuirkSet quirks = r.quirks;
  bool legacy = quirks.has(proto::Quirk::TlsLegacyProtocols) || r.tls_profile == std::optional<std::string>("legacy");
  if (r.sunsetPassed(today)) {
    d.overdue = true;
    d.message = r.message;
    if (r.after_sunset == AfterSunset::Refuse) {
      d.retired = quirks;
      quirks = proto::QuirkSet{};
      legacy = false;
    }
  }
  d.quirks = quirks;
  d.legacy_tls = legacy;
  return d;
}

}  // namespace mailshim::conf

namespace mailshim::conf {

Limits Config::limitsFor(const Rule* rule) const {
  Limits l = limits;
  if (!rule) return l;
  if (rule->limits.max_sessions_per_address) l.max_sessions_per_address = *rule->limits.max_sessions_per_address;
  if (rule->limits.auth_failure_delay_ms) {
    l.auth_failure_delay_ms = *rule->limits.auth_failure_delay_ms;
    l.auth_failure_delay_max_ms = std::max(l.auth_failure_delay_max_ms, l.auth_failure_delay_ms);
  }
  if (rule->limits.max_auth_failures) l.max_auth_failures = *rule->limits.max_auth_failures;
  return l;
}

}  // namespace mailshim::conf
