// Unit tests for the SASL PLAIN/LOGIN helpers (RFC 4616, [MS-XLOGIN]). No I/O.
#include "protocols/common/sasl.h"

#include <gtest/gtest.h>

#include <string>

#include "protocols/common/base64.h"

namespace mailshim::proto::sasl {
namespace {

using namespace std::string_literals;

std::string b64(std::string_view raw) { return base64Encode(raw); }

TEST(Sasl, MechanismNamesCaseInsensitive) {
  EXPECT_EQ(mechanismFromName("PLAIN"), Mechanism::Plain);
  EXPECT_EQ(mechanismFromName("plain"), Mechanism::Plain);
  EXPECT_EQ(mechanismFromName("Login"), Mechanism::Login);
  EXPECT_FALSE(mechanismFromName("CRAM-MD5"));
  EXPECT_FALSE(mechanismFromName(""));
}

TEST(Sasl, LoginChallengesAreByteExact) {
  EXPECT_EQ(kLoginUserChallenge, "VXNlcm5hbWU6");
  EXPECT_EQ(kLoginPassChallenge, "UGFzc3dvcmQ6");
}

TEST(Sasl, DecodePlain) {
  auto c = decodePlain(b64("\0alice@example.com\0s3cret"s));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->authzid, "");
  EXPECT_EQ(c->user, "alice@example.com");
  EXPECT_EQ(c->password.reveal(), "s3cret");
  EXPECT_EQ(c->method, AuthMethod::Plain);
}

TEST(Sasl, DecodePlainWithAuthzidAndEmptyPassword) {
  auto c = decodePlain(b64("admin\0bob\0"s));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->authzid, "admin");
  EXPECT_EQ(c->user, "bob");
  EXPECT_TRUE(c->password.empty());
}

TEST(Sasl, RoundTripBobsPassword) {
  Credentials c;
  c.user = "bob@example.com";
  c.password = Secret(std::string("b0b pa\"ss\\wd"));
  std::string enc = encodePlain(c);
  EXPECT_EQ(*base64Decode(enc), "\0bob@example.com\0b0b pa\"ss\\wd"s);
  auto back = decodePlain(enc);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->user, "bob@example.com");
  EXPECT_EQ(back->password.reveal(), "b0b pa\"ss\\wd");
}

TEST(Sasl, DecodePlainRejects) {
  EXPECT_FALSE(decodePlain("not base64!"));
  EXPECT_FALSE(decodePlain(""));                                       // no separators
  EXPECT_FALSE(decodePlain(b64("useronly")));                          // no NUL
  EXPECT_FALSE(decodePlain(b64("\0user"s)));            // one NUL
  EXPECT_FALSE(decodePlain(b64("\0\0pw"s)));            // empty user
  EXPECT_FALSE(decodePlain(b64("\0us\ner\0pw"s)));     // LF in user
  EXPECT_FALSE(decodePlain(b64("\0user\0p\rw"s)));     // CR in password
  EXPECT_FALSE(decodePlain(b64("\0user\0p\0w"s)));     // NUL in password
  EXPECT_FALSE(decodePlain(b64("\0"s + std::string(kMaxFieldBytes + 1, 'u') + "\0p"s)));
}

TEST(Sasl, DecodeLoginField) {
  EXPECT_EQ(decodeLoginField(b64("alice")), "alice");
  EXPECT_EQ(decodeLoginField(""), "");
  EXPECT_FALSE(decodeLoginField("YWxpY2U"));  // bad padding
  EXPECT_FALSE(decodeLoginField(b64("al\0ce"s)));
  EXPECT_FALSE(decodeLoginField(b64("a\r\nb")));
}

TEST(Sasl, ValidField) {
  EXPECT_TRUE(validField("user@example.com"));
  EXPECT_TRUE(validField(""));
  EXPECT_FALSE(validField("a\nb"));
  EXPECT_FALSE(validField(std::string(kMaxFieldBytes + 1, 'x')));
  EXPECT_TRUE(validField(std::string(kMaxFieldBytes, 'x')));
}

}  // namespace
}  // namespace mailshim::proto::sasl
