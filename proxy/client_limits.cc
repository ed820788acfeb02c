// Per-client-address limits. See client_limits.h.
#include "proxy/client_limits.h"

#include <algorithm>

namespace mailshim::proxy {

std::string ClientLimits::keyOf(const conf::IpAddress& addr) {
  // An IPv4-mapped IPv6 address counts as its IPv4 address (fromV6 maps it).
  conf::IpAddress a = addr.v6 ? conf::IpAddress::fromV6(addr.bytes.data()) : addr;
  if (!a.v6) return a.toString();
  std::fill(a.bytes.begin() + 8, a.bytes.end(), 0);
  return a.toString() + "/64";
}

int64_t ClientLimits::nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool ClientLimits::enterPreauth(uint32_t max) {
  uint64_t n = preauth_.fetch_add(1, std::memory_order_relaxed);
  if (max != 0 && n >= max) {
    preauth_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void ClientLimits::leavePreauth() { preauth_.fetch_sub(1, std::memory_order_relaxed); }

bool ClientLimits::acquire(const conf::IpAddress& addr, uint32_t max) {
  std::lock_guard lock(mu_);
  auto& st = map_[keyOf(addr)];
  if (max != 0 && st.sessions >= max) return false;
  st.sessions++;
  return true;
}

void ClientLimits::release(const conf::IpAddress& addr) {
  std::lock_guard lock(mu_);
  auto it = map_.find(keyOf(addr));
  if (it == map_.end()) return;
  if (it->second.sessions > 0) it->second.sessions--;
  if (it->second.sessions == 0 && it->second.failures == 0) map_.erase(it);
}

uint32_t ClientLimits::recordFailure(const conf::IpAddress& addr, int64_t now_ms, uint32_t window_ms) {
  std::lock_guard lock(mu_);
  auto& st = map_[keyOf(addr)];
  if (st.failures > 0 && now_ms - st.last_failure_ms > static_cast<int64_t>(window_ms)) st.failures = 0;
  st.failures++;
  st.last_failure_ms = now_ms;
  return st.failures;
}

void ClientLimits::recordSuccess(const conf::IpAddress& addr) {
  std::lock_guard lock(mu_);
  auto it = map_.find(keyOf(addr));
  if (it == map_.end()) return;
  it->second.failures = 0;
  if (it->second.sessions == 0) map_.erase(it);
}

uint32_t ClientLimits::failureDelayMs(uint32_t failures, uint32_t base_ms, uint32_t max_ms) {
  if (failures == 0 || base_ms == 0) return 0;
  uint64_t d = base_ms;
  for (uint32_t i = 1; i < failures && d < max_ms; ++i) d *= 2;
  return static_cast<uint32_t>(std::min<uint64_t>(d, max_ms));
}

void ClientLimits::expire(int64_t now_ms, uint32_t window_ms) {
  std::lock_guard lock(mu_);
  for (auto it = map_.begin(); it != map_.end();) {
    auto& st = it->second;
    if (st.failures > 0 && now_ms - st.last_failure_ms > static_cast<int64_t>(window_ms)) st.failures = 0;
    if (st.sessions == 0 && st.failures == 0)
      it = map_.erase(it);
    else
      ++it;
  }
}

std::vector<ClientLimits::Entry> ClientLimits::snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<Entry> out;
  out.reserve(map_.size());
  for (const auto& [k, st] : map_) out.push_back(Entry{k, st.sessions, st.failures, st.last_failure_ms});
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.key < b.key; });
  return out;
}

uint32_t ClientLimits::sessions(const conf::IpAddress& addr) const {
  std::lock_guard lock(mu_);
  auto it = map_.find(keyOf(addr));
  return it == map_.end() ? 0 : it->second.sessions;
}

}  // namespace mailshim::proxy
