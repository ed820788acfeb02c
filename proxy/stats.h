// Stats, declared once (X-macro) and rendered everywhere from that one list:
// the periodic/shutdown stats log line now, the metrics endpoint and admin
// console later.
//
// No I/O.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "protocols/common/phase.h"
#include "protocols/common/quirks.h"

namespace mailshim::proxy {

#define MAILSHIM_COUNTERS(X)      \
  X(sessions_accepted)            \
  X(sessions_active)              \
  X(downstream_tls_handshakes)    \
  X(downstream_tls_failures)      \
  X(downstream_starttls)          \
  X(upstream_connects)            \
  X(upstream_connect_failures)    \
  X(upstream_tls_failures)        \
  X(auth_ok)                      \
  X(auth_failed)                  \
  X(auth_tempfail)                \
  X(bytes_downstream_in)          \
  X(bytes_upstream_in)            \
  X(quirk_overdue_uses)           \
  X(proxy_header_errors)          \
  X(upstream_marked_down)         \
  X(reloads)                      \
  X(reload_failures)

// Counters are atomics (relaxed): every worker thread updates the same set,
// so reading them is the aggregate.
using Counter = std::atomic<uint64_t>;

struct Stats {
#define MAILSHIM_DECLARE(name) Counter name{0};
  MAILSHIM_COUNTERS(MAILSHIM_DECLARE)
#undef MAILSHIM_DECLARE
  std::array<Counter, static_cast<size_t>(proto::Quirk::kCount)> quirk_uses{};
  std::array<Counter, static_cast<size_t>(proto::CloseReason::Internal) + 1> close_reasons{};
  std::array<Counter, 64> worker_sessions{};  // sessions accepted per worker (index mod 64)

  // "name=value ..." for every counter, quirk use and close reason seen.
  std::string render() const;
};

Stats& stats();

}  // namespace mailshim::proxy

namespace mailshim::proxy {

// Prometheus text exposition (version 0.0.4) of every counter, generated from
// the same X-macro list as render(), plus the labelled families (quirk uses,
// close reasons, per-worker sessions) and `extra` lines (e.g. upstream health).
std::string renderPrometheus(const Stats& s, const std::string& extra);

}  // namespace mailshim::proxy
