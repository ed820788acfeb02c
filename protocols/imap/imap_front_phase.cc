// ImapFrontPhase. See imap_front_phase.h. RFC 9051 sections 6.1-6.2, RFC 2971,
// RFC 4959, RFC 7888. No I/O.
#include "protocols/imap/imap_front_phase.h"

#include <array>

#include "protocols/common/base64.h"
#include "protocols/common/sasl.h"
#include "protocols/common/text.h"
#include "protocols/imap/imap.h"

namespace mailshim::proto::imap {
namespace {

constexpr std::string_view kPrivacyRequired =
    "NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.";
constexpr std::string_view kAuthFailed = "NO [AUTHENTICATIONFAILED] Authentication failed.";

// RFC 2971 section 3.3: at most 30 pairs, field names up to 30 octets,
// values up to 1024 octets.
constexpr size_t kMaxIdPairs = 30;
constexpr size_t kMaxIdKey = 30;
constexpr size_t kMaxIdValue = 1024;

// Commands of the authenticated and selected states: refused before login
// with a clearer text than "unknown".
constexpr std::array<std::string_view, 34> kPostLoginCommands = {
    "SELECT", "EXAMINE",  "CREATE",      "DELETE",      "RENAME",       "SUBSCRIBE", "UNSUBSCRIBE",
    "LIST",   "LSUB",     "NAMESPACE",   "STATUS",      "APPEND",       "IDLE",      "ENABLE",
    "CHECK",  "CLOSE",    "UNSELECT",    "EXPUNGE",     "SEARCH",       "FETCH",     "STORE",
    "COPY",   "MOVE",     "UID",         "GETQUOTA",    "GETQUOTAROOT", "SETQUOTA",  "GETACL",
    "SETACL", "MYRIGHTS", "GETMETADATA", "SETMETADATA", "COMPRESS",     "NOTIFY"};

bool isPostLoginCommand(std::string_view name) {
  for (auto c : kPostLoginCommands)
    if (iequals(name, c)) return true;
  return false;
}

// Backend untagged lines to show before the tagged OK: each "* ..." + CRLF.
std::string cleanPreface(std::string_view preface) {
  std::string out;
  while (!preface.empty()) {
    size_t end = preface.find("\r\n");
    if (end == std::string_view::npos) return {};
    std::string_view line = preface.substr(0, end);
    preface.remove_prefix(end + 2);
    if (line.size() < 3 || line.substr(0, 2) != "* " || responseTextOr(line, "").empty()) return {};
    out += line;
    out += "\r\n";
  }
  return out;
}

// ID value as kept and forwarded: controls replaced, cut at a UTF-8 boundary.
std::string sanitizeIdValue(std::string_view v) {
  if (v.size() > kMaxIdValue) {
    size_t n = kMaxIdValue;
    while (n > 0 && (static_cast<unsigned char>(v[n]) & 0xC0) == 0x80) --n;
    v = v.substr(0, n);
  }
  // Invalid UTF-8 would reach the backend (and its logs) raw inside a literal.
  std::string out = replaceInvalidUtf8(v);
  for (char& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return out;
}

bool validIdKey(std::string_view k) {
  if (k.empty() || k.size() > kMaxIdKey) return false;
  for (char c : k) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '"' || c == '\\') return false;
  }
  return true;
}

}  // namespace

ImapFrontPhase::ImapFrontPhase(const SessionContext& ctx)
    : ctx_(ctx), parser_(ImapParser::Limits{ctx.max_line_bytes, kMaxLiteralBytes, 80, 2}) {}

bool ImapFrontPhase::authAllowed() const { return ctx_.client_tls || ctx_.quirks.has(Quirk::PlaintextAuth); }

std::string ImapFrontPhase::capabilities() const {
  std::string caps = "IMAP4rev1 SASL-IR ID LITERAL+";
  if (!ctx_.client_tls && ctx_.starttls_available) caps += " STARTTLS";
  caps += authAllowed() ? " AUTH=PLAIN AUTH=LOGIN" : " LOGINDISABLED";
  return caps;
}

Actions ImapFrontPhase::start() {
  std::string name =
      isLineSafe(ctx_.server_name) && !ctx_.server_name.empty() ? ctx_.server_name : "mailshim";
  return {SendDownstream{"* OK [CAPABILITY " + capabilities() + "] " + name + " ready.\r\n"},
          ArmTimer{ctx_.preauth_timeout_ms}};
}

Actions ImapFrontPhase::finish(Batch& b) {
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

void ImapFrontPhase::close(CloseReason reason, Batch& b) {
  state_ = State::Closed;
  parser_.clear();
  wipe(login_user_);
  b.tail.push_back(Close{reason});
}

void ImapFrontPhase::protocolError(std::string_view reply, Batch& b) {
  b.out += reply;
  b.out += "\r\n";
  if (++errors_ >= ctx_.max_errors) {
    b.out += imapCloseNotice(CloseReason::TooManyErrors, ctx_.server_name);
    close(CloseReason::TooManyErrors, b);
  }
}

Actions ImapFrontPhase::onDownstreamData(std::string_view bytes) {
  Batch b;
  switch (state_) {
    case State::Idle:
    case State::AuthPlain:
    case State::AuthLoginUser:
    case State::AuthLoginPass:
      parser_.feed(bytes);
      pump(b);
      break;
    case State::LoginPending:
      // Pipelined after the login command (the newer Outlook sends CAPABILITY
      // right behind AUTHENTICATE): held for the backend, bounded.
      parser_.feed(bytes);
      if (parser_.pendingBytes() > kMaxPipelinedBytes) {
        b.out += imapCloseNotice(CloseReason::LineTooLong, ctx_.server_name);
        close(CloseReason::LineTooLong, b);
      }
      break;
    case State::TlsPending:
      // Plaintext after STARTTLS and before the handshake: never executed.
      if (!bytes.empty())
        b.pre.push_back(LogNote{LogNote::Level::Warn, "discarded " + std::to_string(bytes.size()) +
                                                          " plaintext bytes received after STARTTLS"});
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

void ImapFrontPhase::pump(Batch& b) {
  for (;;) {
    if (state_ == State::Idle) {
      switch (parser_.next()) {
        case ImapParser::Status::NeedMore:
          return;
        case ImapParser::Status::NeedContinuation:
          if (!authAllowed() && iequals(parser_.command().name, "LOGIN")) {
            // Never solicit a password that would be refused anyway: a tagged
            // NO instead of the continuation ends the command (RFC 9051 7.5).
            std::string reply = plaintextRefusal(parser_.command().tag, "LOGIN", b);
            parser_.abortCommand();
            protocolError(reply, b);
            break;
          }
          b.out += "+ Ready for literal data\r\n";
          break;
        case ImapParser::Status::Error:
          onParseError(b);
          break;
        case ImapParser::Status::Command: {
          b.rearm = true;
          ImapCommand& cmd = parser_.command();
          onCommand(cmd, b);
          cmd.wipe();
          break;
        }
      }
    } else if (state_ == State::AuthPlain || state_ == State::AuthLoginUser ||
               state_ == State::AuthLoginPass) {
      std::string line;
      auto st = parser_.nextLine(line);
      if (st == ImapParser::LineStatus::NeedMore) return;
      b.rearm = true;
      if (st == ImapParser::LineStatus::TooLong) {
        state_ = State::Idle;
        wipe(login_user_);
        protocolError(auth_tag_ + " BAD Command line too long.", b);
      } else {
        onSaslLine(line, b);
        wipe(line);
      }
    } else {
      return;  // LoginPending, TlsPending, Relay, Closed: stop parsing
    }
  }
}

void ImapFrontPhase::onParseError(Batch& b) {
  std::string reply = parser_.errorTag() + " BAD " + std::string(imapParseErrorText(parser_.error()));
  if (parser_.errorIsFatal()) {
    // A too-large non-synchronizing literal is already on its way: its octets
    // cannot be told apart from commands, so stop reading.
    b.out += reply + "\r\n";
    b.out += imapCloseNotice(CloseReason::LineTooLong, ctx_.server_name);
    close(CloseReason::LineTooLong, b);
    return;
  }
  protocolError(reply, b);
}

void ImapFrontPhase::onCommand(ImapCommand& cmd, Batch& b) {
  const std::string& tag = cmd.tag;
  const std::string name = asciiUpper(cmd.name);
  if (name == "CAPABILITY" || name == "NOOP" || name == "LOGOUT") {
    if (!cmd.args.empty()) return protocolError(tag + " BAD Unexpected arguments.", b);
    if (name == "CAPABILITY") {
      b.out += "* CAPABILITY " + capabilities() + "\r\n" + tag + " OK Capability completed.\r\n";
    } else if (name == "NOOP") {
      b.out += tag + " OK NOOP completed.\r\n";
    } else {
      b.out += "* BYE Logging out\r\n" + tag + " OK Logout completed.\r\n";
      close(CloseReason::ClientQuit, b);
    }
  } else if (name == "STARTTLS") {
    cmdStarttls(cmd, b);
  } else if (name == "ID") {
    cmdId(cmd, b);
  } else if (name == "LOGIN") {
    cmdLogin(cmd, b);
  } else if (name == "AUTHENTICATE") {
    cmdAuthenticate(cmd, b);
  } else if (isPostLoginCommand(name)) {
    protocolError(tag + " BAD Command not allowed before login.", b);
  } else {
    protocolError(tag + " BAD Unknown command.", b);
  }
}

std::string ImapFrontPhase::plaintextRefusal(const std::string& tag, std::string_view command, Batch& b) {
  if (ctx_.retired_quirks.has(Quirk::PlaintextAuth)) {
    // plaintext_auth was retired for this client: the admin's words, counted.
    b.pre.push_back(QuirkUsed{Quirk::PlaintextAuth, "retired: IMAP " + std::string(command) + " without TLS refused"});
    const std::string& msg = ctx_.retired_message;
    if (!msg.empty() && isLineSafe(msg)) return tag + " NO [PRIVACYREQUIRED] " + msg;
  }
  return tag + " " + std::string(kPrivacyRequired);
}

void ImapFrontPhase::cmdStarttls(const ImapCommand& cmd, Batch& b) {
  if (ctx_.client_tls) return protocolError(cmd.tag + " BAD TLS is already active.", b);
  if (!ctx_.starttls_available) return protocolError(cmd.tag + " BAD TLS support isn't enabled.", b);
  if (!cmd.args.empty()) return protocolError(cmd.tag + " BAD Unexpected arguments.", b);
  b.out += cmd.tag + " OK Begin TLS negotiation now.\r\n";
  // Security invariant 1 (CVE-2011-0411 class): nothing the client sent after
  // the STARTTLS line is ever executed.
  if (size_t n = parser_.pendingBytes(); n > 0)
    b.pre.push_back(LogNote{
        LogNote::Level::Warn,
        "discarded " + std::to_string(n) + " bytes pipelined after STARTTLS (command injection attempt?)"});
  parser_.clear();
  state_ = State::TlsPending;
  b.tail.push_back(StartTlsDownstream{});
}

Actions ImapFrontPhase::onDownstreamTls() {
  if (state_ != State::TlsPending) return {};
  // Security invariant 2: forget everything learned in plaintext.
  ctx_.client_tls = true;
  parser_.clear();
  id_fields_.clear();
  wipe(login_user_);
  auth_tag_.clear();
  state_ = State::Idle;
  return {ArmTimer{ctx_.preauth_timeout_ms}};
}

void ImapFrontPhase::cmdId(const ImapCommand& cmd, Batch& b) {
  bool ok =
      cmd.args.size() == 1 &&
      (cmd.args[0].isNil() || (cmd.args[0].kind == ImapArg::Kind::List && cmd.args[0].items.size() % 2 == 0));
  if (ok && cmd.args[0].kind == ImapArg::Kind::List) {
    for (const auto& item : cmd.args[0].items)
      if (item.kind == ImapArg::Kind::List) ok = false;
  }
  if (!ok) return protocolError(cmd.tag + " BAD Invalid ID parameters.", b);
  id_fields_.clear();
  if (cmd.args[0].kind == ImapArg::Kind::List) {
    const auto& items = cmd.args[0].items;
    for (size_t i = 0; i + 1 < items.size() && id_fields_.size() < kMaxIdPairs; i += 2) {
      const ImapArg& key = items[i];
      const ImapArg& val = items[i + 1];
      if (key.isNil() || !validIdKey(key.value) || val.isNil()) continue;
      std::string k = key.value;
      for (char& c : k) c = asciiLower(c);
      std::string v = sanitizeIdValue(val.value);
      b.pre.push_back(ClientInfo{"id." + k, v});
      id_fields_.emplace_back(std::move(k), std::move(v));
    }
  }
  b.out += "* ID (\"name\" \"mailshim\")\r\n" + cmd.tag + " OK ID completed.\r\n";
}

void ImapFrontPhase::cmdLogin(ImapCommand& cmd, Batch& b) {
  if (cmd.args.size() != 2 || !cmd.args[0].isAstring() || !cmd.args[1].isAstring())
    return protocolError(cmd.tag + " BAD Invalid arguments.", b);
  if (!authAllowed()) return protocolError(plaintextRefusal(cmd.tag, "LOGIN", b), b);
  const std::string& user = cmd.args[0].value;
  const std::string& pass = cmd.args[1].value;
  if (user.empty() || !sasl::validField(user) || !sasl::validField(pass))
    return protocolError(cmd.tag + " " + std::string(kAuthFailed), b);
  Credentials creds;
  creds.user = user;
  creds.password = Secret(pass);
  creds.method = AuthMethod::ImapLogin;
  auth_tag_ = cmd.tag;
  startLogin(std::move(creds), "IMAP LOGIN without TLS", b);
}

void ImapFrontPhase::cmdAuthenticate(const ImapCommand& cmd, Batch& b) {
  if (cmd.args.empty() || cmd.args.size() > 2 || cmd.args[0].kind != ImapArg::Kind::Atom ||
      (cmd.args.size() == 2 && cmd.args[1].kind != ImapArg::Kind::Atom))
    return protocolError(cmd.tag + " BAD Invalid arguments.", b);
  if (!authAllowed()) return protocolError(plaintextRefusal(cmd.tag, "AUTHENTICATE", b), b);
  auto mech = sasl::mechanismFromName(cmd.args[0].value);
  if (!mech) return protocolError(cmd.tag + " NO Unsupported authentication mechanism.", b);
  auth_tag_ = cmd.tag;
  const bool has_ir = cmd.args.size() == 2;
  // SASL-IR (RFC 4959): "=" stands for an empty initial response.
  std::string_view ir = has_ir && cmd.args[1].value != "=" ? std::string_view(cmd.args[1].value) : "";
  if (*mech == sasl::Mechanism::Plain) {
    if (has_ir) return finishPlain(ir, b);
    b.out += "+ \r\n";
    state_ = State::AuthPlain;
    return;
  }
  if (has_ir) {
    // Dovecot takes a LOGIN initial response as the user name.
    auto user = sasl::decodeLoginField(ir);
    if (!user) return protocolError(cmd.tag + " BAD Invalid base64 data in initial response.", b);
    login_user_ = std::move(*user);
    b.out += "+ " + std::string(sasl::kLoginPassChallenge) + "\r\n";
    state_ = State::AuthLoginPass;
    return;
  }
  b.out += "+ " + std::string(sasl::kLoginUserChallenge) + "\r\n";
  state_ = State::AuthLoginUser;
}

void ImapFrontPhase::finishPlain(std::string_view b64, Batch& b) {
  state_ = State::Idle;
  if (auto raw = base64Decode(b64); !raw) {
    return protocolError(auth_tag_ + " BAD Invalid base64 data in continued response.", b);
  } else {
    wipe(*raw);
  }
  auto creds = sasl::decodePlain(b64);
  if (!creds) return protocolError(auth_tag_ + " " + std::string(kAuthFailed), b);
  startLogin(std::move(*creds), "IMAP AUTHENTICATE without TLS", b);
}

void ImapFrontPhase::onSaslLine(std::string_view line, Batch& b) {
  if (line == "*") {
    state_ = State::Idle;
    wipe(login_user_);
    b.out += auth_tag_ + " BAD Authentication aborted by client.\r\n";
    return;
  }
  if (state_ == State::AuthPlain) return finishPlain(line, b);
  auto field = sasl::decodeLoginField(line);
  if (!field) {
    state_ = State::Idle;
    wipe(login_user_);
    return protocolError(auth_tag_ + " BAD Invalid base64 data in continued response.", b);
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
    return protocolError(auth_tag_ + " " + std::string(kAuthFailed), b);
  }
  Credentials creds;
  creds.user = std::move(login_user_);
  login_user_.clear();
  creds.password = Secret(std::move(*field));
  creds.method = AuthMethod::Login;
  startLogin(std::move(creds), "IMAP AUTHENTICATE without TLS", b);
}

void ImapFrontPhase::startLogin(Credentials creds, std::string_view quirk_detail, Batch& b) {
  state_ = State::LoginPending;
  if (!ctx_.client_tls) b.pre.push_back(QuirkUsed{Quirk::PlaintextAuth, std::string(quirk_detail)});
  b.pre.push_back(UserKnown{creds.user});
  if (!upstream_requested_) {
    upstream_requested_ = true;
    b.tail.push_back(ConnectUpstream{});
  }
  Authenticate auth;
  auth.creds = std::move(creds);
  auth.id_fields = id_fields_;
  b.tail.push_back(std::move(auth));
}

Actions ImapFrontPhase::onLoginResult(const LoginResult& result) {
  Batch b;
  if (state_ != State::LoginPending) {
    b.pre.push_back(LogNote{LogNote::Level::Warn, "login result without a pending login ignored"});
    return finish(b);
  }
  switch (result.kind) {
    case LoginResult::Kind::Ok: {
      b.out += cleanPreface(result.preface);
      b.out += auth_tag_ + " OK " + responseTextOr(result.text, "Logged in") + "\r\n";
      state_ = State::Relay;
      b.tail.push_back(EnterRelay{parser_.takePending(), result.leftover});
      return finish(b);
    }
    case LoginResult::Kind::AuthFailed:
      state_ = State::Idle;
      protocolError(
          auth_tag_ + " NO " + responseTextOr(result.text, "[AUTHENTICATIONFAILED] Authentication failed."),
          b);
      break;
    case LoginResult::Kind::TempFail:
      if (result.text.empty()) {
        b.out += "* BYE [UNAVAILABLE] Backend server unavailable.\r\n";
        close(CloseReason::UpstreamUnavailable, b);
        return finish(b);
      }
      state_ = State::Idle;
      b.out += auth_tag_ + " NO " + responseTextOr(result.text, "[UNAVAILABLE] Temporary failure.") + "\r\n";
      break;
  }
  // The client may have pipelined more commands behind the failed login.
  b.rearm = true;
  pump(b);
  return finish(b);
}

Actions ImapFrontPhase::onTimeout() {
  Batch b;
  switch (state_) {
    case State::Closed:
    case State::Relay:
      return {};
    case State::TlsPending:
      close(CloseReason::Timeout, b);  // no plaintext into a half-done handshake
      break;
    default:
      b.out += imapCloseNotice(CloseReason::Timeout, ctx_.server_name);
      close(CloseReason::Timeout, b);
      break;
  }
  return finish(b);
}

}  // namespace mailshim::proto::imap
