#include "proxy/client_limits.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace mailshim::proxy {
namespace {

conf::IpAddress ip(const char* s) { return *conf::IpAddress::parse(s); }

TEST(ClientLimits, SessionLimitPerAddress) {
  ClientLimits l;
  EXPECT_TRUE(l.acquire(ip("192.0.2.1"), 2));
  EXPECT_TRUE(l.acquire(ip("192.0.2.1"), 2));
  EXPECT_FALSE(l.acquire(ip("192.0.2.1"), 2));
  EXPECT_TRUE(l.acquire(ip("192.0.2.2"), 2));  // another address has its own count
  EXPECT_EQ(l.sessions(ip("192.0.2.1")), 2u);
  l.release(ip("192.0.2.1"));
  EXPECT_TRUE(l.acquire(ip("192.0.2.1"), 2));
}

TEST(ClientLimits, ZeroMeansUnlimitedButCounted) {
  ClientLimits l;
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(l.acquire(ip("192.0.2.1"), 0));
  EXPECT_EQ(l.sessions(ip("192.0.2.1")), 1000u);
}

TEST(ClientLimits, Ipv6GroupedBySlash64AndMappedV4AsV4) {
  ClientLimits l;
  EXPECT_TRUE(l.acquire(ip("2001:db8:1:2::1"), 2));
  EXPECT_TRUE(l.acquire(ip("2001:db8:1:2:ffff::9"), 2));
  EXPECT_FALSE(l.acquire(ip("2001:db8:1:2::77"), 2));
  EXPECT_TRUE(l.acquire(ip("2001:db8:1:3::1"), 2));
  EXPECT_EQ(ClientLimits::keyOf(ip("2001:db8:1:2::1")), "2001:db8:1:2::/64");
  EXPECT_EQ(ClientLimits::keyOf(ip("::ffff:192.0.2.5")), "192.0.2.5");
  conf::IpAddress raw;  // mapped bytes left as IPv6 (not through parse)
  raw.v6 = true;
  raw.bytes = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 5};
  EXPECT_EQ(ClientLimits::keyOf(raw), "192.0.2.5");
  EXPECT_TRUE(l.acquire(ip("::ffff:192.0.2.5"), 1));
  EXPECT_FALSE(l.acquire(ip("192.0.2.5"), 1));
}

TEST(ClientLimits, EntriesVanishWhenUnused) {
  ClientLimits l;
  l.acquire(ip("192.0.2.1"), 5);
  l.release(ip("192.0.2.1"));
  EXPECT_TRUE(l.snapshot().empty());
  l.release(ip("192.0.2.9"));  // unknown: harmless
  EXPECT_TRUE(l.snapshot().empty());
}

TEST(ClientLimits, FailuresCountInsideWindowAndResetOnSuccess) {
  ClientLimits l;
  EXPECT_EQ(l.recordFailure(ip("192.0.2.1"), 1000, 60000), 1u);
  EXPECT_EQ(l.recordFailure(ip("192.0.2.1"), 2000, 60000), 2u);
  EXPECT_EQ(l.recordFailure(ip("192.0.2.2"), 2000, 60000), 1u);
  EXPECT_EQ(l.recordFailure(ip("192.0.2.1"), 2000 + 60001, 60000), 1u);  // window passed
  l.recordSuccess(ip("192.0.2.1"));
  EXPECT_EQ(l.recordFailure(ip("192.0.2.1"), 70000, 60000), 1u);
  l.expire(70000 + 60001, 60000);
  auto snap = l.snapshot();
  EXPECT_TRUE(snap.empty());
}

TEST(ClientLimits, FailureDelayBacksOffAndCaps) {
  EXPECT_EQ(ClientLimits::failureDelayMs(0, 2000, 15000), 0u);
  EXPECT_EQ(ClientLimits::failureDelayMs(1, 2000, 15000), 2000u);
  EXPECT_EQ(ClientLimits::failureDelayMs(2, 2000, 15000), 4000u);
  EXPECT_EQ(ClientLimits::failureDelayMs(3, 2000, 15000), 8000u);
  EXPECT_EQ(ClientLimits::failureDelayMs(4, 2000, 15000), 15000u);
  EXPECT_EQ(ClientLimits::failureDelayMs(4000000000u, 2000, 15000), 15000u);
  EXPECT_EQ(ClientLimits::failureDelayMs(5, 0, 15000), 0u);
}

TEST(ClientLimits, PreauthCapIsProcessWide) {
  ClientLimits l;
  EXPECT_TRUE(l.enterPreauth(2));
  EXPECT_TRUE(l.enterPreauth(2));
  EXPECT_FALSE(l.enterPreauth(2));
  EXPECT_EQ(l.preauthSessions(), 2u);
  l.leavePreauth();
  EXPECT_TRUE(l.enterPreauth(2));
  EXPECT_TRUE(l.enterPreauth(0));  // 0: no limit
  EXPECT_EQ(l.preauthSessions(), 3u);
}

TEST(ClientLimits, ConcurrentAcquireNeverExceedsLimit) {
  ClientLimits l;
  std::atomic<int> granted{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 100; ++i)
        if (l.acquire(ip("198.51.100.1"), 50)) granted++;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(granted.load(), 50);
  EXPECT_EQ(l.sessions(ip("198.51.100.1")), 50u);
}

}  // namespace
}  // namespace mailshim::proxy
