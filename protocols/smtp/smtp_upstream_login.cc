// SmtpUpstreamLogin. See smtp_upstream_login.h. No I/O.
#include "protocols/smtp/smtp_upstream_login.h"

#include "protocols/common/base64.h"
#include "protocols/common/sasl.h"
#include "protocols/common/text.h"
#include "protocols/smtp/smtp_command.h"

namespace mailshim::proto::smtp {
namespace {

constexpr std::string_view kXclientRefused =
    "backend refused XCLIENT: add this mailshim's source address to smtpd_authorized_xclient_hosts in Postfix";

// A HELO/keyword token short enough for one protocol line.
bool printableToken(std::string_view s) { return s.size() <= 255 && isPrintableToken(s); }

std::string describe(const Reply& r) { return logSafe(std::to_string(r.code) + " " + std::string(r.lastText()), 200); }

}  // namespace

SmtpUpstreamLogin::SmtpUpstreamLogin(const SessionContext& ctx, const UpstreamContext& up)
    : ctx_(ctx),
      up_(up),
      helo_name_(printableToken(up.helo_name)       ? up.helo_name
                 : printableToken(ctx.server_name) ? ctx.server_name
                                                    : "localhost"),
      parser_(up.max_line_bytes == 0 ? ReplyParser::kDefaultMaxLineBytes : up.max_line_bytes) {}

Actions SmtpUpstreamLogin::take() {
  Actions out = std::move(acts_);
  acts_.clear();
  return out;
}

std::string SmtpUpstreamLogin::resultText(std::string_view text) {
  std::string out(text.substr(0, kMaxResultText));
  for (char& ch : out) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7f) ch = (c == '\t') ? ' ' : '?';
  }
  return out;
}

void SmtpUpstreamLogin::loginDone(LoginResult::Kind kind, std::string code, std::string text, std::string leftover) {
  awaiting_result_ = false;
  LoginResult r;
  r.kind = kind;
  r.code = std::move(code);
  r.text = std::move(text);
  r.leftover = std::move(leftover);
  acts_.push_back(LoginDone{std::move(r)});
}

void SmtpUpstreamLogin::fatal(std::string why) {
  acts_.push_back(LogNote{LogNote::Level::Warn, std::move(why)});
  state_ = State::Failed;
  auth_.reset();
  parser_.clear();
  if (awaiting_result_) loginDone(LoginResult::Kind::TempFail, "", "");
}

void SmtpUpstreamLogin::sendCommand(std::string line) {
  // One command at a time: anything the backend sent before this command is
  // unsolicited (it cannot be an answer to a command it has not seen).
  if (parser_.hasPending()) {
    wipe(line);
    fatal("backend sent unsolicited data: " + logSafe(parser_.pending(), 120));
    return;
  }
  acts_.push_back(SendUpstream{std::move(line)});
}

void SmtpUpstreamLogin::sendEhlo() {
  state_ = State::Ehlo;
  sendCommand("EHLO " + helo_name_ + "\r\n");
}

bool SmtpUpstreamLogin::hasKeyword(std::string_view kw) const { return keywordParams(kw) != nullptr; }

const std::vector<std::string>* SmtpUpstreamLogin::keywordParams(std::string_view kw) const {
  for (const auto& [k, params] : keywords_)
    if (iequals(k, kw)) return &params;
  return nullptr;
}

Actions SmtpUpstreamLogin::onConnected() {
  if (state_ == State::Idle) {
    state_ = State::Banner;
    // Implicit TLS: the handshake is done; None: the shell vouches for the leg.
    stage_ = up_.tls == UpstreamTls::Starttls ? EhloStage::Initial : EhloStage::AfterTls;
  }
  return take();
}

Actions SmtpUpstreamLogin::onUpstreamData(std::string_view bytes) {
  switch (state_) {
    case State::Idle:
    case State::Done:
    case State::Failed:
      return {};
    case State::TlsHandshake:
      // Response injection: nothing from before the handshake is believed.
      if (!bytes.empty())
        acts_.push_back(LogNote{LogNote::Level::Warn, "discarded " + std::to_string(bytes.size()) +
                                                          " bytes the backend sent during the TLS handshake"});
      break;
    default: {
      parser_.feed(bytes);
      Reply r;
      while (state_ != State::Failed && state_ != State::Done && state_ != State::TlsHandshake) {
        auto st = parser_.next(r);
        if (st == ReplyParser::Status::NeedMore) break;
        if (st == ReplyParser::Status::Error) {
          fatal("backend protocol error: " + std::string(parser_.error()));
          break;
        }
        onReply(r);
      }
    }
  }
  return take();
}

void SmtpUpstreamLogin::onReply(const Reply& r) {
  if (r.code == 421 && state_ != State::Banner) {
    fatal("backend closing the connection: " + describe(r));
    return;
  }
  switch (state_) {
    case State::Banner:
      if (r.code != 220) {
        fatal("backend greeting refused: " + describe(r));
        return;
      }
      sendEhlo();
      return;
    case State::Ehlo:
      onEhloReply(r);
      return;
    case State::Starttls: {
      if (r.code != 220) {
        fatal("backend refused STARTTLS: " + describe(r));
        return;
      }
      size_t injected = parser_.pending().size();
      parser_.clear();
      if (injected > 0)
        acts_.push_back(LogNote{LogNote::Level::Warn,
                                "discarded " + std::to_string(injected) +
                                    " bytes the backend sent after its STARTTLS go-ahead (response injection attempt)"});
      acts_.push_back(StartTlsUpstream{});
      state_ = State::TlsHandshake;
      return;
    }
    case State::Xclient:
      if (r.code == 220) {
        // Postfix starts a new session after XCLIENT: greet it again, with
        // the client's own (normalised) HELO — a new EHLO replaces the HELO=
        // attribute, and Postfix's Received: header and HELO checks must see
        // the client's name, not mailshim's (as nginx mail does).
        stage_ = EhloStage::AfterXclient;
        if (!xclient_helo_.empty()) {
          state_ = State::Ehlo;
          sendCommand("EHLO " + xclient_helo_ + "\r\n");
        } else {
          sendEhlo();
        }
        return;
      }
      acts_.push_back(LogNote{LogNote::Level::Warn, std::string(kXclientRefused) + " (" + describe(r) + ")"});
      state_ = State::Ready;
      startAuth();
      return;
    case State::AuthPlainContinue:
      if (r.code == 334 && auth_) {
        std::string b64 = sasl::encodePlain(auth_->creds);
        std::string line;
        line.reserve(b64.size() + 2);
        line += b64;
        line += "\r\n";
        wipe(b64);
        auth_.reset();
        state_ = State::AuthPlain;
        sendCommand(std::move(line));
        return;
      }
      finishAuth(r);
      return;
    case State::AuthLoginUser:
      if (r.code == 334 && auth_) {
        std::string line = base64Encode(auth_->creds.user) + "\r\n";
        state_ = State::AuthLoginPass;
        sendCommand(std::move(line));
        return;
      }
      finishAuth(r);
      return;
    case State::AuthLoginPass:
      if (r.code == 334 && auth_) {
        std::string b64 = base64Encode(auth_->creds.password.reveal());
        std::string line;
        line.reserve(b64.size() + 2);
        line += b64;
        line += "\r\n";
        wipe(b64);
        auth_.reset();
        state_ = State::AuthLoginFinal;
        sendCommand(std::move(line));
        return;
      }
      finishAuth(r);
      return;
    case State::AuthPlain:
    case State::AuthLoginFinal:
      finishAuth(r);
      return;
    default:
      fatal("unsolicited reply from backend: " + describe(r));
      return;
  }
}

void SmtpUpstreamLogin::onEhloReply(const Reply& r) {
  if (r.code != 250) {
    fatal("backend refused EHLO: " + describe(r));
    return;
  }
  keywords_.clear();
  for (size_t i = 1; i < r.lines.size(); ++i) {
    std::string_view rest = r.lines[i];
    std::string kw = asciiUpper(nextWord(rest));
    std::vector<std::string> params;
    while (!rest.empty()) {
      std::string_view w = nextWord(rest);
      if (!w.empty()) params.push_back(asciiUpper(w));
    }
    if (!kw.empty()) keywords_.emplace_back(std::move(kw), std::move(params));
  }
  if (stage_ == EhloStage::Initial) {
    // Only reached for UpstreamTls::Starttls: credentials need TLS first.
    if (!hasKeyword("STARTTLS")) {
      fatal("backend does not offer STARTTLS; refusing to send credentials in clear");
      return;
    }
    state_ = State::Starttls;
    sendCommand("STARTTLS\r\n");
    return;
  }
  if (stage_ == EhloStage::AfterXclient) xclient_done_ = true;
  state_ = State::Ready;
  advance();
}

Actions SmtpUpstreamLogin::onUpstreamTls() {
  if (state_ == State::TlsHandshake) {
    // Everything learned before TLS is forgotten; only post-TLS keywords count.
    keywords_.clear();
    parser_.clear();
    stage_ = EhloStage::AfterTls;
    sendEhlo();
  }
  return take();
}

Actions SmtpUpstreamLogin::login(Authenticate auth) {
  if (state_ == State::Failed) {
    awaiting_result_ = true;
    loginDone(LoginResult::Kind::TempFail, "", "");
  } else if (state_ == State::Done || awaiting_result_) {
    acts_.push_back(LogNote{LogNote::Level::Warn, "SMTP upstream login: login() while not ready; ignored"});
  } else if (!sasl::validField(auth.creds.user) || !sasl::validField(auth.creds.authzid) ||
             !sasl::validField(auth.creds.password.reveal()) || auth.creds.user.empty()) {
    awaiting_result_ = true;
    loginDone(LoginResult::Kind::AuthFailed, "535", "5.7.8 Error: authentication failed: invalid credentials");
  } else {
    auth_ = std::move(auth);
    awaiting_result_ = true;
    advance();
  }
  return take();
}

void SmtpUpstreamLogin::advance() {
  if (state_ != State::Ready || !auth_) return;
  if (up_.client_address == ClientAddressMode::Xclient && !xclient_done_) {
    xclient_done_ = true;  // one attempt per backend connection
    const auto* allowed = keywordParams("XCLIENT");
    if (!allowed) {
      acts_.push_back(LogNote{LogNote::Level::Warn, std::string(kXclientRefused) + " (XCLIENT not advertised)"});
    } else {
      XclientParams p;
      p.addr = ctx_.client_ip;
      p.port = ctx_.client_port;
      p.esmtp = auth_->esmtp;
      p.helo = auth_->helo;
      auto encoded = xtextEncode(p.helo);
      if (!encoded || encoded->size() > kMaxXclientHelo) {
        if (!p.helo.empty())
          acts_.push_back(LogNote{LogNote::Level::Warn, "XCLIENT: client HELO left out (unsafe or too long): " +
                                                            logSafe(p.helo, 80)});
        p.helo.clear();
      }
      // The EHLO after XCLIENT carries the client's name when it is a plain token.
      xclient_helo_ = (!p.helo.empty() && printableToken(p.helo)) ? p.helo : std::string();
      if (auto line = formatXclient(p, *allowed)) {
        state_ = State::Xclient;
        sendCommand(std::move(*line));
        return;
      }
      acts_.push_back(LogNote{LogNote::Level::Warn, "XCLIENT: no usable attribute to send; continuing without it"});
    }
  }
  startAuth();
}

void SmtpUpstreamLogin::startAuth() {
  if (!auth_) return;
  const auto* mechs = keywordParams("AUTH");
  auto offers = [&](std::string_view m) {
    if (!mechs) return false;
    for (const auto& x : *mechs)
      if (x == m) return true;
    return false;
  };
  if (offers("PLAIN")) {
    std::string b64 = sasl::encodePlain(auth_->creds);
    if (b64.size() + 13 <= kMaxCommandLine) {
      std::string line;
      line.reserve(b64.size() + 13);
      line += "AUTH PLAIN ";
      line += b64;
      line += "\r\n";
      wipe(b64);
      auth_.reset();
      state_ = State::AuthPlain;
      sendCommand(std::move(line));
    } else {
      wipe(b64);
      state_ = State::AuthPlainContinue;
      sendCommand("AUTH PLAIN\r\n");
    }
    return;
  }
  if (offers("LOGIN")) {
    state_ = State::AuthLoginUser;
    sendCommand("AUTH LOGIN\r\n");
    return;
  }
  fatal(mechs ? "backend offers neither AUTH PLAIN nor AUTH LOGIN" : "backend does not advertise AUTH");
}

void SmtpUpstreamLogin::finishAuth(const Reply& r) {
  auth_.reset();
  std::string code = std::to_string(r.code);
  if (r.code == 235) {
    state_ = State::Done;
    std::string leftover(parser_.pending());
    parser_.clear();
    loginDone(LoginResult::Kind::Ok, code, resultText(r.lastText()), std::move(leftover));
    return;
  }
  if (r.code >= 500) {
    state_ = State::Ready;
    loginDone(LoginResult::Kind::AuthFailed, code, resultText(r.lastText()));
    return;
  }
  if (r.code >= 400) {
    state_ = State::Ready;
    loginDone(LoginResult::Kind::TempFail, code, resultText(r.lastText()));
    return;
  }
  fatal("unexpected reply to AUTH: " + describe(r));
}

}  // namespace mailshim::proto::smtp
