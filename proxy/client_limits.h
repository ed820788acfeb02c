// ClientLimits: what all workers share about each client address — how many
// sessions it has open (for [limits] max_sessions_per_address) and its recent
// failed logins (for the failure delay with backoff and the report in the
// admin console). Thread-safe: one mutex, taken a few times per session.
//
// Addresses are grouped the way abusers are: an IPv4 address on its own, an
// IPv6 address by its /64 (one customer line or host gets a whole /64; a
// limit per /128 would be no limit). IPv4-mapped IPv6 counts as IPv4.
// An entry disappears once the address has no session open and no failure
// inside the window.
//
// No I/O.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "conf/cidr.h"

namespace mailshim::proxy {

class ClientLimits {
 public:
  // Takes a session slot for `addr`; false (nothing taken) when `max` are
  // already open. max = 0: no limit (the slot is still counted).
  bool acquire(const conf::IpAddress& addr, uint32_t max);
  void release(const conf::IpAddress& addr);

  // The process-wide count of sessions that have not logged in yet (they
  // hold TLS state and buffers but have proven nothing): false when `max`
  // (0 = no limit) are open.
  bool enterPreauth(uint32_t max);
  void leavePreauth();
  uint64_t preauthSessions() const { return preauth_.load(std::memory_order_relaxed); }

  // Records one failed login at `now_ms`; returns the failures of `addr`
  // inside the last `window_ms`, this one included.
  uint32_t recordFailure(const conf::IpAddress& addr, int64_t now_ms, uint32_t window_ms);
  // A successful login from `addr` forgets its failures (as Dovecot does).
  void recordSuccess(const conf::IpAddress& addr);

  // The delay before the reply to the n-th failure: 0 for n = 0, else
  // base_ms * 2^(n-1), at most max_ms.
  static uint32_t failureDelayMs(uint32_t failures, uint32_t base_ms, uint32_t max_ms);

  // Drops entries with no open session and no failure inside the window.
  void expire(int64_t now_ms, uint32_t window_ms);

  struct Entry {
    std::string key;  // "192.0.2.7" or "2001:db8:1:2::/64"
    uint32_t sessions = 0;
    uint32_t failures = 0;
    int64_t last_failure_ms = 0;
  };
  std::vector<Entry> snapshot() const;  // for the admin console
  uint32_t sessions(const conf::IpAddress& addr) const;

  static std::string keyOf(const conf::IpAddress& addr);
  static int64_t nowMs();  // monotonic clock, for the failure window

 private:
  struct State {
    uint32_t sessions = 0;
    uint32_t failures = 0;
    int64_t last_failure_ms = 0;
  };
  std::atomic<uint64_t> preauth_{0};
  mutable std::mutex mu_;
  std::unordered_map<std::string, State> map_;
};

}  // namespace mailshim::proxy
