// Pop3UpstreamLogin. See pop3_upstream_login.h. RFC 1939, 2449, 2595, 3206,
// 5034; Dovecot pop3-login XCLIENT; client-quirks.md section 6.B-6.C. No I/O.
#include "protocols/pop3/pop3_upstream_login.h"

#include <algorithm>

#include "protocols/common/sasl.h"
#include "protocols/common/text.h"

namespace mailshim::proto::pop3 {
namespace {

constexpr std::string_view kGenericAuthFailed = "[AUTH] Authentication failed.";

}  // namespace

Pop3UpstreamLogin::Pop3UpstreamLogin(const SessionContext& ctx, const UpstreamContext& up)
    : ctx_(ctx), up_(up), reader_(up.max_line_bytes), tls_(up.tls == UpstreamTls::Implicit) {}

Actions Pop3UpstreamLogin::onConnected() { return {}; }

void Pop3UpstreamLogin::send(Cmd cmd, std::string line, Actions& acts) {
  state_ = State::Command;
  cmd_ = cmd;
  in_capa_list_ = false;
  if (!pipelined_xclient_.empty()) {
    // XCLIENT goes in the same write; its reply comes first. `line` may
    // hold credentials: no unwiped copies.
    std::string both = std::move(pipelined_xclient_);
    pipelined_xclient_.clear();
    appendWiped(both, line);
    wipe(line);
    line = std::move(both);
    xclient_unanswered_ = true;
  }
  acts.push_back(SendUpstream{std::move(line)});
}

void Pop3UpstreamLogin::fail(std::string client_text, std::string log, Actions& acts) {
  state_ = State::Failed;
  reader_.clear();
  pipelined_xclient_.clear();
  acts.push_back(LogNote{LogNote::Level::Warn, "pop3 upstream: " + std::move(log)});
  failed_text_ = std::move(client_text);
  if (pending_) loginDone(LoginResult::Kind::TempFail, "-ERR", std::move(failed_text_), acts);
}

void Pop3UpstreamLogin::loginDone(LoginResult::Kind kind, std::string code, std::string text, Actions& acts) {
  LoginResult r;
  r.kind = kind;
  r.code = std::move(code);
  r.text = std::move(text);
  if (kind == LoginResult::Kind::Ok) {
    r.leftover = std::string(reader_.pending());
    reader_.clear();
  }
  failed_text_.clear();
  pending_.reset();
  acts.push_back(LoginDone{std::move(r)});
}

Actions Pop3UpstreamLogin::onUpstreamData(std::string_view bytes) {
  Actions acts;
  if (state_ == State::Done || state_ == State::Failed) return acts;
  if (state_ == State::TlsHandshake) {
    if (!bytes.empty())
      acts.push_back(LogNote{
          LogNote::Level::Warn,
          "pop3 upstream: discarded " + std::to_string(bytes.size()) + " plaintext bytes after STLS"});
    return acts;
  }
  reader_.feed(bytes);
  while (state_ != State::Done && state_ != State::Failed && state_ != State::TlsHandshake) {
    std::string_view line;
    auto st = reader_.next(line);
    if (st == LineReader::Status::NeedMore) break;
    if (st == LineReader::Status::TooLong) {
      fail("", "backend line too long", acts);
      break;
    }
    onLine(line, acts);
  }
  return acts;
}

void Pop3UpstreamLogin::onLine(std::string_view line, Actions& acts) {
  if (in_capa_list_) {
    if (capa_.add(line)) {
      in_capa_list_ = false;
      capa_known_ = true;
      afterCapa(acts);
    }
    return;
  }
  if (state_ == State::Command && cmd_ == Cmd::Auth && isContinuation(line))
    return fail("", "unexpected SASL continuation from backend", acts);
  auto st = parseStatus(line);
  if (!st) return fail("", "unparsable backend line: " + logSafe(line), acts);

  if (state_ == State::Greeting) {
    if (!st->ok)
      return fail(trustedLeg() ? responseTextOr(st->text, "") : "", "backend greeting: " + logSafe(line),
                  acts);
    // An APOP timestamp in the greeting is ignored: APOP is never used.
    // Dovecot announces XCLIENT to trusted networks only as the greeting's
    // response code ("+OK [XCLIENT] Dovecot ready."), never in CAPA.
    greeting_xclient_ = st->text.rfind("[XCLIENT]", 0) == 0;
    return send(Cmd::Capa, "CAPA\r\n", acts);
  }
  if (state_ != State::Command) return fail("", "unsolicited backend line: " + logSafe(line), acts);
  if (xclient_unanswered_) {  // the pipelined XCLIENT's reply; the login's follows
    xclient_unanswered_ = false;
    if (!st->ok) xclientRefused(acts);
    return;
  }

  switch (cmd_) {
    case Cmd::Capa:
      capa_.clear();
      if (st->ok) {
        in_capa_list_ = true;
        return;
      }
      capa_known_ = true;  // no CAPA support: an empty list
      return afterCapa(acts);

    case Cmd::Stls:
      if (!st->ok) return fail("", "backend refused STLS: " + logSafe(st->text), acts);
      // Security invariant 1, response side: nothing after "+OK" is read.
      if (reader_.hasPending())
        acts.push_back(LogNote{LogNote::Level::Warn, "pop3 upstream: discarded " +
                                                         std::to_string(reader_.pending().size()) +
                                                         " bytes after the STLS go-ahead"});
      reader_.clear();
      state_ = State::TlsHandshake;
      acts.push_back(StartTlsUpstream{});
      return;

    case Cmd::Xclient:
      if (!st->ok) xclientRefused(acts);
      state_ = State::Ready;
      return sendAuth(acts);

    case Cmd::User:
      if (!st->ok || !pending_) return onLoginReply(*st, acts);
    {
      std::string line = "PASS ";
      appendWiped(line, pending_->creds.password.reveal());
      appendWiped(line, "\r\n");
      return send(Cmd::Pass, std::move(line), acts);
    }

    case Cmd::Pass:
    case Cmd::Auth:
      return onLoginReply(*st, acts);
  }
}

void Pop3UpstreamLogin::onLoginReply(const Pop3Status& st, Actions& acts) {
  if (st.ok) {
    state_ = State::Done;
    return loginDone(LoginResult::Kind::Ok, "+OK", responseTextOr(st.text, "Logged in."), acts);
  }
  state_ = State::Ready;
  const std::string code = asciiUpper(st.code);
  // RFC 3206: SYS/TEMP and IN-USE are temporary; [AUTH] and others are the
  // credentials' fault.
  if (code == "SYS/TEMP" || code == "IN-USE")
    return loginDone(LoginResult::Kind::TempFail, "-ERR",
                     responseTextOr(st.text, "[SYS/TEMP] Temporary failure."), acts);
  loginDone(LoginResult::Kind::AuthFailed, "-ERR", responseTextOr(st.text, kGenericAuthFailed), acts);
}

void Pop3UpstreamLogin::xclientRefused(Actions& acts) {
  acts.push_back(LogNote{LogNote::Level::Warn,
                         "pop3 upstream: backend refused XCLIENT; the client address is not "
                         "forwarded (login_trusted_networks?)"});
}

void Pop3UpstreamLogin::afterCapa(Actions& acts) {
  if (up_.tls == UpstreamTls::Starttls && !tls_) {
    // 6.C 18: no STLS (or no CAPA) means no login, never a plaintext fallback.
    if (!capa_.has("STLS")) return fail("", "backend does not offer STLS", acts);
    return send(Cmd::Stls, "STLS\r\n", acts);
  }
  state_ = State::Ready;
  maybeLogin(acts);
}

Actions Pop3UpstreamLogin::onUpstreamTls() {
  Actions acts;
  if (state_ != State::TlsHandshake) return acts;
  // Security invariant 2: the pre-TLS CAPA is forgotten and asked again.
  tls_ = true;
  capa_.clear();
  capa_known_ = false;
  reader_.clear();
  send(Cmd::Capa, "CAPA\r\n", acts);
  return acts;
}

Actions Pop3UpstreamLogin::login(Authenticate auth) {
  Actions acts;
  if (state_ == State::Done) return acts;
  pending_ = std::move(auth);
  if (state_ == State::Failed) {
    loginDone(LoginResult::Kind::TempFail, "-ERR", std::move(failed_text_), acts);
    return acts;
  }
  maybeLogin(acts);
  return acts;
}

void Pop3UpstreamLogin::maybeLogin(Actions& acts) {
  if (state_ != State::Ready || !pending_) return;
  if (up_.client_address == ClientAddressMode::Xclient && !xclient_sent_) {
    xclient_sent_ = true;
    if (!capa_.has("XCLIENT") && !greeting_xclient_) {
      acts.push_back(LogNote{LogNote::Level::Warn,
                             "pop3 upstream: backend does not offer XCLIENT; add mailshim's address "
                             "to Dovecot's login_trusted_networks to forward the client address"});
    } else {
      std::string line = "XCLIENT";
      if (!ctx_.client_ip.empty() && isLineSafe(ctx_.client_ip) &&
          ctx_.client_ip.find(' ') == std::string::npos)
        line += " ADDR=" + ctx_.client_ip;
      if (ctx_.client_port) line += " PORT=" + std::to_string(ctx_.client_port);
      if (!ctx_.session_id.empty() && isLineSafe(ctx_.session_id) &&
          ctx_.session_id.find(' ') == std::string::npos)
        line += " SESSION=" + ctx_.session_id;
      line += "\r\n";
      if (!capa_.has("PIPELINING")) return send(Cmd::Xclient, std::move(line), acts);
      // RFC 2449 PIPELINING: the login command follows in the same write,
      // one round trip less. The backend executes commands in order, so the
      // address is in place before the credentials are checked.
      pipelined_xclient_ = std::move(line);
    }
  }
  sendAuth(acts);
}

void Pop3UpstreamLogin::sendAuth(Actions& acts) {
  if (!pending_) {
    state_ = State::Ready;
    return;
  }
  if (up_.tls == UpstreamTls::Starttls && !tls_)  // belt and braces: never in clear
    return fail("", "refusing to log in before TLS", acts);
  const Credentials& creds = pending_->creds;
  if (!sasl::validField(creds.user) || creds.user.empty() || !sasl::validField(creds.password.reveal())) {
    state_ = State::Ready;
    return loginDone(LoginResult::Kind::AuthFailed, "-ERR", std::string(kGenericAuthFailed), acts);
  }
  auto mechs = capa_.saslMechanisms();
  if (std::find(mechs.begin(), mechs.end(), "PLAIN") != mechs.end()) {
    std::string b64 = sasl::encodePlain(creds);
    std::string line = "AUTH PLAIN ";
    appendWiped(line, b64);
    appendWiped(line, "\r\n");
    wipe(b64);
    return send(Cmd::Auth, std::move(line), acts);
  }
  if (capa_known_ && !capa_.lines().empty() && !capa_.has("USER"))
    return fail("", "backend offers neither SASL PLAIN nor USER", acts);
  if (!isValidUtf8(creds.user)) {  // never written raw into the USER line
    state_ = State::Ready;
    return loginDone(LoginResult::Kind::AuthFailed, "-ERR", std::string(kGenericAuthFailed), acts);
  }
  send(Cmd::User, "USER " + creds.user + "\r\n", acts);
}

}  // namespace mailshim::proto::pop3
