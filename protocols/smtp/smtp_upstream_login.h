// SmtpUpstreamLogin: mailshim as an SMTP client of the backend (Postfix
// submission) up to a successful AUTH. Banner, EHLO (RFC 5321 section 4.1.1.1),
// STARTTLS (RFC 3207) with the response-injection discard after the backend's
// go-ahead and a fresh EHLO inside TLS whose keywords alone are used, XCLIENT
// (Postfix XCLIENT_README) to pass the real client address, then AUTH PLAIN
// with an initial response or the AUTH LOGIN dialogue (RFC 4954, RFC 4616).
//
// Never pipelines: exactly one command is outstanding at any time, and bytes
// the backend sends before its turn are a protocol error (Postfix's
// reject_unauth_pipelining and response injection alike). Credentials are
// never sent unless the leg is TLS (or the shell chose UpstreamTls::None for a
// same-host backend). A fatal problem (bad banner, no STARTTLS, 421, garbage)
// yields LoginDone{TempFail, code ""} plus a log-safe LogNote; afterwards the
// phase is dead and answers every login() the same way.
//
// No I/O. Standard library only.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocols/common/phase.h"
#include "protocols/smtp/smtp_reply.h"

namespace mailshim::proto::smtp {

class SmtpUpstreamLogin final : public UpstreamLogin {
 public:
  // Backend text copied into LoginResult::text is cut to this many bytes.
  static constexpr size_t kMaxResultText = 400;
  // An xtext-encoded HELO longer than this is left out of XCLIENT.
  static constexpr size_t kMaxXclientHelo = 255;
  // RFC 4954 section 4: no initial response when the line would exceed 1000.
  static constexpr size_t kMaxCommandLine = 1000;

  SmtpUpstreamLogin(const SessionContext& ctx, const UpstreamContext& up);

  Actions onConnected() override;
  Actions onUpstreamData(std::string_view bytes) override;
  Actions onUpstreamTls() override;
  Actions login(Authenticate auth) override;

 private:
  enum class State {
    Idle,               // not connected yet
    Banner,             // waiting for the 220 greeting
    Ehlo,               // EHLO sent
    Starttls,           // STARTTLS sent
    TlsHandshake,       // StartTlsUpstream emitted
    Xclient,            // XCLIENT sent
    Ready,              // EHLO phase complete, no command outstanding
    AuthPlain,          // AUTH PLAIN <ir> (or its response line) sent
    AuthPlainContinue,  // AUTH PLAIN without initial response sent
    AuthLoginUser,      // AUTH LOGIN sent
    AuthLoginPass,      // user name sent
    AuthLoginFinal,     // password sent
    Done,               // 235 received
    Failed,             // fatal error reported
  };
  enum class EhloStage { Initial, AfterTls, AfterXclient };

  void onReply(const Reply& r);
  void onEhloReply(const Reply& r);
  void advance();
  void startAuth();
  void finishAuth(const Reply& r);
  void sendCommand(std::string line);
  void sendEhlo();
  void fatal(std::string why);
  void loginDone(LoginResult::Kind kind, std::string code, std::string text, std::string leftover = {});
  bool hasKeyword(std::string_view kw) const;
  const std::vector<std::string>* keywordParams(std::string_view kw) const;
  static std::string resultText(std::string_view text);
  Actions take();

  SessionContext ctx_;
  UpstreamContext up_;
  std::string helo_name_;
  std::string xclient_helo_;  // client HELO for the EHLO after XCLIENT ("" = use helo_name_)
  ReplyParser parser_;
  State state_ = State::Idle;
  EhloStage stage_ = EhloStage::Initial;
  bool xclient_done_ = false;
  std::vector<std::pair<std::string, std::vector<std::string>>> keywords_;
  std::optional<Authenticate> auth_;  // credentials waiting to be (fully) sent
  bool awaiting_result_ = false;      // a login() has not been answered yet
  Actions acts_;
};

}  // namespace mailshim::proto::smtp
