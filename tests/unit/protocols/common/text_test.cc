// Unit tests for the shared text helpers (case folding, line safety, logSafe). No I/O.
#include "protocols/common/text.h"

#include <gtest/gtest.h>

#include <string>

namespace mailshim::proto {
namespace {

TEST(Text, CaseInsensitive) {
  EXPECT_TRUE(iequals("EhLo", "ehlo"));
  EXPECT_FALSE(iequals("ehlo", "ehl"));
  EXPECT_FALSE(iequals("\xc4", "\xe4"));  // ASCII-only folding
  EXPECT_TRUE(istartsWith("MAIL FROM:<a>", "mail from:"));
  EXPECT_FALSE(istartsWith("MA", "MAIL"));
  EXPECT_EQ(asciiUpper("auth plain \xe4"), "AUTH PLAIN \xe4");
  EXPECT_EQ(asciiLower('Q'), 'q');
  EXPECT_EQ(asciiLower('['), '[');
}

TEST(Text, LineSafe) {
  EXPECT_TRUE(isLineSafe("mail.example.com"));
  EXPECT_TRUE(isLineSafe("tab\there"));
  EXPECT_FALSE(isLineSafe("a\rb"));
  EXPECT_FALSE(isLineSafe("a\nb"));
  EXPECT_FALSE(isLineSafe(std::string_view("a\0b", 3)));
}

TEST(Text, Utf8Validity) {
  EXPECT_TRUE(isValidUtf8(""));
  EXPECT_TRUE(isValidUtf8("alice@example.test"));
  EXPECT_TRUE(isValidUtf8("p\xc3\xa4ss \xe5\xa4\xaa\xe9\x83\x8e \xf0\x9f\x93\xa7"));  // ä, 太郎, U+1F4E7
  EXPECT_FALSE(isValidUtf8("\xff\xfe@example.test"));
  EXPECT_FALSE(isValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(isValidUtf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(isValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(isValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(isValidUtf8("a\xc3"));              // truncated
  EXPECT_FALSE(isValidUtf8("\xe4"));               // Latin-1 ä
  EXPECT_EQ(replaceInvalidUtf8("\xff\xfe\xc0" "bad \xc3\xa4"), "???bad \xc3\xa4");
  EXPECT_EQ(replaceInvalidUtf8("a\xe5\xa4"), "a??");
  EXPECT_EQ(replaceInvalidUtf8("plain"), "plain");
}

TEST(Text, LogSafeEscapesAndTruncates) {
  EXPECT_EQ(logSafe("plain text"), "plain text");
  EXPECT_EQ(logSafe("a\r\nb"), "a\\x0d\\x0ab");
  EXPECT_EQ(logSafe(std::string_view("\0", 1)), "\\x00");
  EXPECT_EQ(logSafe("back\\slash"), "back\\x5cslash");
  EXPECT_EQ(logSafe("\x7f\xff"), "\\x7f\\xff");
  EXPECT_EQ(logSafe("abcdef", 3), "abc...");
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  std::string out = logSafe(all, 10000);
  EXPECT_EQ(out.find_first_of(std::string_view("\r\n\0", 3)), std::string::npos);
}

TEST(Text, NextWord) {
  std::string_view rest = "AUTH PLAIN  x";
  EXPECT_EQ(nextWord(rest), "AUTH");
  EXPECT_EQ(rest, "PLAIN  x");
  EXPECT_EQ(nextWord(rest), "PLAIN");
  EXPECT_EQ(nextWord(rest), "");
  EXPECT_EQ(nextWord(rest), "x");
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(nextWord(rest), "");
}

}  // namespace
}  // namespace mailshim::proto
