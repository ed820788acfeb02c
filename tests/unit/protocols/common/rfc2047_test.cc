// Tests for display-name phrases and RFC 2047 encoded-words: UTF-8
// validation, character-boundary splitting, the 75/78 character limits,
// quoting of RFC 5322 specials, and round trips. No I/O.
#include "protocols/common/rfc2047.h"

#include <gtest/gtest.h>

#include <string>

namespace mailshim::proto::rfc2047 {
namespace {

// Checks the folded field: lines <= 78, continuation lines start with SP,
// every encoded word <= 75 and whole characters; returns the decoded phrase.
std::string decodePhrase(const std::string& field) {
  std::string decoded;
  size_t pos = 0;
  bool first = true;
  while (pos < field.size()) {
    size_t end = field.find("\r\n", pos);
    EXPECT_NE(end, std::string::npos);
    if (end == std::string::npos) break;
    std::string line = field.substr(pos, end - pos);
    EXPECT_LE(line.size(), kMaxLineChars) << line;
    if (!first) {
      EXPECT_EQ(line.front(), ' ') << line;
    }
    size_t w = line.find("=?");
    while (w != std::string::npos) {
      // "=?charset?enc?text?=": the end follows the third '?'.
      size_t e = line.find("?=", line.find('?', line.find('?', w + 2) + 1) + 1);
      std::string word = line.substr(w, e + 2 - w);
      EXPECT_LE(word.size(), kMaxEncodedWordChars);
      auto d = decodeWord(word);
      EXPECT_TRUE(d) << word;
      if (d) {
        EXPECT_TRUE(isValidUtf8(*d)) << word;
        decoded += *d;
      }
      w = line.find("=?", e + 2);
    }
    first = false;
    pos = end + 2;
  }
  return decoded;
}

TEST(Rfc2047, Utf8Validation) {
  EXPECT_TRUE(isValidUtf8(""));
  EXPECT_TRUE(isValidUtf8("Alice"));
  EXPECT_TRUE(isValidUtf8("山田 太郎"));
  EXPECT_TRUE(isValidUtf8("\xF0\x9F\x93\xA7"));  // U+1F4E7
  EXPECT_FALSE(isValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(isValidUtf8("\xE0\x80\xAF"));      // overlong
  EXPECT_FALSE(isValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(isValidUtf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(isValidUtf8("\xE5\xB1"));          // truncated
  EXPECT_FALSE(isValidUtf8("\x80"));
  EXPECT_FALSE(isValidUtf8("\xFF"));
}

TEST(Rfc2047, UsableDisplayNames) {
  EXPECT_TRUE(isUsableDisplayName("Alice Liddell"));
  EXPECT_TRUE(isUsableDisplayName("  padded  "));
  EXPECT_TRUE(isUsableDisplayName("山田 太郎"));
  EXPECT_FALSE(isUsableDisplayName(""));
  EXPECT_FALSE(isUsableDisplayName("   "));
  EXPECT_FALSE(isUsableDisplayName("a\tb"));
  EXPECT_FALSE(isUsableDisplayName("a\r\nBcc: x@example.test"));
  EXPECT_FALSE(isUsableDisplayName(std::string("a\0b", 3)));
  EXPECT_FALSE(isUsableDisplayName("a\x7f"));
  EXPECT_FALSE(isUsableDisplayName("a\xC2\x85"));  // NEL (C1)
  EXPECT_FALSE(isUsableDisplayName("\xFF"));
  EXPECT_FALSE(isUsableDisplayName(std::string(kMaxDisplayNameBytes + 1, 'a')));
  EXPECT_TRUE(isUsableDisplayName(std::string(kMaxDisplayNameBytes, 'a')));
}

TEST(Rfc2047, EncodeWordsSplitsOnCharacters) {
  EXPECT_TRUE(encodeWords("").empty());
  auto one = encodeWords("山田 太郎");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0], "=?UTF-8?B?5bGx55SwIOWkqumDjg==?=");
  // 45 payload bytes per 75-character word; 3-byte characters: 15 per word.
  std::string kanji;
  for (int i = 0; i < 40; ++i) kanji += "漢";
  auto words = encodeWords(kanji);
  ASSERT_EQ(words.size(), 3u);
  std::string back;
  for (const auto& w : words) {
    EXPECT_LE(w.size(), 75u);
    auto d = decodeWord(w);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->size() % 3, 0u);
    back += *d;
  }
  EXPECT_EQ(back, kanji);
  // A tiny budget still fits one 4-byte character per word.
  auto emoji = encodeWords("\xF0\x9F\x93\xA7\xF0\x9F\x93\xA7", 1, 1);
  ASSERT_EQ(emoji.size(), 2u);
  EXPECT_EQ(*decodeWord(emoji[0]), "\xF0\x9F\x93\xA7");
}

TEST(Rfc2047, DecodeWord) {
  EXPECT_EQ(*decodeWord("=?UTF-8?B?5LiA?="), "一");
  EXPECT_EQ(*decodeWord("=?iso-8859-1?Q?a_b=3Dc?="), "a b=c");
  EXPECT_FALSE(decodeWord("=?UTF-8?X?abc?="));
  EXPECT_FALSE(decodeWord("=?UTF-8?Q?a=4?="));
  EXPECT_FALSE(decodeWord("plain"));
  EXPECT_FALSE(decodeWord("=??B?abc?="));
}

TEST(Rfc2047, FormatAsciiNames) {
  EXPECT_EQ(*formatMailboxField("From", "Alice Liddell", "alice@example.test"),
            "From: Alice Liddell <alice@example.test>\r\n");
  EXPECT_EQ(*formatMailboxField("From", "Liddell, Alice", "a@example.test"),
            "From: \"Liddell, Alice\" <a@example.test>\r\n");
  EXPECT_EQ(*formatMailboxField("From", "A. Liddell", "a@example.test"), "From: \"A. Liddell\" <a@example.test>\r\n");
  EXPECT_EQ(*formatMailboxField("From", "Say \"hi\" \\o/", "a@example.test"),
            "From: \"Say \\\"hi\\\" \\\\o/\" <a@example.test>\r\n");
  EXPECT_EQ(*formatMailboxField("From", "two  spaces", "a@example.test"), "From: \"two  spaces\" <a@example.test>\r\n");
  EXPECT_EQ(*formatMailboxField("from", "  Alice  ", "a@example.test"), "from: Alice <a@example.test>\r\n");
  // Looks like an encoded word: encoded for real so no client misreads it.
  EXPECT_EQ(*formatMailboxField("From", "=?x?=", "a@example.test"), "From: =?UTF-8?B?PT94Pz0=?= <a@example.test>\r\n");
  // Fits without the address: address on a continuation line.
  const std::string n60(60, 'n');
  EXPECT_EQ(*formatMailboxField("From", n60, "a@example.test"), "From: " + n60 + "\r\n <a@example.test>\r\n");
  // Too long for a line: folded encoded words.
  const std::string n100(100, 'n');
  auto f = formatMailboxField("From", n100, "a@example.test");
  ASSERT_TRUE(f);
  EXPECT_EQ(decodePhrase(*f), n100);
  // Campaign 2's smtp_from_rewrite input: the first line is exactly 78
  // characters, the limit excluding the CRLF (RFC 5322 2.1.1) — allowed.
  const std::string local = "johBCBBBBali=================Bali========?========mith";
  auto g = formatMailboxField("From", local, "a@example.test");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->find("\r\n"), kMaxLineChars);
  EXPECT_EQ(decodePhrase(*g), local);
}

TEST(Rfc2047, FormatJapaneseNames) {
  EXPECT_EQ(*formatMailboxField("From", "山田 太郎", "yamada@example.test"),
            "From: =?UTF-8?B?5bGx55SwIOWkqumDjg==?= <yamada@example.test>\r\n");
  const std::string jugemu =
      "寿限無寿限無五劫の擦り切れ海砂利水魚の水行末雲来末風来末食う寝る処に住む処やぶら小路の藪柑子パイポパイポパイポのシュ"
      "ーリンガン";
  auto f = formatMailboxField("From", jugemu, "jugemu@example.test");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->substr(0, 16), "From: =?UTF-8?B?");
  EXPECT_EQ(decodePhrase(*f), jugemu);
  EXPECT_TRUE(f->ends_with("?= <jugemu@example.test>\r\n"));
}

TEST(Rfc2047, FormatRefusesUnsafeInput) {
  EXPECT_FALSE(formatMailboxField("From", "a\r\nBcc: x@example.test", "a@example.test"));
  EXPECT_FALSE(formatMailboxField("From", "Alice", "a@example.test>\r\nBcc: x"));
  EXPECT_FALSE(formatMailboxField("From", "", "a@example.test"));
  EXPECT_FALSE(formatMailboxField("From", "\xFF\xFE", "a@example.test"));
}

}  // namespace
}  // namespace mailshim::proto::rfc2047
