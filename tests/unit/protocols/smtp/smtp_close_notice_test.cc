// Unit tests for smtpCloseNotice(): the 421 lines the shell sends when it
// closes an SMTP session itself, and silence where nothing must be sent. No I/O.
#include <gtest/gtest.h>

#include <string>

#include "protocols/protocol_registry.h"
#include "protocols/smtp/smtp.h"

namespace mailshim::proto::smtp {
namespace {

TEST(SmtpCloseNotice, Texts) {
  const std::string n = "mail.example.test";
  EXPECT_EQ(smtpCloseNotice(CloseReason::Timeout, n), "421 4.4.2 mail.example.test Error: timeout exceeded\r\n");
  EXPECT_EQ(smtpCloseNotice(CloseReason::Shutdown, n),
            "421 4.3.2 mail.example.test Service shutting down, closing transmission channel\r\n");
  for (auto r : {CloseReason::UpstreamLost, CloseReason::UpstreamUnavailable, CloseReason::UpstreamProtocol,
                 CloseReason::UpstreamTlsFailed})
    EXPECT_EQ(smtpCloseNotice(r, n), "421 4.4.2 mail.example.test Error: backend connection lost\r\n");
  EXPECT_EQ(smtpCloseNotice(CloseReason::TooManyErrors, n), "421 4.7.0 mail.example.test Error: too many errors\r\n");
  for (auto r : {CloseReason::ClientQuit, CloseReason::ClientEof, CloseReason::ClientError,
                 CloseReason::TlsHandshakeFailed, CloseReason::UpstreamEof})
    EXPECT_EQ(smtpCloseNotice(r, n), "");
}

TEST(SmtpCloseNotice, EveryNoticeIsOneValid421Line) {
  for (int i = 0; i <= static_cast<int>(CloseReason::Internal); ++i) {
    auto r = static_cast<CloseReason>(i);
    std::string s = smtpCloseNotice(r, "mx.example");
    if (s.empty()) continue;
    EXPECT_TRUE(s.starts_with("421 4.")) << closeReasonName(r);
    EXPECT_TRUE(s.ends_with("\r\n"));
    EXPECT_EQ(s.find('\n'), s.size() - 1);
    EXPECT_EQ(closeNotice(Protocol::Smtp, r, "mx.example"), s);
  }
}

TEST(SmtpCloseNotice, UnsafeNameNotInterpolated) {
  EXPECT_EQ(smtpCloseNotice(CloseReason::Timeout, "x\r\n250 ok"), "421 4.4.2 localhost Error: timeout exceeded\r\n");
  EXPECT_EQ(smtpCloseNotice(CloseReason::Timeout, ""), "421 4.4.2 localhost Error: timeout exceeded\r\n");
}

}  // namespace
}  // namespace mailshim::proto::smtp
