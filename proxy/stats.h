// Stats, declared once and rendered everywhere from that one declaration:
// the Prometheus endpoint (/metrics), the admin console (SHOW STATS) and the
// stats line logged at shutdown. Adding a line to one of the three lists
// below is all it takes to have a new figure in all of them.
//
// Plain counters are relaxed atomics (every worker updates the same set);
// labelled families and histograms take a mutex, and are only touched a few
// times per session (never per relayed buffer).
//
// No I/O.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/common/phase.h"
#include "protocols/common/quirks.h"

namespace mailshim::proxy {

// name, help. sessions_active is a gauge; everything else counts up.
#define MAILSHIM_COUNTERS(X)                                                                         \
  X(sessions_accepted, "Client connections accepted")                                                \
  X(sessions_active, "Client connections open now")                                                  \
  X(downstream_tls_handshakes, "Client TLS handshakes completed (implicit and STARTTLS)")             \
  X(downstream_tls_failures, "Client TLS handshakes failed or timed out")                            \
  X(downstream_starttls, "STARTTLS/STLS commands accepted from clients")                             \
  X(upstream_connects, "Backend connections opened")                                                 \
  X(upstream_connect_failures, "Backend connections that failed to open")                            \
  X(upstream_tls_failures, "Backend TLS failures (STARTTLS refused, certificate not verified)")      \
  X(auth_ok, "Logins the backend accepted")                                                          \
  X(auth_failed, "Logins the backend refused")                                                       \
  X(auth_tempfail, "Logins that could not be decided (backend unavailable)")                         \
  X(bytes_downstream_in, "Bytes read from clients")                                                  \
  X(bytes_upstream_in, "Bytes read from backends")                                                   \
  X(quirk_overdue_uses, "Quirk uses after the rule's sunset")                                        \
  X(proxy_header_errors, "Bad, missing or untrusted PROXY protocol headers")                         \
  X(upstream_marked_down, "Times a pool member was marked down")                                     \
  X(reloads, "Configuration reloads attempted")                                                      \
  X(reload_failures, "Configuration reloads refused (the running configuration was kept)")           \
  X(sessions_refused_address_limit, "Sessions refused: too many from the client address")            \
  X(sessions_refused_busy, "Sessions refused at accept: max_preauth_sessions not logged in yet")     \
  X(auth_failure_delays, "Failed-login replies delayed by the brute-force throttle")                 \
  X(sessions_closed_auth_failures, "Sessions closed after max_auth_failures failed logins")          \
  X(login_timeouts, "Sessions closed for not completing a login within login_timeout_ms")            \
  X(admin_commands, "Admin console commands served")

// name, kind, comma-separated label names, help.
#define MAILSHIM_FAMILIES(X)                                                                          \
  X(sessions, gauge, "listener,state", "Client connections open now, by listener and session state")  \
  X(listener_sessions, counter, "listener", "Client connections accepted, by listener")               \
  X(tls_handshakes, counter, "listener,version", "Client TLS handshakes completed, by protocol version") \
  X(tls_handshake_failures, counter, "listener,reason", "Client TLS handshakes failed, by reason")      \
  X(auth_results, counter, "listener,result", "Logins by result (ok, failed, tempfail)")                \
  X(quirk_rule_uses, counter, "quirk,rule", "Quirk uses, by quirk and the rule that enabled it")        \
  X(quirk_rule_overdue_uses, counter, "quirk,rule", "Quirk uses after the rule's sunset date")          \
  X(bytes_relayed, counter, "listener,direction", "Bytes relayed after login, counted when a session ends") \
  X(refusals, counter, "listener,reason", "Sessions refused or closed by an abuse limit, by reason")    \
  X(sessions_closed, counter, "reason", "Sessions closed, by reason")

// name, label name, help. Buckets: Histogram::kBounds (seconds).
#define MAILSHIM_HISTOGRAMS(X)                                                           \
  X(upstream_connect_seconds, "upstream", "Time to open the TCP connection to a backend") \
  X(upstream_login_seconds, "upstream",                                                  \
    "Credentials received to the backend's verdict (connect, TLS, XCLIENT/ID, AUTH)")

using Counter = std::atomic<uint64_t>;

// A labelled counter or gauge.
class Family {
 public:
  Family(const char* name, const char* kind, const char* labels, const char* help);
  // Adds `delta` to the row for `values` (one per label, in order).
  void add(std::initializer_list<std::string_view> values, int64_t delta = 1);
  struct Row {
    std::vector<std::string> values;
    int64_t value = 0;
  };
  std::vector<Row> rows() const;
  const std::string& name() const { return name_; }
  const std::string& kind() const { return kind_; }
  const std::vector<std::string>& labels() const { return labels_; }
  const std::string& help() const { return help_; }

 private:
  std::string name_, kind_, help_;
  std::vector<std::string> labels_;
  // Ordered by the label values, compared element by element; `add` looks a
  // row up by string_views (no allocation) and copies the key only for a new
  // row: it runs about a dozen times per session.
  struct ValuesLess {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                          [](std::string_view x, std::string_view y) { return x < y; });
    }
  };
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, int64_t, ValuesLess> rows_;
};

class Histogram {
 public:
  static constexpr std::array<double, 12> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,   0.25,   0.5,   1.0,  2.5,   5.0};
  Histogram(const char* name, const char* label, const char* help);
  void observe(std::string_view label_value, double seconds);
  struct Row {
    std::string label_value;
    std::array<uint64_t, kBounds.size()> buckets{};  // non-cumulative
    uint64_t count = 0;
    double sum = 0;
  };
  std::vector<Row> rows() const;
  const std::string& name() const { return name_; }
  const std::string& label() const { return label_; }
  const std::string& help() const { return help_; }

 private:
  std::string name_, label_, help_;
  mutable std::mutex mu_;
  std::map<std::string, Row, std::less<>> rows_;
};

struct Stats {
  Stats();  // lists every close reason at 0, so rates work from the first scrape
#define MAILSHIM_DECLARE(name, help) Counter name{0};
  MAILSHIM_COUNTERS(MAILSHIM_DECLARE)
#undef MAILSHIM_DECLARE
#define MAILSHIM_DECLARE(name, kind, labels, help) Family name{#name, #kind, labels, help};
  MAILSHIM_FAMILIES(MAILSHIM_DECLARE)
#undef MAILSHIM_DECLARE
#define MAILSHIM_DECLARE(name, label, help) Histogram name{#name, label, help};
  MAILSHIM_HISTOGRAMS(MAILSHIM_DECLARE)
#undef MAILSHIM_DECLARE
  std::array<Counter, static_cast<size_t>(proto::Quirk::kCount)> quirk_uses{};
  std::array<Counter, 64> worker_sessions{};  // sessions accepted per worker (index mod 64)

  // "name=value ..." of every non-zero plain counter (the shutdown log line).
  std::string render() const;
};

Stats& stats();

// Prometheus text exposition (version 0.0.4) of everything declared above,
// plus `extra` lines (upstream health, workers).
std::string renderPrometheus(const Stats& s, const std::string& extra);

// The admin console's SHOW STATS: one `name{label="v",...} value` line per
// figure, the same names as the Prometheus output without its comments.
std::string renderText(const Stats& s);

}  // namespace mailshim::proxy
