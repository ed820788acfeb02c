// Pop3UpstreamLogin: mailshim as a POP3 client of the backend (Dovecot)
// before the relay. Greeting (an APOP timestamp is ignored, APOP never used),
// CAPA (RFC 2449), STLS (RFC 2595 section 4; bytes after the go-ahead are
// discarded and the pre-TLS CAPA is forgotten), Dovecot's XCLIENT with the
// real client address (honoured from login_trusted_networks), then AUTH PLAIN
// with an initial response (RFC 5034) or USER/PASS (RFC 1939 section 7).
// One command outstanding at a time, except that XCLIENT is pipelined with
// the login command when the backend offers PIPELINING (one round trip
// less). Bounded lines, backend text validated before it reaches a
// LoginResult. No I/O: it only returns Actions (phase.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocols/common/line_reader.h"
#include "protocols/common/phase.h"
#include "protocols/pop3/pop3_codec.h"

namespace mailshim::proto::pop3 {

class Pop3UpstreamLogin final : public UpstreamLogin {
 public:
  Pop3UpstreamLogin(const SessionContext& ctx, const UpstreamContext& up);

  Actions onConnected() override;
  Actions onUpstreamData(std::string_view bytes) override;
  Actions onUpstreamTls() override;
  Actions login(Authenticate auth) override;

 private:
  enum class State : uint8_t { Greeting, Command, TlsHandshake, Ready, Done, Failed };
  enum class Cmd : uint8_t { Capa, Stls, Xclient, User, Pass, Auth };

  void onLine(std::string_view line, Actions& acts);
  void afterCapa(Actions& acts);
  void maybeLogin(Actions& acts);
  void sendAuth(Actions& acts);
  void send(Cmd cmd, std::string line, Actions& acts);
  void onLoginReply(const Pop3Status& st, Actions& acts);
  void xclientRefused(Actions& acts);
  void fail(std::string client_text, std::string log, Actions& acts);
  void loginDone(LoginResult::Kind kind, std::string code, std::string text, Actions& acts);
  bool trustedLeg() const { return tls_ || up_.tls == UpstreamTls::None; }

  SessionContext ctx_;
  UpstreamContext up_;
  LineReader reader_;
  State state_ = State::Greeting;
  Cmd cmd_ = Cmd::Capa;
  bool in_capa_list_ = false;  // between CAPA's "+OK" and "."
  bool tls_ = false;
  bool capa_known_ = false;
  CapaList capa_;
  std::optional<Authenticate> pending_;
  bool xclient_sent_ = false;
  bool greeting_xclient_ = false;  // "+OK [XCLIENT] ..." greeting
  std::string pipelined_xclient_;  // XCLIENT line to go out in front of the login command
  bool xclient_unanswered_ = false;  // it went out; its reply is the next status line
  std::string failed_text_;
};

}  // namespace mailshim::proto::pop3
