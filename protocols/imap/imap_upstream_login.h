// ImapUpstreamLogin: mailshim as an IMAP client of the backend (Dovecot)
// before the relay. Greeting (refusing PREAUTH), CAPABILITY, STARTTLS
// (RFC 9051 section 6.2.1; bytes after the go-ahead are discarded and every
// capability learned in plaintext is forgotten), ID with the real client
// address (RFC 2971, Dovecot's x-originating-* fields, honoured from
// login_trusted_networks), then AUTHENTICATE PLAIN (SASL-IR, RFC 4959) or
// LOGIN with quoted/literal astrings. One command outstanding at a time,
// except that an ID without synchronizing literals is pipelined in the same
// write as the login command (one round trip less). mailshim's own tags
// (m1, m2, ...), bounded lines, backend text validated before it reaches a
// LoginResult. No I/O: it only returns Actions (phase.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/common/line_reader.h"
#include "protocols/common/phase.h"
#include "protocols/imap/imap_parser.h"

namespace mailshim::proto::imap {

class ImapUpstreamLogin final : public UpstreamLogin {
 public:
  ImapUpstreamLogin(const SessionContext& ctx, const UpstreamContext& up);

  Actions onConnected() override;
  Actions onUpstreamData(std::string_view bytes) override;
  Actions onUpstreamTls() override;
  Actions login(Authenticate auth) override;

  // Client ID fields forwarded after mailshim's own x-* fields; any other
  // field (and above all a client-sent x-originating-ip) is never forwarded.
  static bool forwardableIdField(std::string_view key);
  // Untagged literals in backend responses are skipped up to this size.
  static constexpr uint64_t kMaxSkippedLiteral = 64 * 1024;

 private:
  enum class State : uint8_t {
    Greeting,      // waiting for "* OK" / "* PREAUTH" / "* BYE"
    Command,       // cmd_ outstanding
    TlsHandshake,  // StartTlsUpstream emitted
    Ready,         // capabilities known (post-TLS), waiting for credentials
    Done,          // LoginDone Ok emitted
    Failed,        // LoginDone TempFail emitted or due
  };
  enum class Cmd : uint8_t { Capability, Starttls, Id, Login };

  void onLine(std::string_view line, Actions& acts);
  void onTagged(const ImapResponseLine& r, Actions& acts);
  void afterCapabilities(Actions& acts);
  void maybeLogin(Actions& acts);
  void sendId(Actions& acts);
  void sendLogin(Actions& acts);
  void idRefused(Actions& acts);
  void send(Cmd cmd, std::vector<std::string> segments, Actions& acts);
  std::string nextTag();
  bool hasCap(std::string_view cap) const;
  // Backend trouble before or around login: TempFail. `client_text` (may be
  // empty: the front then closes with its own BYE) is reported once.
  void fail(std::string client_text, std::string log, Actions& acts);
  void loginDone(LoginResult::Kind kind, std::string code, std::string text, Actions& acts);
  bool trustedLeg() const { return tls_ || up_.tls == UpstreamTls::None; }

  SessionContext ctx_;
  UpstreamContext up_;
  LineReader reader_;
  State state_ = State::Greeting;
  Cmd cmd_ = Cmd::Capability;
  std::string tag_;                    // tag of the outstanding command
  std::vector<std::string> segments_;  // rest of the command, one per "+" continuation
  uint32_t tag_counter_ = 0;
  bool tls_ = false;  // the leg is TLS (implicit, or after STARTTLS)
  bool caps_known_ = false;
  std::vector<std::string> caps_;
  std::optional<Authenticate> pending_;  // credentials to try
  bool id_sent_ = false;
  std::string pipelined_id_;  // ID line to go out in front of the login command
  std::string id_tag_;        // tag of a pipelined ID still unanswered
  std::string preface_;               // "* CAPABILITY" lines inside the login reply
  uint64_t skip_literal_ = 0;         // literal octets of an untagged response still to skip
  bool in_literal_response_ = false;  // the next line continues that response
  std::string failed_text_;
};

}  // namespace mailshim::proto::imap
