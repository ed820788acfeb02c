// Client fingerprints from what clients reveal.
#include "protocols/common/fingerprint.h"

#include <gtest/gtest.h>

namespace mailshim::proto {
namespace {

TEST(Fingerprint, FromXMailer) {
  FingerprintInput in;
  in.protocol = "smtp";
  in.x_mailer = "Microsoft Windows Live Mail 16.4.3528.331";
  EXPECT_EQ(fingerprint(in), "Windows Live Mail 2012");
  in.tls_max_offered = "TLSv1";
  EXPECT_EQ(fingerprint(in), "Windows Live Mail 2012 (TLS 1.0)");
  in = {};
  in.x_mailer = "Microsoft Outlook 16.0";
  EXPECT_EQ(fingerprint(in), "Outlook 16.0");
  in.x_mailer = "Microsoft Office Outlook 12.0";
  EXPECT_EQ(fingerprint(in), "Outlook 2007");
  in.x_mailer = "Microsoft Outlook Express 6.00.2900.5931";
  EXPECT_EQ(fingerprint(in), "Outlook Express 6");
  in.tls_before_greeting = true;
  EXPECT_EQ(fingerprint(in), "Outlook Express 6 (TLS before greeting)");
}

TEST(Fingerprint, FromUserAgentAndImapId) {
  FingerprintInput in;
  in.user_agent = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.3.1";
  EXPECT_EQ(fingerprint(in), "Thunderbird 128");
  in = {};
  in.protocol = "imap";
  in.id = {{"name", "Thunderbird"}, {"version", "128.3.1"}};
  EXPECT_EQ(fingerprint(in), "Thunderbird 128");
  in.id = {{"name", "Microsoft Office 365"}, {"version", "15.20.9160.4"}};
  EXPECT_EQ(fingerprint(in), "Outlook 15.20");
}

TEST(Fingerprint, FromBehaviour) {
  FingerprintInput in;
  in.helo = "NPI8C2F31";
  in.helo_only = true;
  in.tls_max_offered = "TLSv1";
  EXPECT_EQ(fingerprint(in), "scanner (HELO only, TLS 1.0)");
  in = {};
  in.helo = "WIN7-PC";
  EXPECT_EQ(fingerprint(in), "unknown (Windows-style HELO)");
  in.helo = "[192.168.1.20]";
  EXPECT_EQ(fingerprint(in), "unknown (address literal)");
  EXPECT_EQ(fingerprint(FingerprintInput{}), "unknown");
}

TEST(Fingerprint, OutputIsSafe) {
  FingerprintInput in;
  in.x_mailer = std::string("Evil\r\nX: y\tz") + std::string(200, 'A');
  std::string fp = fingerprint(in);
  EXPECT_LE(fp.size(), 80u);
  for (char c : fp) EXPECT_TRUE(c >= 0x20 && c < 0x7f && c != '\t') << int(c);
}

}  // namespace
}  // namespace mailshim::proto
