// Unit tests for the strict base64 codec (RFC 4648 section 10 vectors). No I/O.
#include "protocols/common/base64.h"

#include <gtest/gtest.h>

#include <string>

namespace mailshim::proto {
namespace {

TEST(Base64, Rfc4648Vectors) {
  const std::pair<const char*, const char*> kVectors[] = {
      {"", ""},          {"f", "Zg=="},         {"fo", "Zm8="},          {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, enc] : kVectors) {
    EXPECT_EQ(base64Encode(plain), enc);
    auto dec = base64Decode(enc);
    ASSERT_TRUE(dec.has_value()) << enc;
    EXPECT_EQ(*dec, plain);
  }
}

TEST(Base64, SaslChallenges) {
  EXPECT_EQ(base64Encode("Username:"), "VXNlcm5hbWU6");
  EXPECT_EQ(base64Encode("Password:"), "UGFzc3dvcmQ6");
}

TEST(Base64, BinaryRoundTrip) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t n = 0; n <= all.size(); n += 7) {
    auto dec = base64Decode(base64Encode(all.substr(0, n)));
    ASSERT_TRUE(dec);
    EXPECT_EQ(*dec, all.substr(0, n));
  }
}

TEST(Base64, RejectsBadInput) {
  for (const char* bad : {"Zg=", "Zg", "Z", "Zm9v YmFy", "Zm9v\r\n", "Zm9v\n", "Z===", "====", "Zg==Zg==",
                          "Zm=v", "Zm9*", "Zm9-", "Zm9_", "Zg=a"}) {
    EXPECT_FALSE(base64Decode(bad).has_value()) << bad;
  }
  EXPECT_FALSE(base64Decode(std::string_view("Zm9\0", 4)).has_value());
  EXPECT_FALSE(base64Decode("*").has_value());
}

}  // namespace
}  // namespace mailshim::proto
