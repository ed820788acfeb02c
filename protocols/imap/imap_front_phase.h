// ImapFrontPhase: mailshim's own IMAP server side before login. Greeting with
// mailshim's pre-login capabilities, CAPABILITY, NOOP, LOGOUT, STARTTLS
// (RFC 9051 section 6.2.1, discarding every byte pipelined after it), ID
// (RFC 2971), LOGIN (section 6.2.3) and AUTHENTICATE PLAIN/LOGIN with SASL-IR
// (RFC 4959) and continuations; then the backend's verdict, and the switch to
// the opaque relay with whatever the client pipelined after its login
// command. Plaintext credentials are refused unless Quirk::PlaintextAuth is
// on; when that quirk was retired for the client (SessionContext::
// retired_quirks) the refusal carries the admin's retirement message,
// "<tag> NO [PRIVACYREQUIRED] <message>", and is counted with a "retired:"
// QuirkUsed. No I/O: it only returns Actions (phase.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocols/common/phase.h"
#include "protocols/imap/imap_parser.h"

namespace mailshim::proto::imap {

class ImapFrontPhase final : public FrontPhase {
 public:
  explicit ImapFrontPhase(const SessionContext& ctx);

  Actions start() override;
  Actions onDownstreamData(std::string_view bytes) override;
  Actions onDownstreamTls() override;
  Actions onLoginResult(const LoginResult& result) override;
  Actions onTimeout() override;

  // The capability list currently advertised (for tests and logs).
  std::string capabilities() const;

  // Client bytes held while a login is pending are bounded by this.
  static constexpr size_t kMaxPipelinedBytes = 64 * 1024;
  static constexpr size_t kMaxLiteralBytes = 8 * 1024;

 private:
  enum class State : uint8_t {
    Idle,           // reading commands
    AuthPlain,      // AUTHENTICATE PLAIN, waiting for the response line
    AuthLoginUser,  // AUTHENTICATE LOGIN, waiting for the user name
    AuthLoginPass,  // AUTHENTICATE LOGIN, waiting for the password
    LoginPending,   // Authenticate emitted; client input is only buffered
    TlsPending,     // StartTlsDownstream emitted; plaintext input is discarded
    Relay,          // EnterRelay emitted; the phase is done
    Closed,
  };
  // Replies of one event, coalesced into a single SendDownstream.
  struct Batch {
    Actions pre;  // ClientInfo, QuirkUsed, UserKnown, LogNote
    std::string out;
    Actions tail;  // ConnectUpstream, Authenticate, StartTlsDownstream, EnterRelay, Close
    bool rearm = false;
  };

  void pump(Batch& b);
  void onCommand(ImapCommand& cmd, Batch& b);
  void onParseError(Batch& b);
  void onSaslLine(std::string_view line, Batch& b);
  void cmdStarttls(const ImapCommand& cmd, Batch& b);
  void cmdId(const ImapCommand& cmd, Batch& b);
  void cmdLogin(ImapCommand& cmd, Batch& b);
  void cmdAuthenticate(const ImapCommand& cmd, Batch& b);
  void finishPlain(std::string_view b64, Batch& b);
  void startLogin(Credentials creds, std::string_view quirk_detail, Batch& b);
  // Answers `reply` (without CRLF) and counts a protocol error; may close.
  void protocolError(std::string_view reply, Batch& b);
  void close(CloseReason reason, Batch& b);
  Actions finish(Batch& b);
  bool authAllowed() const;
  // "<tag> NO [PRIVACYREQUIRED] ..." for credentials on plaintext; the
  // retirement message (and a "retired:" QuirkUsed) when plaintext_auth was
  // retired for this client.
  std::string plaintextRefusal(const std::string& tag, std::string_view command, Batch& b);

  SessionContext ctx_;
  ImapParser parser_;
  State state_ = State::Idle;
  std::string auth_tag_;    // tag of the AUTHENTICATE/LOGIN in progress
  std::string login_user_;  // AUTHENTICATE LOGIN user name between the two steps
  std::vector<std::pair<std::string, std::string>> id_fields_;
  uint32_t errors_ = 0;
  bool upstream_requested_ = false;
};

}  // namespace mailshim::proto::imap
