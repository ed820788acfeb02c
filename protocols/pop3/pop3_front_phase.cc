// Pop3FrontPhase. See pop3_front_phase.h. RFC 1939, 2449, 2595, 5034. No I/O.
#include "protocols/pop3/pop3_front_phase.h"

#include <array>

#include "protocols/common/base64.h"
#include "protocols/common/sasl.h"
#include "protocols/common/text.h"
#include "protocols/pop3/pop3.h"
#include "protocols/pop3/pop3_codec.h"

namespace mailshim::proto::pop3 {
namespace {

constexpr std::string_view kPrivacyRequired =
    "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.";
constexpr std::string_view kAuthFailed = "-ERR [AUTH] Authentication failed.";
constexpr std::string_view kBadBase64 = "-ERR Invalid base64 data in continued response.";

// TRANSACTION-state commands (RFC 1939 section 5, RFC 2449 TOP/UIDL).
constexpr std::array<std::string_view, 10> kTransactionCommands = {"STAT", "LIST", "RETR", "DELE", "NOOP",
                                                                   "RSET", "TOP",  "UIDL", "LAST", "XTND"};

bool isTransactionCommand(std::string_view kw) {
  for (auto c : kTransactionCommands)
    if (kw == c) return true;
  return false;
}

}  // namespace

Pop3FrontPhase::Pop3FrontPhase(const SessionContext& ctx) : ctx_(ctx), reader_(ctx.max_line_bytes) {}

bool Pop3FrontPhase::authAllowed() const { return ctx_.client_tls || ctx_.quirks.has(Quirk::PlaintextAuth); }

std::string Pop3FrontPhase::capaReply() const {
  std::string r = "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n";
  if (!ctx_.client_tls && ctx_.starttls_available) r += "STLS\r\n";
  if (authAllowed()) r += "USER\r\nSASL PLAIN LOGIN\r\n";
  r += ".\r\n";
  return r;
}

Actions Pop3FrontPhase::start() {
  std::string name =
      isLineSafe(ctx_.server_name) && !ctx_.server_name.empty() ? ctx_.server_name : "mailshim";
  return {SendDownstream{"+OK " + name + " ready.\r\n"}, ArmTimer{ctx_.preauth_timeout_ms}};
}

Actions Pop3FrontPhase::finish(Batch& b) {
  Actions out = std::move(b.pre);
  if (!b.out.empty()) out.push_back(SendDownstream{std::move(b.out)});
  bool closing = false;
  for (auto& a : b.tail) {
    if (std::holds_alternative<Close>(a)) closing = true;
    out.push_back(std::move(a));
  }
  if (b.rearm && !closing && state_ != State::Relay) out.push_back(ArmTimer{ctx_.preauth_timeout_ms});
  return out;
}

void Pop3FrontPhase::close(CloseReason reason, Batch& b) {
  state_ = State::Closed;
  reader_.clear();
  wipe(user_);
  wipe(login_user_);
  b.tail.push_back(Close{reason});
}

void Pop3FrontPhase::protocolError(std::string_view reply, Batch& b) {
  if (++errors_ >= ctx_.max_errors) {
    // One reply per command: the last error is answered by the close notice.
    b.out += pop3CloseNotice(CloseReason::TooManyErrors, ctx_.server_name);
    close(CloseReason::TooManyErrors, b);
    return;
  }
  b.out += reply;
  b.out += "\r\n";
}

Actions Pop3FrontPhase::onDownstreamData(std::string_view bytes) {
  Batch b;
  switch (state_) {
    case State::Idle:
    case State::AuthPlain:
    case State::AuthLoginUser:
    case State::AuthLoginPass:
      reader_.feed(bytes);
      pump(b);
      break;
    case State::LoginPending:
      reader_.feed(bytes);
      if (reader_.pending().size() > kMaxPipelinedBytes) {
        b.out += pop3CloseNotice(CloseReason::LineTooLong, ctx_.server_name);
        close(CloseReason::LineTooLong, b);
      }
      break;
    case State::TlsPending:
      if (!bytes.empty())
        b.pre.push_back(LogNote{LogNote::Level::Warn, "discarded " + std::to_string(bytes.size()) +
                                                          " plaintext bytes received after STLS"});
      break;
    case State::Relay:
      if (!bytes.empty())
        b.pre.push_back(
            LogNote{LogNote::Level::Warn, "client data after relay start ignored by front phase"});
      break;
    case State::Closed:
      break;
  }
  return finish(b);
}

void Pop3FrontPhase::pump(Batch& b) {
  while (state_ == State::Idle || state_ == State::AuthPlain || state_ == State::AuthLoginUser ||
         state_ == State::AuthLoginPass) {
    std::string_view line;
    auto st = reader_.next(line);
    if (st == LineReader::Status::NeedMore) return;
    b.rearm = true;
    if (st == LineReader::Status::TooLong) {
      state_ = State::Idle;
      wipe(login_user_);
      protocolError("-ERR Command line too long.", b);
      continue;
    }
    if (state_ == State::Idle) {
      onCommand(line, b);
    } else {
      onSaslLine(line, b);
    }
  }
}

void Pop3FrontPhase::onCommand(std::string_view line, Batch& b) {
  if (line.empty()) return;  // stray line end: ignored
  auto cmd = parseCommand(line);
  if (!cmd) return protocolError("-ERR Unknown command.", b);
  const std::string& kw = cmd->keyword;
  if (kw == "CAPA") {
    b.out += capaReply();
  } else if (kw == "QUIT") {
    b.out += "+OK Logging out.\r\n";
    close(CloseReason::ClientQuit, b);
  } else if (kw == "STLS") {
    cmdStls(cmd->args, b);
  } else if (kw == "USER") {
    cmdUser(cmd->args, b);
  } else if (kw == "PASS") {
    cmdPass(cmd->args, b);
  } else if (kw == "AUTH") {
    cmdAuth(cmd->args, b);
  } else if (isTransactionCommand(kw)) {
    protocolError("-ERR [AUTH] Authenticate first.", b);
  } else {
    protocolError("-ERR Unknown command.", b);
  }
}

void Pop3FrontPhase::cmdStls(std::string_view args, Batch& b) {
  if (ctx_.client_tls) return protocolError("-ERR TLS is already active.", b);
  if (!ctx_.starttls_available) return protocolError("-ERR TLS support isn't enabled.", b);
  if (!args.empty()) return protocolError("-ERR Unexpected arguments.", b);
  b.out += "+OK Begin TLS negotiation now.\r\n";
  // Security invariant 1: "STLS\r\nCAPA\r\n" in one write never gets a CAPA.
  if (reader_.hasPending())
    b.pre.push_back(
        LogNote{LogNote::Level::Warn, "discarded " + std::to_string(reader_.pending().size()) +
                                          " bytes pipelined after STLS (command injection attempt?)"});
  reader_.clear();
  state_ = State::TlsPending;
  b.tail.push_back(StartTlsDownstream{});
}

Actions Pop3FrontPhase::onDownstreamTls() {
  if (state_ != State::TlsPending) return {};
  // Security invariant 2: forget everything learned in plaintext.
  ctx_.client_tls = true;
  reader_.clear();
  wipe(user_);
  wipe(login_user_);
  state_ = State::Idle;
  return {ArmTimer{ctx_.preauth_timeout_ms}};
}

std::string Pop3FrontPhase::plaintextRefusal(std::string_view command, Batch& b) {
  if (ctx_.retired_quirks.has(Quirk::PlaintextAuth)) {
    // plaintext_auth was retired for this client: the admin's words, counted.
    b.pre.push_back(QuirkUsed{Quirk::PlaintextAuth, "retired: POP3 " + std::string(command) + " without TLS refused"});
    const std::string& msg = ctx_.retired_message;
    if (!msg.empty() && isLineSafe(msg)) return "-ERR [AUTH] " + msg;
  }
  return std::string(kPrivacyRequired);
}

void Pop3FrontPhase::cmdUser(std::string_view args, Batch& b) {
  if (!authAllowed()) return protocolError(plaintextRefusal("USER", b), b);
  if (args.empty() || !sasl::validField(args)) return protocolError("-ERR Invalid user name.", b);
  wipe(user_);
  user_ = std::string(args);
  b.out += "+OK\r\n";
}

void Pop3FrontPhase::cmdPass(std::string_view args, Batch& b) {
  if (!authAllowed()) return protocolError(plaintextRefusal("PASS", b), b);
  if (user_.empty()) return protocolError("-ERR No username given.", b);
  if (!sasl::validField(args)) {
    wipe(user_);
    return protocolError(kAuthFailed, b);
  }
  Credentials creds;
  creds.user = std::move(user_);
  user_.clear();
  creds.password = Secret(std::string(args));
  creds.method = AuthMethod::Pop3User;
  startLogin(std::move(creds), "POP3 USER/PASS without TLS", b);
}

void Pop3FrontPhase::cmdAuth(std::string_view args, Batch& b) {
  if (args.empty()) {
    // The pre-RFC 5034 listing form Outlook still sends.
    b.out += authAllowed() ? "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n" : "+OK\r\n.\r\n";
    return;
  }
  if (!authAllowed()) return protocolError(plaintextRefusal("AUTH", b), b);
  std::string_view rest = args;
  std::string_view mech_name = nextWord(rest);
  auto mech = sasl::mechanismFromName(mech_name);
  if (!mech) return protocolError("-ERR Unsupported authentication mechanism.", b);
  const bool has_ir = !rest.empty();
  if (rest.find(' ') != std::string_view::npos) return protocolError("-ERR Invalid arguments.", b);
  // RFC 5034 section 4: "=" stands for an empty initial response.
  std::string_view ir = rest == "=" ? std::string_view() : rest;
  if (*mech == sasl::Mechanism::Plain) {
    if (has_ir) return finishPlain(ir, b);
    b.out += "+ \r\n";
    state_ = State::AuthPlain;
    return;
  }
  if (has_ir) {
    auto user = sasl::decodeLoginField(ir);
    if (!user) return protocolError(kBadBase64, b);
    login_user_ = std::move(*user);
    b.out += "+ " + std::string(sasl::kLoginPassChallenge) + "\r\n";
    state_ = State::AuthLoginPass;
    return;
  }
  b.out += "+ " + std::string(sasl::kLoginUserChallenge) + "\r\n";
  state_ = State::AuthLoginUser;
}

void Pop3FrontPhase::finishPlain(std::string_view b64, Batch& b) {
  state_ = State::Idle;
  if (auto raw = base64Decode(b64); !raw) {
    return protocolError(kBadBase64, b);
  } else {
    wipe(*raw);
  }
  auto creds = sasl::decodePlain(b64);
  if (!creds) return protocolError(kAuthFailed, b);
  startLogin(std::move(*creds), "POP3 AUTH without TLS", b);
}

void Pop3FrontPhase::onSaslLine(std::string_view line, Batch& b) {
  if (line == "*") {
    state_ = State::Idle;
    wipe(login_user_);
    b.out += "-ERR Authentication aborted by client.\r\n";
    return;
  }
  if (state_ == State::AuthPlain) return finishPlain(line, b);
  auto field = sasl::decodeLoginField(line);
  if (!field) {
    state_ = State::Idle;
    wipe(login_user_);
    return protocolError(kBadBase64, b);
  }
  if (state_ == State::AuthLoginUser) {
    login_user_ = std::move(*field);
    b.out += "+ " + std::string(sasl::kLoginPassChallenge) + "\r\n";
    state_ = State::AuthLoginPass;
    return;
  }
  state_ = State::Idle;
  if (login_user_.empty()) {
    wipe(*field);
    return protocolError(kAuthFailed, b);
  }
  Credentials creds;
  creds.user = std::move(login_user_);
  login_user_.clear();
  creds.password = Secret(std::move(*field));
  creds.method = AuthMethod::Login;
  startLogin(std::move(creds), "POP3 AUTH without TLS", b);
}

void Pop3FrontPhase::startLogin(Credentials creds, std::string_view quirk_detail, Batch& b) {
  state_ = State::LoginPending;
  if (!ctx_.client_tls) b.pre.push_back(QuirkUsed{Quirk::PlaintextAuth, std::string(quirk_detail)});
  b.pre.push_back(UserKnown{creds.user});
  if (!upstream_requested_) {
    upstream_requested_ = true;
    b.tail.push_back(ConnectUpstream{});
  }
  Authenticate auth;
  auth.creds = std::move(creds);
  b.tail.push_back(std::move(auth));
}

Actions Pop3FrontPhase::onLoginResult(const LoginResult& result) {
  Batch b;
  if (state_ != State::LoginPending) {
    b.pre.push_back(LogNote{LogNote::Level::Warn, "login result without a pending login ignored"});
    return finish(b);
  }
  switch (result.kind) {
    case LoginResult::Kind::Ok: {
      b.out += "+OK " + responseTextOr(result.text, "Logged in.") + "\r\n";
      state_ = State::Relay;
      std::string pipelined(reader_.pending());
      reader_.clear();
      b.tail.push_back(EnterRelay{std::move(pipelined), result.leftover});
      return finish(b);
    }
    case LoginResult::Kind::AuthFailed:
      state_ = State::Idle;
      protocolError("-ERR " + responseTextOr(result.text, "[AUTH] Authentication failed."), b);
      break;
    case LoginResult::Kind::TempFail:
      if (result.text.empty()) {
        b.out += "-ERR [SYS/TEMP] Backend server unavailable.\r\n";
        close(CloseReason::UpstreamUnavailable, b);
        return finish(b);
      }
      state_ = State::Idle;
      b.out += "-ERR " + responseTextOr(result.text, "[SYS/TEMP] Temporary failure.") + "\r\n";
      break;
  }
  b.rearm = true;
  pump(b);
  return finish(b);
}

Actions Pop3FrontPhase::onTimeout() {
  Batch b;
  switch (state_) {
    case State::Closed:
    case State::Relay:
      return {};
    case State::TlsPending:
      close(CloseReason::Timeout, b);
      break;
    default:
      b.out += pop3CloseNotice(CloseReason::Timeout, ctx_.server_name);
      close(CloseReason::Timeout, b);
      break;
  }
  return finish(b);
}

}  // namespace mailshim::proto::pop3
