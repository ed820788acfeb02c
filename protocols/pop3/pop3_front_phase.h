// Pop3FrontPhase: mailshim's own POP3 server side in the AUTHORIZATION state
// (RFC 1939 section 4): greeting, CAPA (RFC 2449), STLS (RFC 2595 section 4,
// discarding every byte pipelined after it), USER/PASS (RFC 1939 section 7),
// AUTH PLAIN/LOGIN with initial response and continuations (RFC 5034), QUIT;
// then the backend's verdict and the switch to the opaque relay with
// whatever the client pipelined after its login command. Plaintext
// credentials are refused unless Quirk::PlaintextAuth is on; when that quirk
// was retired for the client the refusal is "-ERR [AUTH] <the admin's
// retirement message>", counted with a "retired:" QuirkUsed. No I/O: it only
// returns Actions (phase.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocols/common/line_reader.h"
#include "protocols/common/phase.h"

namespace mailshim::proto::pop3 {

class Pop3FrontPhase final : public FrontPhase {
 public:
  explicit Pop3FrontPhase(const SessionContext& ctx);

  Actions start() override;
  Actions onDownstreamData(std::string_view bytes) override;
  Actions onDownstreamTls() override;
  Actions onLoginResult(const LoginResult& result) override;
  Actions onTimeout() override;

  // The CAPA reply currently given (for tests).
  std::string capaReply() const;

  static constexpr size_t kMaxPipelinedBytes = 64 * 1024;

 private:
  enum class State : uint8_t {
    Idle,
    AuthPlain,
    AuthLoginUser,
    AuthLoginPass,
    LoginPending,
    TlsPending,
    Relay,
    Closed,
  };
  struct Batch {
    Actions pre;
    std::string out;
    Actions tail;
    bool rearm = false;
  };

  void pump(Batch& b);
  void onCommand(std::string_view line, Batch& b);
  void onSaslLine(std::string_view line, Batch& b);
  void cmdStls(std::string_view args, Batch& b);
  void cmdUser(std::string_view args, Batch& b);
  void cmdPass(std::string_view args, Batch& b);
  void cmdAuth(std::string_view args, Batch& b);
  void finishPlain(std::string_view b64, Batch& b);
  void startLogin(Credentials creds, std::string_view quirk_detail, Batch& b);
  void protocolError(std::string_view reply, Batch& b);
  void close(CloseReason reason, Batch& b);
  Actions finish(Batch& b);
  bool authAllowed() const;
  // "-ERR [AUTH] ..." for credentials on plaintext; the retirement message
  // (and a "retired:" QuirkUsed) when plaintext_auth was retired.
  std::string plaintextRefusal(std::string_view command, Batch& b);

  SessionContext ctx_;
  LineReader reader_;
  State state_ = State::Idle;
  std::string user_;        // USER argument waiting for PASS
  std::string login_user_;  // AUTH LOGIN user name between the two steps
  uint32_t errors_ = 0;
  bool upstream_requested_ = false;
};

}  // namespace mailshim::proto::pop3
