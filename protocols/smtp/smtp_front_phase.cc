// SmtpFrontPhase. See smtp_front_phase.h. No I/O.
#include "protocols/smtp/smtp_front_phase.h"

#include <vector>

#include "protocols/common/sasl.h"
#include "protocols/common/text.h"
#include "protocols/smtp/smtp_command.h"
#include "protocols/smtp/smtp_reply.h"

namespace mailshim::proto::smtp {
namespace {

// Fixed replies (RFC 5321 codes, RFC 3463 enhanced codes, Postfix wording).
constexpr std::string_view kOk = "250 2.0.0 Ok\r\n";
constexpr std::string_view kHelp = "214 2.0.0 See RFC 5321\r\n";
constexpr std::string_view kBye = "221 2.0.0 Bye\r\n";
constexpr std::string_view kTlsGoAhead = "220 2.0.0 Ready to start TLS\r\n";
constexpr std::string_view kTlsActive = "554 5.5.1 Error: TLS already active\r\n";
constexpr std::string_view kNotImplemented = "502 5.5.1 Error: command not implemented\r\n";
constexpr std::string_view kStarttlsSyntax = "501 5.5.4 Syntax: STARTTLS\r\n";
constexpr std::string_view kEhloSyntax = "501 5.5.4 Syntax: EHLO hostname\r\n";
constexpr std::string_view kHeloSyntax = "501 5.5.4 Syntax: HELO hostname\r\n";
constexpr std::string_view kHeloFirst = "503 5.5.1 Error: send HELO/EHLO first\r\n";
constexpr std::string_view kEhloFirst =
    "503 5.5.1 Error: send EHLO first (STARTTLS and AUTH are ESMTP extensions)\r\n";
constexpr std::string_view kAlreadyAuth = "503 5.5.1 Error: already authenticated\r\n";
constexpr std::string_view kMustStarttls = "530 5.7.0 Must issue a STARTTLS command first\r\n";
constexpr std::string_view kAuthRequired = "530 5.7.0 Authentication required\r\n";
constexpr std::string_view kAuthSyntax = "501 5.5.4 Syntax: AUTH mechanism\r\n";
constexpr std::string_view kUnsupportedMech = "504 5.5.4 Unsupported authentication mechanism\r\n";
constexpr std::string_view kAuthAborted = "501 5.7.0 Authentication aborted\r\n";
constexpr std::string_view kCannotDecode = "501 5.5.2 Cannot decode response\r\n";
constexpr std::string_view kAuthOk = "235 2.7.0 Authentication successful\r\n";
constexpr std::string_view kUnknownCommand = "502 5.5.2 Error: command not recognized\r\n";
constexpr std::string_view kLineTooLong = "500 5.5.0 Error: line too long\r\n";
constexpr std::string_view kBadSyntax = "500 5.5.2 Error: bad syntax\r\n";
constexpr std::string_view kAuthFailedDefault = "5.7.8 Error: authentication failed";
constexpr std::string_view kTempFailDefault = "4.7.0 Temporary authentication failure";


// Postfix printable(): everything outside visible ASCII becomes '?'.
std::string printableCopy(std::string_view s) {
  std::string out(s);
  for (char& ch : out) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x21 || c > 0x7e) ch = '?';
  }
  return out;
}

std::string_view firstWord(std::string_view s) {
  size_t end = 0;
  while (end < s.size() && s[end] != ' ' && s[end] != '\t') ++end;
  return s.substr(0, end);
}

}  // namespace

SmtpFrontPhase::SmtpFrontPhase(const SessionContext& ctx)
    : ctx_(ctx),
      name_(isPrintableToken(ctx.server_name) ? ctx.server_name : "localhost"),
      reader_(ctx.max_line_bytes),
      client_tls_(ctx.client_tls) {}

bool SmtpFrontPhase::reading() const {
  return state_ == State::Command || state_ == State::AuthPlainResponse || state_ == State::AuthLoginUser ||
         state_ == State::AuthLoginPass;
}

void SmtpFrontPhase::replyLine(int code, std::string_view text) {
  if (auto r = formatReply(code, text)) reply(*r);
}

void SmtpFrontPhase::flush() {
  if (down_.empty()) return;
  acts_.push_back(SendDownstream{std::move(down_)});
  down_.clear();
}

void SmtpFrontPhase::close(CloseReason reason) {
  flush();
  push(Close{reason});
  state_ = State::Closed;
  reader_.clear();
  wipe(login_user_);
}

bool SmtpFrontPhase::countError() {
  ++errors_;
  if (ctx_.max_errors != 0 && errors_ >= ctx_.max_errors) {
    replyLine(421, "4.7.0 " + name_ + " Error: too many errors");
    close(CloseReason::TooManyErrors);
    return true;
  }
  return false;
}

Actions SmtpFrontPhase::finish() {
  flush();
  if (rearm_ && state_ != State::Closed && state_ != State::Relay) push(ArmTimer{ctx_.preauth_timeout_ms});
  rearm_ = false;
  Actions out = std::move(acts_);
  acts_.clear();
  return out;
}

Actions SmtpFrontPhase::start() {
  replyLine(220, name_ + " ESMTP");
  rearm_ = true;
  return finish();
}

Actions SmtpFrontPhase::onDownstreamData(std::string_view bytes) {
  switch (state_) {
    case State::Closed:
    case State::Relay:
      return {};
    case State::TlsHandshake:
      // Nothing received before the handshake completes is ever processed.
      if (!bytes.empty())
        push(LogNote{LogNote::Level::Warn, "discarded " + std::to_string(bytes.size()) +
                                               " bytes received before the TLS handshake completed"});
      return finish();
    case State::LoginPending:
      reader_.feed(bytes);
      if (reader_.pending().size() > kMaxPipelinedBytes) {
        push(LogNote{LogNote::Level::Warn, "client pipelined more than " + std::to_string(kMaxPipelinedBytes) +
                                               " bytes while its login was pending"});
        replyLine(421, "4.7.0 " + name_ + " Error: too much pipelined input");
        close(CloseReason::LineTooLong);
      }
      return finish();
    default:
      break;
  }
  reader_.feed(bytes);
  processInput();
  return finish();
}

void SmtpFrontPhase::processInput() {
  while (reading()) {
    std::string_view line;
    auto st = reader_.next(line);
    if (st == LineReader::Status::NeedMore) break;
    rearm_ = true;
    if (st == LineReader::Status::TooLong) {
      if (state_ != State::Command) abortAuth();
      reply(kLineTooLong);
      countError();
      continue;
    }
    if (state_ == State::Command) {
      handleCommand(line);
    } else {
      handleAuthResponse(line);
    }
  }
}

void SmtpFrontPhase::handleCommand(std::string_view line) {
  if (line.empty() || line.find('\0') != std::string_view::npos || line.find('\r') != std::string_view::npos) {
    reply(kBadSyntax);
    countError();
    return;
  }
  Command cmd = parseCommand(line);
  const bool may_auth = client_tls_ || ctx_.quirks.has(Quirk::PlaintextAuth);
  switch (cmd.verb) {
    case Verb::Ehlo:
      handleHelo(true, cmd.args);
      return;
    case Verb::Helo:
      handleHelo(false, cmd.args);
      return;
    case Verb::Starttls:
      handleStarttls(cmd.args);
      return;
    case Verb::Auth:
      handleAuth(cmd.args);
      return;
    case Verb::Mail:
      if (!may_auth && ctx_.retired_quirks.has(Quirk::PlaintextAuth)) {
        // The client would have needed plaintext AUTH: the admin's words.
        push(QuirkUsed{Quirk::PlaintextAuth, "retired: MAIL without TLS and AUTH refused"});
        retiredReply(530, "5.7.0", kMustStarttls);
        countError();
        return;
      }
      reply(may_auth ? kAuthRequired : kMustStarttls);
      countError();
      return;
    case Verb::Rcpt:
    case Verb::Data:
    case Verb::Bdat:
    case Verb::Vrfy:
    case Verb::Expn:
    case Verb::Etrn:
      reply(may_auth ? kAuthRequired : kMustStarttls);
      countError();
      return;
    case Verb::Noop:
    case Verb::Rset:
      reply(kOk);
      return;
    case Verb::Help:
      reply(kHelp);
      return;
    case Verb::Quit:
      reply(kBye);
      close(CloseReason::ClientQuit);
      return;
    case Verb::Xclient:
    case Verb::Xforward:
    case Verb::Unknown:
      reply(kUnknownCommand);
      countError();
      return;
  }
}

void SmtpFrontPhase::handleHelo(bool esmtp, std::string_view args) {
  std::string_view arg = firstWord(args);
  if (arg.empty()) {
    reply(esmtp ? kEhloSyntax : kHeloSyntax);
    countError();
    return;
  }
  // RFC 5321 section 4.1.4: EHLO/HELO starts over; no transaction to reset here.
  std::string value = printableCopy(arg);
  helo_seen_ = true;
  esmtp_ = esmtp;
  helo_for_backend_ = value;
  push(ClientInfo{"helo", value});
  const bool odd_helo = !isFqdn(value) && !isAddressLiteral(value);
  if (odd_helo && !ctx_.quirks.has(Quirk::SmtpHeloNormalize) && ctx_.retired_quirks.has(Quirk::SmtpHeloNormalize))
    push(QuirkUsed{Quirk::SmtpHeloNormalize, "retired: helo=" + logSafe(value, 100) + " passed unchanged"});
  if (ctx_.quirks.has(Quirk::SmtpHeloNormalize) && odd_helo) {
    if (auto literal = addressLiteralFor(ctx_.client_ip)) {
      push(QuirkUsed{Quirk::SmtpHeloNormalize, "helo=" + logSafe(value, 100) + " -> " + *literal});
      helo_for_backend_ = std::move(*literal);
    } else {
      push(LogNote{LogNote::Level::Warn,
                   "smtp.helo_normalize: client address " + logSafe(ctx_.client_ip, 60) + " is not an IP address"});
    }
  }
  if (!esmtp) {
    replyLine(250, name_);
    return;
  }
  std::vector<std::string> lines;
  lines.push_back(name_);
  lines.emplace_back("PIPELINING");
  if (ctx_.max_message_bytes != 0) lines.push_back("SIZE " + std::to_string(ctx_.max_message_bytes));
  if (!client_tls_ && ctx_.starttls_available) lines.emplace_back("STARTTLS");
  if (client_tls_ || ctx_.quirks.has(Quirk::PlaintextAuth)) {
    lines.emplace_back("AUTH PLAIN LOGIN");
    if (ctx_.quirks.has(Quirk::SmtpAuthEquals)) {
      // Postfix broken_sasl_auth_clients: the pre-RFC 2554 form right after.
      lines.emplace_back("AUTH=PLAIN LOGIN");
      push(QuirkUsed{Quirk::SmtpAuthEquals, "EHLO lists AUTH=PLAIN LOGIN"});
    } else if (ctx_.retired_quirks.has(Quirk::SmtpAuthEquals)) {
      push(QuirkUsed{Quirk::SmtpAuthEquals, "retired: AUTH=PLAIN LOGIN not listed"});
    }
  }
  lines.emplace_back("ENHANCEDSTATUSCODES");
  lines.emplace_back("8BITMIME");
  lines.emplace_back("DSN");
  if (auto r = formatMultiline(250, lines)) reply(*r);
}

void SmtpFrontPhase::handleStarttls(std::string_view args) {
  if (client_tls_) {
    reply(kTlsActive);
    countError();
    return;
  }
  if (!ctx_.starttls_available) {
    reply(kNotImplemented);
    countError();
    return;
  }
  if (!args.empty()) {
    reply(kStarttlsSyntax);
    countError();
    return;
  }
  if (heloOnly() && !admitAfterHelo("STARTTLS")) return;
  reply(kTlsGoAhead);
  flush();
  push(StartTlsDownstream{});
  // Security invariant 1 (CVE-2011-0411 class): nothing the client sent after
  // the STARTTLS line is ever executed.
  size_t discarded = reader_.pending().size();
  reader_.clear();
  if (discarded > 0)
    push(LogNote{LogNote::Level::Warn,
                 "discarded " + std::to_string(discarded) + " bytes pipelined after STARTTLS (command injection attempt)"});
  state_ = State::TlsHandshake;
}

void SmtpFrontPhase::handleAuth(std::string_view args) {
  if (!helo_seen_) {
    reply(kHeloFirst);
    countError();
    return;
  }
  if (authenticated_) {
    reply(kAlreadyAuth);
    countError();
    return;
  }
  if (heloOnly() && !admitAfterHelo("AUTH")) return;
  if (!client_tls_ && !ctx_.quirks.has(Quirk::PlaintextAuth)) {
    // Security invariant 5: credentials are never collected, let alone forwarded.
    if (ctx_.retired_quirks.has(Quirk::PlaintextAuth)) {
      push(QuirkUsed{Quirk::PlaintextAuth, "retired: AUTH without TLS refused"});
      retiredReply(530, "5.7.0", kMustStarttls);
    } else {
      reply(kMustStarttls);
    }
    countError();
    return;
  }
  if (heloOnly()) push(QuirkUsed{Quirk::SmtpHeloOnly, "AUTH after HELO"});
  std::string_view rest = args;
  std::string_view mech = firstWord(rest);
  rest = rest.substr(mech.size());
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  std::string_view initial = firstWord(rest);
  if (mech.empty() || initial.size() != rest.size()) {
    reply(kAuthSyntax);
    countError();
    return;
  }
  auto m = sasl::mechanismFromName(mech);
  if (!m) {
    reply(kUnsupportedMech);
    countError();
    return;
  }
  const bool has_ir = !initial.empty();
  if (initial == "=") initial = {};  // RFC 4954 section 4: "=" is an empty initial response
  if (*m == sasl::Mechanism::Plain) {
    if (has_ir) {
      finishPlain(initial);
    } else {
      reply("334 \r\n");
      state_ = State::AuthPlainResponse;
    }
    return;
  }
  if (!has_ir) {
    reply("334 ");
    reply(sasl::kLoginUserChallenge);
    reply("\r\n");
    state_ = State::AuthLoginUser;
    return;
  }
  // [MS-XLOGIN]: an initial response to AUTH LOGIN is the user name.
  auto user = sasl::decodeLoginField(initial);
  if (!user || user->empty()) {
    reply(kCannotDecode);
    countError();
    return;
  }
  login_user_ = std::move(*user);
  reply("334 ");
  reply(sasl::kLoginPassChallenge);
  reply("\r\n");
  state_ = State::AuthLoginPass;
}

bool SmtpFrontPhase::admitAfterHelo(std::string_view what) {
  if (ctx_.quirks.has(Quirk::SmtpHeloOnly)) {
    if (what == "STARTTLS") push(QuirkUsed{Quirk::SmtpHeloOnly, "STARTTLS after HELO"});
    return true;  // AUTH reports its use once it passes the TLS check
  }
  if (ctx_.retired_quirks.has(Quirk::SmtpHeloOnly)) {
    push(QuirkUsed{Quirk::SmtpHeloOnly, "retired: " + std::string(what) + " after HELO refused"});
    retiredReply(503, "5.5.1", kEhloFirst);
  } else {
    reply(kEhloFirst);
  }
  countError();
  return false;
}

void SmtpFrontPhase::retiredReply(int code, std::string_view enhanced, std::string_view standard) {
  const std::string& msg = ctx_.retired_message;
  if (!msg.empty() && isLineSafe(msg)) {
    if (auto r = formatReply(code, std::string(enhanced) + " " + msg)) {
      reply(*r);
      return;
    }
  }
  reply(standard);
}

void SmtpFrontPhase::abortAuth() {
  wipe(login_user_);
  state_ = State::Command;
}

void SmtpFrontPhase::handleAuthResponse(std::string_view line) {
  if (line == "*") {
    abortAuth();
    reply(kAuthAborted);
    countError();
    return;
  }
  switch (state_) {
    case State::AuthPlainResponse:
      finishPlain(line);
      return;
    case State::AuthLoginUser: {
      auto user = sasl::decodeLoginField(line);
      if (!user || user->empty()) {
        abortAuth();
        reply(kCannotDecode);
        countError();
        return;
      }
      login_user_ = std::move(*user);
      reply("334 ");
      reply(sasl::kLoginPassChallenge);
      reply("\r\n");
      state_ = State::AuthLoginPass;
      return;
    }
    case State::AuthLoginPass: {
      auto pass = sasl::decodeLoginField(line);
      if (!pass) {
        abortAuth();
        reply(kCannotDecode);
        countError();
        return;
      }
      Credentials creds;
      creds.user = std::move(login_user_);
      wipe(login_user_);
      creds.password = Secret(std::move(*pass));
      wipe(*pass);
      creds.method = AuthMethod::Login;
      submit(std::move(creds));
      return;
    }
    default:
      return;
  }
}

void SmtpFrontPhase::finishPlain(std::string_view b64) {
  auto creds = sasl::decodePlain(b64);
  if (!creds) {
    abortAuth();
    reply(kCannotDecode);
    countError();
    return;
  }
  submit(std::move(*creds));
}

void SmtpFrontPhase::submit(Credentials creds) {
  if (!client_tls_)
    push(QuirkUsed{Quirk::PlaintextAuth,
                   std::string("AUTH ") + (creds.method == AuthMethod::Login ? "LOGIN" : "PLAIN") + " without TLS"});
  push(UserKnown{creds.user});
  Authenticate auth;
  auth.creds = std::move(creds);
  auth.helo = helo_for_backend_;
  // After HELO only smtp.helo_only gets here, and it makes the session ESMTP
  // toward the backend (XCLIENT PROTO=ESMTP), as its AUTH requires.
  auth.esmtp = esmtp_ || ctx_.quirks.has(Quirk::SmtpHeloOnly);
  push(std::move(auth));
  state_ = State::LoginPending;
}

Actions SmtpFrontPhase::onDownstreamTls() {
  if (state_ != State::TlsHandshake) return {};
  // Security invariant 2: forget everything learned before TLS.
  client_tls_ = true;
  helo_seen_ = false;
  esmtp_ = true;
  helo_for_backend_.clear();
  wipe(login_user_);
  reader_.clear();
  state_ = State::Command;
  rearm_ = true;
  return finish();
}

Actions SmtpFrontPhase::onLoginResult(const LoginResult& result) {
  if (state_ != State::LoginPending) return {};
  switch (result.kind) {
    case LoginResult::Kind::Ok: {
      authenticated_ = true;
      reply(kAuthOk);
      flush();
      EnterRelay relay;
      relay.to_upstream = std::string(reader_.pending());
      relay.to_downstream = result.leftover;
      reader_.clear();
      push(std::move(relay));
      state_ = State::Relay;
      return finish();
    }
    case LoginResult::Kind::AuthFailed:
    case LoginResult::Kind::TempFail: {
      const bool failed = result.kind == LoginResult::Kind::AuthFailed;
      if (!failed && result.code.empty()) {
        replyLine(421, "4.3.2 " + name_ + " Service not available, closing transmission channel");
        close(CloseReason::UpstreamUnavailable);
        return finish();
      }
      auto code = parseReplyCode(result.code);
      if (!code || *code < 400) code = failed ? 535 : 454;
      std::string text = result.text;
      size_t e = enhancedCodeLength(text);
      if (text.empty() || !isLineSafe(text)) {
        text = std::string(*code >= 500 ? kAuthFailedDefault : kTempFailDefault);
      } else if (e == 0 || text[0] != static_cast<char>('0' + *code / 100)) {
        text = (*code >= 500 ? (*code == 535 ? "5.7.8 " : "5.7.0 ") : "4.7.0 ") + text;
      }
      replyLine(*code, text);
      state_ = State::Command;
      rearm_ = true;
      if (failed && countError()) return finish();
      processInput();
      return finish();
    }
  }
  return finish();
}

Actions SmtpFrontPhase::onTimeout() {
  if (state_ == State::Closed || state_ == State::Relay) return {};
  // Mid-handshake nothing may be written: the 220 go-ahead was the last
  // plaintext byte and no TLS record can carry a reply yet.
  if (state_ != State::TlsHandshake) replyLine(421, "4.4.2 " + name_ + " Error: timeout exceeded");
  close(CloseReason::Timeout);
  return finish();
}

}  // namespace mailshim::proto::smtp
