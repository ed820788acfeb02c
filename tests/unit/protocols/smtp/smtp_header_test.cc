// Tests for the DATA header block helpers: where the header section ends
// (empty line, first non-header line, the byte bound), field splitting with
// folding, the bare-mailbox test for From, plain addresses, and the
// informational values reported as ClientInfo. No I/O.
#include "protocols/smtp/smtp_header.h"

#include <gtest/gtest.h>

#include <string>

namespace mailshim::proto::smtp {
namespace {

using Status = HeaderCollector::Status;

TEST(HeaderCollector, EndsAtEmptyLineAtAnySplit) {
  const std::string msg = "From: a@example.test\r\nSubject: x\r\n y\r\n\r\nbody\r\n";
  for (size_t step = 1; step <= msg.size(); ++step) {
    HeaderCollector h(1024);
    Status st = Status::NeedMore;
    for (size_t i = 0; i < msg.size() && st == Status::NeedMore; i += step) st = h.append(msg.substr(i, step));
    ASSERT_EQ(st, Status::Complete) << step;
    EXPECT_EQ(h.headerEnd(), std::string("From: a@example.test\r\nSubject: x\r\n y\r\n").size());
  }
}

TEST(HeaderCollector, EndsAtFirstNonHeaderLine) {
  HeaderCollector h(1024);
  EXPECT_EQ(h.append("Subject: x\r\nnot a header\r\nFrom: a@example.test\r\n"), Status::Complete);
  EXPECT_EQ(h.headerEnd(), 12u);
  HeaderCollector g(1024);
  EXPECT_EQ(g.append(" leading space\r\n"), Status::Complete);
  EXPECT_EQ(g.headerEnd(), 0u);
  HeaderCollector e(1024);
  EXPECT_EQ(e.append("\r\nbody"), Status::Complete);
  EXPECT_EQ(e.headerEnd(), 0u);
}

TEST(HeaderCollector, BoundIsInclusive) {
  const std::string header = "From: a@example.test\r\n\r\n";
  HeaderCollector exact(header.size());
  EXPECT_EQ(exact.append(header + "body\r\n"), Status::Complete);
  HeaderCollector over(header.size() - 1);
  EXPECT_EQ(over.append(header + "body\r\n"), Status::TooLarge);
  HeaderCollector partial(10);
  EXPECT_EQ(partial.append("Subject: 0123456789"), Status::TooLarge);
  HeaderCollector wait(100);
  EXPECT_EQ(wait.append("Subject: 0123"), Status::NeedMore);
  wait.finish();
  EXPECT_EQ(wait.status(), Status::Complete);
  EXPECT_EQ(wait.take(), "Subject: 0123");
  EXPECT_EQ(wait.status(), Status::NeedMore);
  EXPECT_TRUE(wait.bytes().empty());
}

TEST(HeaderFields, SplitKeepsFolding) {
  const std::string h = "Received: a\r\n\tb\r\nFROM : x@example.test\r\nTo: y\r\n  z\r\n";
  auto f = splitHeaderFields(h);
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0].name, "Received");
  EXPECT_EQ(h.substr(f[0].begin, f[0].end - f[0].begin), "Received: a\r\n\tb\r\n");
  EXPECT_EQ(f[0].value, " a\r\n\tb\r\n");
  EXPECT_EQ(f[1].name, "FROM");
  EXPECT_EQ(f[1].value, " x@example.test\r\n");
  EXPECT_EQ(f[2].end, h.size());
  EXPECT_TRUE(isHeaderFieldLine("X-Foo.Bar: 1"));
  EXPECT_TRUE(isHeaderFieldLine("From\t:x"));
  EXPECT_FALSE(isHeaderFieldLine("From x: y"));
  EXPECT_FALSE(isHeaderFieldLine(": y"));
  EXPECT_FALSE(isHeaderFieldLine("From"));
}

TEST(HeaderFields, BareMailboxAddress) {
  EXPECT_EQ(*bareMailboxAddress(" alice@example.test\r\n"), "alice@example.test");
  EXPECT_EQ(*bareMailboxAddress(" <alice@example.test>\r\n"), "alice@example.test");
  EXPECT_EQ(*bareMailboxAddress(" \"\" <alice@example.test>\r\n"), "alice@example.test");
  EXPECT_EQ(*bareMailboxAddress("\"\"<alice@example.test>"), "alice@example.test");
  EXPECT_EQ(*bareMailboxAddress("\r\n\t< alice@example.test >\r\n"), "alice@example.test");
  EXPECT_EQ(*bareMailboxAddress(" first.last+tag@sub.example.test\r\n"), "first.last+tag@sub.example.test");
  for (const char* v : {" Alice <a@example.test>", " \"A\" <a@example.test>", " a@example.test (A)", " (A) a@example.test",
                        " a@example.test, b@example.test", " g: a@example.test;", " <a@example.test", " a@",
                        " @example.test", " a..b@example.test", " .a@example.test", " \"a b\"@example.test",
                        " a@[192.0.2.1]", " a@-x.example", " a@x-.example", " a@x..example", " a b@example.test", "",
                        " ", " <>", " \"\" ", " =?UTF-8?B?5LiA?= <a@example.test>", " a@b@example.test"})
    EXPECT_FALSE(bareMailboxAddress(v)) << v;
}

TEST(HeaderFields, PlainAddress) {
  EXPECT_TRUE(isPlainAddress("alice@example.test"));
  EXPECT_TRUE(isPlainAddress("a@localhost"));
  EXPECT_FALSE(isPlainAddress("alice"));
  EXPECT_FALSE(isPlainAddress("alice@"));
  EXPECT_FALSE(isPlainAddress(std::string(65, 'a') + "@example.test"));
  EXPECT_FALSE(isPlainAddress("a@" + std::string(64, 'b') + ".test"));
  EXPECT_FALSE(isPlainAddress("a\r\n@example.test"));
}

TEST(HeaderFields, InformationalValue) {
  EXPECT_EQ(informationalValue(" Microsoft Outlook 16.0\r\n"), "Microsoft Outlook 16.0");
  EXPECT_EQ(informationalValue(" a\r\n\t b\x01\x7f  c \r\n"), "a b?? c");
  EXPECT_EQ(informationalValue(" 山田\r\n"), "山田");
  EXPECT_EQ(informationalValue(" " + std::string(300, 'x') + "\r\n"), std::string(200, 'x'));
  // Cut on a character boundary.
  std::string kanji;
  for (int i = 0; i < 100; ++i) kanji += "漢";
  EXPECT_EQ(informationalValue(kanji, 10), "漢漢漢");
  EXPECT_EQ(informationalValue(" \r\n"), "");
}

}  // namespace
}  // namespace mailshim::proto::smtp
