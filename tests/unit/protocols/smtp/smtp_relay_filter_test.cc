// Transcript tests for SmtpRelayFilter: byte-exact pass-through, pipelined
// MAIL/RCPT/DATA, content held until 354, end-of-data detection across every
// split (dot-stuffing untouched), DATA rejected, message accepted/rejected
// notes, BDAT, XCLIENT refused locally, bounds. The quirks and the bare CR/LF
// defence are in smtp_relay_quirks_test.cc. No I/O.
#include "protocols/smtp/smtp_relay_filter.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "tests/unit/phase_harness.h"

namespace mailshim::proto::smtp {
namespace {

using testing::Outcome;
using testing::Split;

struct Relay {
  explicit Relay(Split s, uint32_t seed = 3)
      : filter(std::make_unique<SmtpRelayFilter>(testing::defaultContext())), split(s), seed_(seed) {}
  void client(std::string_view b) {
    client_bytes += b;
    testing::feedSplit(b, split, seed_++, [this](std::string_view c) { return filter->onDownstreamData(c); }, out);
  }
  void backend(std::string_view b) {
    backend_bytes += b;
    testing::feedSplit(b, split, seed_++, [this](std::string_view c) { return filter->onUpstreamData(c); }, out);
  }
  std::vector<std::string> infoNotes() const {
    std::vector<std::string> v;
    for (const auto& n : out.notes)
      if (n.level == LogNote::Level::Info) v.push_back(n.text);
    return v;
  }
  std::unique_ptr<SmtpRelayFilter> filter;
  Split split;
  uint32_t seed_;
  Outcome out;
  std::string client_bytes;
  std::string backend_bytes;
};

// CRLF only: bare CR/LF in content is refused without smtp.bare_lf (changed
// deliberately with the smuggling defence; those cases moved to
// smtp_relay_quirks_test.cc).
const std::string kMessage =
    "From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: dots\r\n\r\n"
    "..leading dot, stuffed\r\n.\tnot the end\r\n..\r\n.x\r\n. \r\n...\r\n"
    "still content\r\n.\r\n";

class SmtpRelay : public ::testing::TestWithParam<Split> {};

TEST_P(SmtpRelay, PipelinedTransactionByteExact) {
  Relay r(GetParam());
  r.client("MAIL FROM:<bob@example.com>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
  EXPECT_EQ(r.out.up, "MAIL FROM:<bob@example.com>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
  r.backend("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
  r.client(kMessage);
  EXPECT_TRUE(r.infoNotes().empty());
  r.backend("250 2.0.0 Ok: queued as ABC123\r\n");
  EXPECT_EQ(r.infoNotes(), std::vector<std::string>{"message accepted: 2.0.0 Ok: queued as ABC123"});
  r.client("QUIT\r\n");
  r.backend("221 2.0.0 Bye\r\n");
  EXPECT_EQ(r.out.up, r.client_bytes);
  EXPECT_EQ(r.out.down, r.backend_bytes);
  EXPECT_FALSE(r.out.close);
}

// Every line length from 0 to 80 (the scanner takes 16 bytes at a time), with
// dot-stuffed and empty lines between them: forwarded byte for byte.
TEST_P(SmtpRelay, LinesOfEveryLengthByteExact) {
  Relay r(GetParam());
  std::string body = "Subject: lengths\r\n\r\n";
  for (int n = 0; n <= 80; ++n) {
    body += std::string(static_cast<size_t>(n), static_cast<char>('a' + n % 26)) + "\r\n";
    if (n % 7 == 0) body += ".." + std::string(static_cast<size_t>(n), 'x') + "\r\n\r\n";
  }
  body += ".\r\n";
  r.client("DATA\r\n");
  r.backend("354 go ahead\r\n");
  r.client(body);
  r.backend("250 2.0.0 Ok: queued as L1\r\n");
  EXPECT_EQ(r.out.up, r.client_bytes);
  EXPECT_EQ(r.infoNotes(), std::vector<std::string>{"message accepted: 2.0.0 Ok: queued as L1"});
  EXPECT_FALSE(r.out.close);
}

TEST_P(SmtpRelay, ContentHeldUntil354) {
  Relay r(GetParam());
  r.client("DATA\r\n" + kMessage + "QUIT\r\n");
  EXPECT_EQ(r.out.up, "DATA\r\n");
  r.backend("354 go ahead\r\n");
  EXPECT_EQ(r.out.up, r.client_bytes);
  r.backend("250 2.0.0 Ok: queued as X1\r\n221 2.0.0 Bye\r\n");
  EXPECT_EQ(r.infoNotes(), std::vector<std::string>{"message accepted: 2.0.0 Ok: queued as X1"});
}

TEST_P(SmtpRelay, DataRejectedNoContentMode) {
  Relay r(GetParam());
  r.client("MAIL FROM:<bob@example.com>\r\nRCPT TO:<nobody@example.com>\r\nDATA\r\nRSET\r\n");
  EXPECT_EQ(r.out.up, "MAIL FROM:<bob@example.com>\r\nRCPT TO:<nobody@example.com>\r\nDATA\r\n");
  r.backend("250 2.1.0 Ok\r\n550 5.1.1 <nobody@example.com>: Recipient address rejected\r\n"
            "554 5.5.1 Error: no valid recipients\r\n");
  // The held RSET is a command again, not content.
  EXPECT_EQ(r.out.up, r.client_bytes);
  r.backend("250 2.0.0 Ok\r\n");
  // A later transaction still works.
  r.client("MAIL FROM:<bob@example.com>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n");
  r.backend("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
  r.client("Subject: x\r\n\r\nhi\r\n.\r\n");
  r.backend("250 2.0.0 Ok: queued as Q2\r\n");
  EXPECT_EQ(r.infoNotes(), std::vector<std::string>{"message accepted: 2.0.0 Ok: queued as Q2"});
  EXPECT_EQ(r.out.up, r.client_bytes);
  EXPECT_EQ(r.out.down, r.backend_bytes);
}

TEST_P(SmtpRelay, MessageRejectedNote) {
  Relay r(GetParam());
  r.client("DATA\r\n");
  r.backend("354 go\r\n");
  r.client(".\r\n");
  r.backend("554 5.7.1 <rcpt@x>: Recipient address rejected: Sender is not same as SMTP authenticate username\r\n");
  EXPECT_EQ(r.infoNotes(),
            std::vector<std::string>{"message rejected: 554 5.7.1 <rcpt@x>: Recipient address rejected: Sender is not "
                                     "same as SMTP authenticate username"});
}

TEST_P(SmtpRelay, EndOfDataOnlyOnCrLfDotCrLf) {
  // (Bare LF/CR variants such as "\n.\n" are refused now: see
  // smtp_relay_quirks_test.cc.)
  Relay r(GetParam());
  r.client("DATA\r\n");
  r.backend("354 go\r\n");
  r.client("a\r\n.b\r\n..\r\nc\r\n.\td\r\n.x\r\n\r\n. \r\n");
  // Still content: a command-looking line is not interpreted.
  r.client("XCLIENT ADDR=127.0.0.1\r\n");
  EXPECT_EQ(r.out.up, r.client_bytes);
  EXPECT_EQ(r.out.down, "354 go\r\n");
  r.client("\r\n.\r\nNOOP\r\n");
  r.backend("250 2.0.0 Ok: queued as Z\r\n250 2.0.0 Ok\r\n");
  EXPECT_EQ(r.infoNotes(), std::vector<std::string>{"message accepted: 2.0.0 Ok: queued as Z"});
  EXPECT_EQ(r.out.up, r.client_bytes);
}

TEST_P(SmtpRelay, EmptyMessage) {
  Relay r(GetParam());
  r.client("DATA\r\n.\r\n");
  r.backend("354 go\r\n250 2.0.0 Ok: queued as E\r\n");
  EXPECT_EQ(r.infoNotes(), std::vector<std::string>{"message accepted: 2.0.0 Ok: queued as E"});
}

TEST_P(SmtpRelay, BackendRepliesPassThroughUnchanged) {
  Relay r(GetParam());
  r.client("EHLO client.example.org\r\n");
  const std::string ehlo = "250-mx.backend.test\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 DSN\r\n";
  r.backend(ehlo);
  EXPECT_EQ(r.out.down, ehlo);
  // Unsolicited 421 (backend timeout) goes to the client too.
  r.backend("421 4.4.2 mx.backend.test Error: timeout exceeded\r\n");
  EXPECT_EQ(r.out.down, r.backend_bytes);
}

TEST_P(SmtpRelay, XclientFromClientRefusedInOrder) {
  Relay r(GetParam());
  r.client("NOOP\r\nXCLIENT ADDR=127.0.0.1\r\nxforward NAME=spoof\r\nNOOP\r\n");
  EXPECT_EQ(r.out.up, "NOOP\r\nNOOP\r\n");
  EXPECT_EQ(r.out.down, "");
  r.backend("250 2.0.0 first\r\n");
  EXPECT_EQ(r.out.down, "250 2.0.0 first\r\n502 5.5.2 Error: command not recognized\r\n"
                        "502 5.5.2 Error: command not recognized\r\n");
  r.backend("250 2.0.0 second\r\n");
  EXPECT_TRUE(r.out.down.ends_with("250 2.0.0 second\r\n"));
  // With nothing outstanding the refusal is immediate.
  r.client("XCLIENT ADDR=10.0.0.1\r\n");
  EXPECT_TRUE(r.out.down.ends_with("250 2.0.0 second\r\n502 5.5.2 Error: command not recognized\r\n"));
  int warns = 0;
  for (const auto& n : r.out.notes) warns += n.level == LogNote::Level::Warn;
  EXPECT_EQ(warns, 3);
}

TEST_P(SmtpRelay, OverlongCommandForwardedAsIs) {
  Relay r(GetParam());
  std::string longline = "RCPT TO:<" + std::string(SmtpRelayFilter::kMaxCommandLine + 100, 'a') + ">\r\n";
  r.client(longline + "DATA\r\n");
  r.backend("500 5.5.0 Error: line too long\r\n354 go\r\n");
  r.client("x\r\n.\r\n");
  r.backend("250 2.0.0 Ok: queued as L\r\n");
  EXPECT_EQ(r.out.up, r.client_bytes);
  EXPECT_EQ(r.infoNotes(), std::vector<std::string>{"message accepted: 2.0.0 Ok: queued as L"});
}

TEST_P(SmtpRelay, Bdat) {
  Relay r(GetParam());
  r.client("MAIL FROM:<a@example.com>\r\nBDAT 8\r\nDATA\r\n\r\nBDAT 3 LAST\r\n.\r\n");
  // "DATA\r\n\r\n" inside the first chunk is content, not a command.
  EXPECT_EQ(r.out.up, r.client_bytes);
  r.backend("250 2.1.0 Ok\r\n250 2.0.0 8 bytes received\r\n250 2.0.0 Ok: queued as B\r\n");
  EXPECT_EQ(r.infoNotes(), std::vector<std::string>{"message accepted: 2.0.0 Ok: queued as B"});
}

TEST_P(SmtpRelay, BackendGarbageGoesOpaque) {
  Relay r(GetParam());
  r.client("DATA\r\nheld content\r\n");
  r.backend("garbage\r\n");
  EXPECT_EQ(r.out.up, r.client_bytes);
  EXPECT_EQ(r.out.down, r.backend_bytes);
  r.client("anything\r\n");
  r.backend("more garbage");
  EXPECT_EQ(r.out.up, r.client_bytes);
  EXPECT_EQ(r.out.down, r.backend_bytes);
  ASSERT_FALSE(r.out.notes.empty());
  EXPECT_EQ(r.out.notes[0].level, LogNote::Level::Warn);
}

INSTANTIATE_TEST_SUITE_P(Splits, SmtpRelay, ::testing::ValuesIn(testing::kAllSplits),
                         [](const auto& info) { return std::string(testing::splitName(info.param)); });

TEST(SmtpRelayBounds, TooMuchHeldBeforeDataReply) {
  SmtpRelayFilter f(testing::defaultContext());
  Outcome out;
  out.add(f.onDownstreamData("DATA\r\n"));
  out.add(f.onDownstreamData(std::string(SmtpRelayFilter::kMaxHeldBytes + 1, 'x')));
  ASSERT_TRUE(out.close);
  EXPECT_EQ(*out.close, CloseReason::LineTooLong);
  EXPECT_EQ(out.down, "421 4.7.0 mail.example.test Error: too much pipelined input\r\n");
  EXPECT_EQ(out.up, "DATA\r\n");
  EXPECT_TRUE(f.onDownstreamData("x").empty());
  EXPECT_TRUE(f.onUpstreamData("354 go\r\n").empty());
}

TEST(SmtpRelayStreaming, LargeMessageNeverBuffered) {
  SmtpRelayFilter f(testing::defaultContext());
  Outcome out;
  out.add(f.onDownstreamData("DATA\r\n"));
  out.add(f.onUpstreamData("354 go\r\n"));
  std::string chunk(64 * 1024, 'm');
  chunk += "\r\n";
  for (int i = 0; i < 64; ++i) {
    Actions a = f.onDownstreamData(chunk);
    ASSERT_EQ(a.size(), 1u);
    ASSERT_EQ(std::get<SendUpstream>(a[0]).bytes.size(), chunk.size());
  }
  out.add(f.onDownstreamData(".\r\n"));
  out.add(f.onUpstreamData("250 2.0.0 Ok: queued as BIG\r\n"));
  ASSERT_EQ(out.notes.size(), 1u);
  EXPECT_EQ(out.notes[0].text, "message accepted: 2.0.0 Ok: queued as BIG");
}

// The backend vanishes (FIN) in the middle of a transaction: the client is
// told with a 421, as after a reset, never left with a bare close
// (found by tests/integration/fault_test.py: mail_close, data_close, store_close).
TEST(SmtpRelayUpstreamClosed, MidTransaction421) {
  SmtpRelayFilter f(testing::defaultContext());
  Outcome out;
  out.add(f.onDownstreamData("MAIL FROM:<bob@example.com>\r\n"));
  out.add(f.onUpstreamClosed());
  EXPECT_EQ(out.down, "421 4.4.2 mail.example.test Error: backend connection lost\r\n");
  ASSERT_TRUE(out.close);
  EXPECT_EQ(*out.close, CloseReason::UpstreamLost);
  EXPECT_TRUE(f.onDownstreamData("RCPT TO:<a@b>\r\n").empty());
  EXPECT_TRUE(f.onUpstreamClosed().empty());
}

TEST(SmtpRelayUpstreamClosed, MidDataAndAfterStore421) {
  for (bool stored : {false, true}) {
    SmtpRelayFilter f(testing::defaultContext());
    Outcome out;
    out.add(f.onDownstreamData("DATA\r\n"));
    out.add(f.onUpstreamData("354 go\r\n"));
    out.add(f.onDownstreamData(stored ? "Subject: x\r\n\r\nbody\r\n.\r\n" : "Subject: x\r\n\r\nbo"));
    out.add(f.onUpstreamData("250 2.0.0 Ok: que"));  // an unfinished reply line is not passed on
    out.add(f.onUpstreamClosed());
    EXPECT_EQ(out.down, "354 go\r\n421 4.4.2 mail.example.test Error: backend connection lost\r\n");
    ASSERT_TRUE(out.close);
    EXPECT_EQ(*out.close, CloseReason::UpstreamLost);
  }
}

TEST(SmtpRelayUpstreamClosed, NoNoticeAfterQuitOrBackendBye) {
  {
    SmtpRelayFilter f(testing::defaultContext());
    Outcome out;
    out.add(f.onDownstreamData("QUIT\r\n"));
    out.add(f.onUpstreamClosed());
    EXPECT_EQ(out.down, "");
    EXPECT_FALSE(out.close);
  }
  for (std::string bye : {"421 4.4.2 mx Error: timeout exceeded\r\n", "221 2.0.0 Bye\r\n"}) {
    SmtpRelayFilter f(testing::defaultContext());
    Outcome out;
    out.add(f.onDownstreamData("NOOP\r\n"));
    out.add(f.onUpstreamData(bye));
    out.add(f.onUpstreamClosed());
    EXPECT_EQ(out.down, bye);
    EXPECT_FALSE(out.close);
  }
}

}  // namespace
}  // namespace mailshim::proto::smtp
