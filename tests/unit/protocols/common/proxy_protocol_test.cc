// PROXY protocol v1/v2 decoding (whole, byte by byte) and v2 encoding.
#include "protocols/common/proxy_protocol.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mailshim::proto {
namespace {

using Status = ProxyHeaderDecoder::Status;

// Feeds a growing prefix like a socket delivering one byte at a time.
Status feedBytewise(const std::string& data, size_t& consumed, ProxyAddresses& out, std::string& err) {
  ProxyHeaderDecoder d;
  for (size_t i = 1; i <= data.size(); ++i) {
    Status s = d.decode(std::string_view(data).substr(0, i), consumed, out, err);
    if (s != Status::NeedMore) return s;
  }
  return Status::NeedMore;
}

TEST(ProxyProtocol, V1Tcp4WholeAndBytewise) {
  std::string h = "PROXY TCP4 127.0.0.2 127.0.0.1 51234 10587\r\nEHLO x\r\n";
  for (bool bytewise : {false, true}) {
    size_t consumed = 0;
    ProxyAddresses a;
    std::string err;
    Status s = bytewise ? feedBytewise(h, consumed, a, err) : ProxyHeaderDecoder().decode(h, consumed, a, err);
    ASSERT_EQ(s, Status::Done) << err;
    EXPECT_EQ(consumed, h.find("EHLO"));  // never past the header
    EXPECT_EQ(a.src_ip, "127.0.0.2");
    EXPECT_EQ(a.src_port, 51234);
    EXPECT_EQ(a.dst_ip, "127.0.0.1");
    EXPECT_EQ(a.dst_port, 10587);
    EXPECT_FALSE(a.local);
  }
}

// Found by fuzz/proxy_header_fuzz.cc (kept in tests/fuzz/corpus/proxy_header/
// regress_nul_in_address): a NUL inside the address field hid trailing bytes
// from inet_pton, so "128.0.0.9\0\0\0002" passed as 128.0.0.9.
TEST(ProxyProtocol, RegressionNulInsideV1Address) {
  std::string h("PROXY TCP4 128.0.0.9\0\0\0002 127.0.0.1 51234 10\r\n", 45);
  size_t c;
  ProxyAddresses a;
  std::string err;
  EXPECT_EQ(ProxyHeaderDecoder().decode(h, c, a, err), Status::Error);
}

TEST(ProxyProtocol, V1Tcp6AndUnknown) {
  size_t c;
  ProxyAddresses a;
  std::string err;
  ASSERT_EQ(ProxyHeaderDecoder().decode("PROXY TCP6 2001:db8::1 ::1 1 2\r\n", c, a, err), Status::Done) << err;
  EXPECT_TRUE(a.v6);
  EXPECT_EQ(a.src_ip, "2001:db8::1");
  ASSERT_EQ(ProxyHeaderDecoder().decode("PROXY UNKNOWN\r\n", c, a, err), Status::Done);
  EXPECT_TRUE(a.local);
}

TEST(ProxyProtocol, V1Rejects) {
  for (std::string bad : std::vector<std::string>{"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
                          "PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
                          "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
                          "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "EHLO x\r\n", "PROXY " + std::string(120, 'A')}) {
    size_t c;
    ProxyAddresses a;
    std::string err;
    EXPECT_EQ(ProxyHeaderDecoder().decode(bad, c, a, err), Status::Error) << bad;
  }
}

TEST(ProxyProtocol, V2RoundTripWithSslTlv) {
  std::string h = encodeProxyV2("127.0.0.2", 40000, "127.0.0.1", 993, "TLSv1.3");
  ASSERT_FALSE(h.empty());
  // PP2_TYPE_SSL present with PP2_CLIENT_SSL.
  EXPECT_NE(h.find(std::string("\x20", 1)), std::string::npos);
  EXPECT_NE(h.find("TLSv1.3"), std::string::npos);
  for (bool bytewise : {false, true}) {
    size_t consumed = 0;
    ProxyAddresses a;
    std::string err;
    std::string data = h + "a001 CAPABILITY\r\n";
    Status s = bytewise ? feedBytewise(data, consumed, a, err) : ProxyHeaderDecoder().decode(data, consumed, a, err);
    ASSERT_EQ(s, Status::Done) << err;
    EXPECT_EQ(consumed, h.size());
    EXPECT_EQ(a.src_ip, "127.0.0.2");
    EXPECT_EQ(a.src_port, 40000);
    EXPECT_EQ(a.dst_port, 993);
  }
  std::string v6 = encodeProxyV2("2001:db8::5", 1, "2001:db8::1", 2, "");
  size_t c;
  ProxyAddresses a;
  std::string err;
  ASSERT_EQ(ProxyHeaderDecoder().decode(v6, c, a, err), Status::Done);
  EXPECT_TRUE(a.v6);
  EXPECT_EQ(a.src_ip, "2001:db8::5");
  EXPECT_TRUE(encodeProxyV2("x", 1, "127.0.0.1", 2, "").empty());
  EXPECT_TRUE(encodeProxyV2("127.0.0.1", 1, "::1", 2, "").empty());  // mixed families
}

TEST(ProxyProtocol, V2LocalAndErrors) {
  std::string local("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A\x20\x00\x00\x00", 16);
  size_t c;
  ProxyAddresses a;
  std::string err;
  ASSERT_EQ(ProxyHeaderDecoder().decode(local, c, a, err), Status::Done);
  EXPECT_TRUE(a.local);
  std::string badver = local;
  badver[12] = 0x31;
  EXPECT_EQ(ProxyHeaderDecoder().decode(badver, c, a, err), Status::Error);
  std::string huge = local;
  huge[12] = 0x21;
  huge[13] = 0x11;
  huge[14] = '\xff';
  huge[15] = '\xff';
  EXPECT_EQ(ProxyHeaderDecoder().decode(huge, c, a, err), Status::Error);
  std::string shortv4 = local;
  shortv4[12] = 0x21;
  shortv4[13] = 0x11;
  shortv4[15] = 4;
  EXPECT_EQ(ProxyHeaderDecoder().decode(shortv4 + "abcd", c, a, err), Status::Error);
}

TEST(ProxyProtocol, LooksLikeHeader) {
  EXPECT_TRUE(ProxyHeaderDecoder::looksLikeHeader("PROXY TCP4"));
  EXPECT_TRUE(ProxyHeaderDecoder::looksLikeHeader("PRO"));
  EXPECT_TRUE(ProxyHeaderDecoder::looksLikeHeader(std::string("\x0D\x0A\x0D\x0A\x00", 5)));
  EXPECT_FALSE(ProxyHeaderDecoder::looksLikeHeader("EHLO x"));
  EXPECT_FALSE(ProxyHeaderDecoder::looksLikeHeader(""));
}

}  // namespace
}  // namespace mailshim::proto
