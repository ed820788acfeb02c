// Credentials do not survive in freed heap memory after an upstream login.
// This test binary's global operator delete scans every block freed while a
// check runs for the password (and its base64 forms) before releasing it.
// Lines are built with appendWiped(); Secret and wipe() clear the rest.
// Skipped under AddressSanitizer (replacing operator new/delete there would
// hide ASan's own new/delete checks for the whole binary).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "protocols/common/base64.h"
#include "protocols/common/secret.h"
#include "protocols/imap/imap_upstream_login.h"
#include "protocols/pop3/pop3_upstream_login.h"
#include "protocols/smtp/smtp_upstream_login.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MAILSHIM_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define MAILSHIM_ASAN 1
#endif

#ifndef MAILSHIM_ASAN
#include <malloc.h>

namespace {
std::atomic<bool> g_scan{false};
std::vector<std::string>* g_needles = nullptr;  // set only while g_scan is true
std::atomic<int> g_hits{0};

void scanFreed(void* p) {
  if (!p || !g_scan.load(std::memory_order_relaxed)) return;
  size_t n = malloc_usable_size(p);
  for (const auto& needle : *g_needles)
    if (!needle.empty() && memmem(p, n, needle.data(), needle.size())) g_hits++;
}
}  // namespace

void* operator new(std::size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  return p;
}
void operator delete(void* p) noexcept {
  scanFreed(p);
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  scanFreed(p);
  std::free(p);
}
#endif

namespace mailshim::proto {
namespace {

using namespace std::string_literals;

// Longer than any small-string buffer: every copy lives on the heap.
const std::string kPass = "correct-horse-battery-staple-0123456789-secret";

[[maybe_unused]] std::vector<std::string> needles() {
  return {kPass, base64Encode("\0bob\0"s + kPass), base64Encode(kPass)};
}

[[maybe_unused]] Authenticate bob() {
  Authenticate a;
  a.creds.user = "bob";
  a.creds.password = Secret(std::string(kPass));
  return a;
}

// Runs `steps` while scanning frees; SendUpstream lines are checked and wiped
// the way the shell does after writing them.
template <typename Steps>
void expectNoResidue(Steps steps) {
#ifdef MAILSHIM_ASAN
  (void)steps;
  GTEST_SKIP() << "operator delete is not replaced under AddressSanitizer";
#else
  std::vector<std::string> n = needles();
  bool sent = false;
  auto drop = [&](Actions acts) {
    for (auto& a : acts)
      if (auto* s = std::get_if<SendUpstream>(&a)) {
        for (const auto& x : n)
          if (s->bytes.find(x) != std::string::npos) sent = true;
        wipe(s->bytes);
      }
  };
  g_needles = &n;
  g_hits = 0;
  g_scan = true;
  steps(drop);
  g_scan = false;
  g_needles = nullptr;
  EXPECT_TRUE(sent) << "the credentials were never sent: the test checks nothing";
  EXPECT_EQ(g_hits.load(), 0) << "a freed heap block still held the password";
#endif
}

[[maybe_unused]] UpstreamContext implicitTls(ClientAddressMode mode = ClientAddressMode::None) {
  UpstreamContext u;
  u.tls = UpstreamTls::Implicit;
  u.client_address = mode;
  return u;
}

[[maybe_unused]] SessionContext fromClient() {
  SessionContext c;
  c.client_ip = "192.0.2.10";
  return c;
}

TEST(SecretHeap, AppendWipedKeepsContent) {
  std::string s = "AUTH PLAIN ";
  appendWiped(s, "abc");
  appendWiped(s, "\r\n");
  EXPECT_EQ(s, "AUTH PLAIN abc\r\n");
}

TEST(SecretHeap, Pop3UserPass) {
  expectNoResidue([](auto drop) {
    pop3::Pop3UpstreamLogin l(SessionContext{}, implicitTls());
    drop(l.onConnected());
    drop(l.login(bob()));
    drop(l.onUpstreamData("+OK ready.\r\n"));
    drop(l.onUpstreamData("+OK\r\nUSER\r\n.\r\n"));
    drop(l.onUpstreamData("+OK\r\n"));
    drop(l.onUpstreamData("+OK Logged in.\r\n"));
  });
}

TEST(SecretHeap, Pop3AuthPlain) {
  expectNoResidue([](auto drop) {
    pop3::Pop3UpstreamLogin l(SessionContext{}, implicitTls());
    drop(l.onConnected());
    drop(l.login(bob()));
    drop(l.onUpstreamData("+OK ready.\r\n"));
    drop(l.onUpstreamData("+OK\r\nSASL PLAIN\r\n.\r\n"));
    drop(l.onUpstreamData("+OK Logged in.\r\n"));
  });
}

TEST(SecretHeap, ImapAuthenticateWithAndWithoutSaslIr) {
  for (std::string caps : {"IMAP4rev1 SASL-IR AUTH=PLAIN", "IMAP4rev1 AUTH=PLAIN"}) {
    SCOPED_TRACE(caps);
    expectNoResidue([&](auto drop) {
      imap::ImapUpstreamLogin l(SessionContext{}, implicitTls());
      drop(l.onConnected());
      drop(l.login(bob()));
      drop(l.onUpstreamData("* OK [CAPABILITY " + caps + "] ready.\r\n"));
      drop(l.onUpstreamData("+ \r\n"));
      drop(l.onUpstreamData("m1 OK Logged in\r\n"));
    });
  }
}

TEST(SecretHeap, ImapLoginQuotedAndLiteral) {
  for (std::string caps : {"IMAP4rev1", "IMAP4rev1 LITERAL+"}) {
    SCOPED_TRACE(caps);
    expectNoResidue([&](auto drop) {
      imap::ImapUpstreamLogin l(SessionContext{}, implicitTls());
      drop(l.onConnected());
      drop(l.login(bob()));
      drop(l.onUpstreamData("* OK [CAPABILITY " + caps + "] ready.\r\n"));
      drop(l.onUpstreamData("m1 OK Logged in\r\n"));
    });
  }
}

// The pipelined paths: the credentials are appended to the ID / XCLIENT line.
TEST(SecretHeap, ImapPipelinedIdAndLogin) {
  for (std::string caps : {"IMAP4rev1 ID SASL-IR AUTH=PLAIN", "IMAP4rev1 ID LITERAL+"}) {
    SCOPED_TRACE(caps);
    expectNoResidue([&](auto drop) {
      imap::ImapUpstreamLogin l(fromClient(), implicitTls(ClientAddressMode::ImapId));
      drop(l.onConnected());
      drop(l.login(bob()));
      drop(l.onUpstreamData("* OK [CAPABILITY " + caps + "] ready.\r\n"));
      drop(l.onUpstreamData("m1 OK ID completed.\r\nm2 OK Logged in\r\n"));
    });
  }
}

TEST(SecretHeap, Pop3PipelinedXclientAndLogin) {
  for (std::string capa : {"+OK\r\nPIPELINING\r\nSASL PLAIN\r\n.\r\n", "+OK\r\nPIPELINING\r\nUSER\r\n.\r\n"}) {
    SCOPED_TRACE(capa);
    expectNoResidue([&](auto drop) {
      pop3::Pop3UpstreamLogin l(fromClient(), implicitTls(ClientAddressMode::Xclient));
      drop(l.onConnected());
      drop(l.login(bob()));
      drop(l.onUpstreamData("+OK [XCLIENT] ready.\r\n"));
      drop(l.onUpstreamData(capa));
      drop(l.onUpstreamData("+OK Updated\r\n+OK\r\n"));
      drop(l.onUpstreamData("+OK Logged in.\r\n"));
    });
  }
}

TEST(SecretHeap, SmtpAuthPlainAndLogin) {
  for (std::string mech : {"PLAIN", "LOGIN"}) {
    SCOPED_TRACE(mech);
    expectNoResidue([&](auto drop) {
      smtp::SmtpUpstreamLogin l(SessionContext{}, implicitTls());
      drop(l.onConnected());
      drop(l.login(bob()));
      drop(l.onUpstreamData("220 ready\r\n"));
      drop(l.onUpstreamData("250-evil\r\n250 AUTH " + mech + "\r\n"));
      drop(l.onUpstreamData("334 VXNlcm5hbWU6\r\n"));
      drop(l.onUpstreamData("334 UGFzc3dvcmQ6\r\n"));
      drop(l.onUpstreamData("235 2.7.0 Authentication successful\r\n"));
    });
  }
}

}  // namespace
}  // namespace mailshim::proto
