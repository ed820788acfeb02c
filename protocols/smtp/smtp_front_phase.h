// SmtpFrontPhase: mailshim's own SMTP submission server up to the moment the
// backend accepts the client's credentials. Greeting, EHLO/HELO with
// mailshim's capability list (RFC 5321 sections 4.1.1.1 and 4.3.1), STARTTLS
// (RFC 3207, with the pipelined-plaintext discard of section 4.2 / CVE-2011-0411
// and forgetting all pre-TLS state), AUTH PLAIN and LOGIN (RFC 4954, RFC 4616,
// [MS-XLOGIN]) with byte-exact LOGIN challenges, pipelining (RFC 2920),
// RFC 3463 enhanced status codes on every reply, error counting and timeouts.
//
// STARTTLS and AUTH are ESMTP extensions: after HELO (not EHLO) they are
// answered "503 5.5.1 Error: send EHLO first" unless smtp.helo_only is on
// (then the session is ESMTP toward the backend). Quirks: plaintext_auth,
// smtp.helo_normalize, smtp.auth_equals (the extra "250-AUTH=PLAIN LOGIN"
// line), smtp.helo_only; each use is one QuirkUsed. Retired quirks
// (SessionContext::retired_quirks) are counted with a "retired:" QuirkUsed
// whenever the client would have needed them; where the refusal has a reply
// (AUTH or MAIL on plaintext: 530; STARTTLS/AUTH after HELO: 503) its text
// is the admin's retirement message.
//
// Replies produced by one onDownstreamData() call are coalesced into a single
// SendDownstream action. While a login is pending the phase buffers further
// client input unprocessed; after a successful login it hands that input,
// byte-exact, to the relay via EnterRelay::to_upstream.
//
// No I/O. Standard library only.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "protocols/common/line_reader.h"
#include "protocols/common/phase.h"

namespace mailshim::proto::smtp {

class SmtpFrontPhase final : public FrontPhase {
 public:
  // Client bytes buffered while a login is pending, beyond which the session
  // is closed (CloseReason::LineTooLong): a client must wait for the 354
  // before sending message content, so honest pipelining stays far below.
  static constexpr size_t kMaxPipelinedBytes = 64 * 1024;

  explicit SmtpFrontPhase(const SessionContext& ctx);

  Actions start() override;
  Actions onDownstreamData(std::string_view bytes) override;
  Actions onDownstreamTls() override;
  Actions onLoginResult(const LoginResult& result) override;
  Actions onTimeout() override;

 private:
  enum class State {
    Command,            // reading commands
    AuthPlainResponse,  // sent "334 ", waiting for the PLAIN response
    AuthLoginUser,      // sent the Username: challenge
    AuthLoginPass,      // sent the Password: challenge
    LoginPending,       // Authenticate emitted, waiting for onLoginResult
    TlsHandshake,       // STARTTLS accepted, waiting for onDownstreamTls
    Relay,              // EnterRelay emitted: this phase is done
    Closed,             // Close emitted
  };

  bool reading() const;
  void processInput();
  void handleCommand(std::string_view line);
  void handleHelo(bool esmtp, std::string_view args);
  void handleStarttls(std::string_view args);
  void handleAuth(std::string_view args);
  void handleAuthResponse(std::string_view line);
  void finishPlain(std::string_view b64);
  void submit(Credentials creds);
  void abortAuth();
  // After HELO (not EHLO): STARTTLS and AUTH are ESMTP extensions.
  bool heloOnly() const { return helo_seen_ && !esmtp_; }
  // smtp.helo_only: true when `what` may go on after HELO; otherwise answers
  // 503 (the retirement message if the quirk was retired) and counts an error.
  bool admitAfterHelo(std::string_view what);
  // "<code> <enhanced> <retired_message>" when the admin set one, else `standard`.
  void retiredReply(int code, std::string_view enhanced, std::string_view standard);

  // Output batching: replies accumulate in down_ and become one SendDownstream.
  void reply(std::string_view bytes) { down_ += bytes; }
  void replyLine(int code, std::string_view text);
  void push(Action a) { acts_.push_back(std::move(a)); }
  void flush();
  void close(CloseReason reason);
  // Counts a protocol error; at max_errors answers 421 and closes. Returns
  // true when the session was closed.
  bool countError();
  Actions finish();

  SessionContext ctx_;
  std::string name_;  // server_name, sanitised for interpolation
  LineReader reader_;
  State state_ = State::Command;
  bool client_tls_;
  bool helo_seen_ = false;
  bool esmtp_ = true;
  bool authenticated_ = false;
  std::string helo_for_backend_;
  std::string login_user_;  // AUTH LOGIN user name between the two challenges
  uint32_t errors_ = 0;

  Actions acts_;
  std::string down_;
  bool rearm_ = false;
};

}  // namespace mailshim::proto::smtp
