#include "conf/cidr.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>

namespace mailshim::conf {
namespace {

// The hand-written IPv4 formatter against inet_ntop, for every value of each
// octet position (the rest fixed) and the boundaries of 1, 2 and 3 digits.
TEST(IpAddress, Ipv4TextMatchesInetNtop) {
  for (int pos = 0; pos < 4; ++pos)
    for (int v = 0; v < 256; ++v) {
      uint8_t b[4] = {192, 0, 2, 77};
      b[pos] = static_cast<uint8_t>(v);
      char want[INET_ADDRSTRLEN];
      ASSERT_NE(inet_ntop(AF_INET, b, want, sizeof want), nullptr);
      EXPECT_EQ(IpAddress::fromV4(b).toString(), want);
    }
  const uint8_t zero[4] = {0, 0, 0, 0}, ones[4] = {255, 255, 255, 255}, mixed[4] = {9, 10, 99, 100};
  EXPECT_EQ(IpAddress::fromV4(zero).toString(), "0.0.0.0");
  EXPECT_EQ(IpAddress::fromV4(ones).toString(), "255.255.255.255");
  EXPECT_EQ(IpAddress::fromV4(mixed).toString(), "9.10.99.100");
}

TEST(IpAddress, FromV6NormalisesMappedAddresses) {
  in6_addr a{};
  ASSERT_EQ(inet_pton(AF_INET6, "::ffff:198.51.100.7", &a), 1);
  IpAddress m = IpAddress::fromV6(a.s6_addr);
  EXPECT_FALSE(m.v6);
  EXPECT_EQ(m.toString(), "198.51.100.7");
  ASSERT_EQ(inet_pton(AF_INET6, "2001:db8::1", &a), 1);
  IpAddress v6 = IpAddress::fromV6(a.s6_addr);
  EXPECT_TRUE(v6.v6);
  EXPECT_EQ(v6.toString(), "2001:db8::1");
  ASSERT_EQ(inet_pton(AF_INET6, "::1", &a), 1);
  EXPECT_EQ(IpAddress::fromV6(a.s6_addr).toString(), "::1");
}

TEST(IpAddress, ParseAndFromBytesAgree) {
  for (const char* text : {"127.0.0.1", "10.20.30.40", "::ffff:10.0.0.1", "fe80::1", "2001:db8:0:0:1:0:0:1"}) {
    auto p = IpAddress::parse(text);
    ASSERT_TRUE(p) << text;
    IpAddress b = p->v6 ? IpAddress::fromV6(p->bytes.data()) : IpAddress::fromV4(p->bytes.data());
    EXPECT_EQ(b.v6, p->v6) << text;
    EXPECT_EQ(b.bytes, p->bytes) << text;
    EXPECT_EQ(b.toString(), p->toString()) << text;
  }
  EXPECT_EQ(IpAddress::parse("::ffff:10.0.0.1")->toString(), "10.0.0.1");
  EXPECT_EQ(IpAddress::parse("2001:db8:0:0:1:0:0:1")->toString(), "2001:db8::1:0:0:1");  // RFC 5952
}

}  // namespace
}  // namespace mailshim::conf
