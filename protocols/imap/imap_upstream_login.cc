// ImapUpstreamLogin. See imap_upstream_login.h. RFC 9051 sections 6.1-6.2 and
// 7.1, RFC 2971, RFC 4959, RFC 7888; client-quirks.md section 6.B-6.E. No I/O.
#include "protocols/imap/imap_upstream_login.h"

#include <algorithm>
#include <array>

#include "protocols/common/sasl.h"
#include "protocols/common/text.h"

namespace mailshim::proto::imap {
namespace {

constexpr std::string_view kGenericAuthFailed = "[AUTHENTICATIONFAILED] Authentication failed.";

std::string codeName(std::string_view code) {
  std::string_view rest = code;
  return asciiUpper(nextWord(rest));
}

}  // namespace

ImapUpstreamLogin::ImapUpstreamLogin(const SessionContext& ctx, const UpstreamContext& up)
    : ctx_(ctx), up_(up), reader_(up.max_line_bytes), tls_(up.tls == UpstreamTls::Implicit) {}

bool ImapUpstreamLogin::forwardableIdField(std::string_view key) {
  static constexpr std::array<std::string_view, 5> kFields = {"name", "version", "vendor", "os",
                                                              "os-version"};
  for (auto f : kFields)
    if (iequals(key, f)) return true;
  return false;
}

std::string ImapUpstreamLogin::nextTag() { return "m" + std::to_string(++tag_counter_); }

bool ImapUpstreamLogin::hasCap(std::string_view cap) const {
  return std::any_of(caps_.begin(), caps_.end(), [&](const std::string& c) { return c == cap; });
}

Actions ImapUpstreamLogin::onConnected() { return {}; }

void ImapUpstreamLogin::send(Cmd cmd, std::vector<std::string> segments, Actions& acts) {
  state_ = State::Command;
  cmd_ = cmd;
  tag_ = nextTag();
  // A pipelined ID line (sendId) leaves in the same write. `first` may be
  // followed by credentials: no unwiped copies.
  std::string first = std::move(pipelined_id_);
  pipelined_id_.clear();
  appendWiped(first, tag_);
  appendWiped(first, " ");
  appendWiped(first, segments.front());
  wipe(segments.front());
  acts.push_back(SendUpstream{std::move(first)});
  segments.erase(segments.begin());
  for (auto& s : segments_) wipe(s);
  segments_ = std::move(segments);
}

void ImapUpstreamLogin::fail(std::string client_text, std::string log, Actions& acts) {
  state_ = State::Failed;
  reader_.clear();
  pipelined_id_.clear();
  id_tag_.clear();
  for (auto& s : segments_) wipe(s);
  segments_.clear();
  acts.push_back(LogNote{LogNote::Level::Warn, "imap upstream: " + std::move(log)});
  failed_text_ = std::move(client_text);
  if (pending_) loginDone(LoginResult::Kind::TempFail, "NO", std::move(failed_text_), acts);
}

void ImapUpstreamLogin::loginDone(LoginResult::Kind kind, std::string code, std::string text, Actions& acts) {
  LoginResult r;
  r.kind = kind;
  r.code = std::move(code);
  r.text = std::move(text);
  if (kind == LoginResult::Kind::Ok) {
    r.preface = std::move(preface_);
    r.leftover = std::string(reader_.pending());
    reader_.clear();
  }
  preface_.clear();
  failed_text_.clear();  // a failure is reported with its text once
  pending_.reset();      // the Secret wipes itself
  acts.push_back(LoginDone{std::move(r)});
}

Actions ImapUpstreamLogin::onUpstreamData(std::string_view bytes) {
  Actions acts;
  if (state_ == State::Done || state_ == State::Failed) return acts;
  if (state_ == State::TlsHandshake) {
    // Plaintext after the STARTTLS go-ahead: response injection, never read.
    if (!bytes.empty())
      acts.push_back(LogNote{
          LogNote::Level::Warn,
          "imap upstream: discarded " + std::to_string(bytes.size()) + " plaintext bytes after STARTTLS"});
    return acts;
  }
  reader_.feed(bytes);
  while (state_ != State::Done && state_ != State::Failed && state_ != State::TlsHandshake) {
    if (skip_literal_ > 0) {
      std::string skipped = reader_.takeRaw(static_cast<size_t>(std::min<uint64_t>(skip_literal_, 1 << 20)));
      if (skipped.empty()) break;
      skip_literal_ -= skipped.size();
      continue;
    }
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

void ImapUpstreamLogin::onLine(std::string_view line, Actions& acts) {
  if (in_literal_response_) {
    // The rest of an untagged response after a literal: ignored as well.
    in_literal_response_ = false;
    if (auto lit = trailingLiteral(line)) {
      if (*lit > kMaxSkippedLiteral) return fail("", "backend literal too large", acts);
      skip_literal_ = *lit;
      in_literal_response_ = true;
    }
    return;
  }
  if (line.empty()) return;
  auto parsed = parseResponseLine(line);
  if (!parsed) return fail("", "unparsable backend line: " + logSafe(line), acts);
  const ImapResponseLine& r = *parsed;

  if (r.kind == ImapResponseLine::Kind::Untagged) {
    if (auto lit = trailingLiteral(line)) {
      if (*lit > kMaxSkippedLiteral) return fail("", "backend literal too large", acts);
      skip_literal_ = *lit;  // untagged data is never used; skip its literal
      in_literal_response_ = true;
    }
    const std::string word = asciiUpper(r.word);
    if (state_ == State::Greeting) {
      if (word == "PREAUTH")  // client-quirks.md 6.D 21: STARTTLS impossible, never trusted
        return fail("", "backend greeted with PREAUTH; refused", acts);
      if (word == "BYE")
        return fail(trustedLeg() ? responseTextOr(r.rest, "") : "",
                    "backend greeting BYE: " + logSafe(r.rest), acts);
      if (word != "OK") return fail("", "unexpected backend greeting: " + logSafe(line), acts);
      if (istartsWith(r.code, "CAPABILITY ")) {
        caps_ = parseCapabilities(r.code.substr(11));
        caps_known_ = true;
      }
      return afterCapabilities(acts);
    }
    if (word == "BYE")
      return fail(trustedLeg() ? responseTextOr(r.rest, "") : "", "backend BYE: " + logSafe(r.rest), acts);
    if (word == "CAPABILITY" && state_ == State::Command) {
      if (cmd_ == Cmd::Capability) {
        caps_ = parseCapabilities(r.rest);
        caps_known_ = true;
      } else if (cmd_ == Cmd::Login && !in_literal_response_ && responseTextOr(line, "") == line) {
        preface_ += std::string(line) + "\r\n";
      }
    }
    // Anything else untagged (ID reply, EXISTS, ALERT, ...) changes nothing:
    // client-quirks.md 6.E 24-25.
    return;
  }

  if (r.kind == ImapResponseLine::Kind::Continuation) {
    if (state_ == State::Command && !segments_.empty()) {
      acts.push_back(SendUpstream{std::move(segments_.front())});
      segments_.erase(segments_.begin());
      return;
    }
    return fail("", "unexpected continuation request from backend", acts);
  }

  if (!id_tag_.empty() && state_ == State::Command && cmd_ == Cmd::Login) {
    // The pipelined ID's verdict comes first (RFC 9051 section 5.5); an
    // answer to the login before it is not IMAP, and whatever followed it
    // must not reach the client as relay data.
    if (r.tag != id_tag_) return fail("", "backend answered out of order: " + logSafe(line), acts);
    id_tag_.clear();
    if (asciiUpper(r.word) != "OK") idRefused(acts);
    return;
  }
  if (state_ != State::Command || r.tag != tag_)
    return fail("", "unexpected tagged backend line: " + logSafe(line), acts);
  onTagged(r, acts);
}

void ImapUpstreamLogin::onTagged(const ImapResponseLine& r, Actions& acts) {
  const std::string status = asciiUpper(r.word);
  if (status != "OK" && status != "NO" && status != "BAD")
    return fail("", "unexpected backend status " + logSafe(r.word), acts);
  for (auto& s : segments_) wipe(s);
  segments_.clear();
  switch (cmd_) {
    case Cmd::Capability:
      if (status != "OK") return fail("", "backend refused CAPABILITY", acts);
      if (istartsWith(r.code, "CAPABILITY ")) {
        caps_ = parseCapabilities(r.code.substr(11));
        caps_known_ = true;
      }
      if (!caps_known_) caps_.clear();
      caps_known_ = true;
      return afterCapabilities(acts);

    case Cmd::Starttls:
      if (status != "OK") return fail("", "backend refused STARTTLS: " + logSafe(r.rest), acts);
      // Security invariant 1, response side (6.B 9-11): whatever follows the
      // go-ahead in plaintext (CAPABILITY, ALERT, BYE) is dropped unread.
      if (reader_.hasPending())
        acts.push_back(LogNote{LogNote::Level::Warn, "imap upstream: discarded " +
                                                         std::to_string(reader_.pending().size()) +
                                                         " bytes after the STARTTLS go-ahead"});
      reader_.clear();
      skip_literal_ = 0;
      in_literal_response_ = false;
      state_ = State::TlsHandshake;
      acts.push_back(StartTlsUpstream{});
      return;

    case Cmd::Id:
      if (status != "OK") idRefused(acts);
      state_ = State::Ready;
      return sendLogin(acts);

    case Cmd::Login: {
      state_ = status == "OK" ? State::Done : State::Ready;
      if (status == "OK")
        return loginDone(LoginResult::Kind::Ok, "OK", responseTextOr(r.rest, "Logged in"), acts);
      const std::string code = codeName(r.code);
      if (status == "BAD")
        return loginDone(LoginResult::Kind::TempFail, "BAD",
                         responseTextOr(r.rest, "[UNAVAILABLE] Backend rejected the login command."), acts);
      if (code == "REFERRAL") {  // 6.D 23: referrals are never followed or forwarded
        acts.push_back(LogNote{LogNote::Level::Warn, "imap upstream: login referral not followed"});
        return loginDone(LoginResult::Kind::AuthFailed, "NO", std::string(kGenericAuthFailed), acts);
      }
      if (code == "UNAVAILABLE")
        return loginDone(LoginResult::Kind::TempFail, "NO",
                         responseTextOr(r.rest, "[UNAVAILABLE] Temporary failure."), acts);
      return loginDone(LoginResult::Kind::AuthFailed, "NO", responseTextOr(r.rest, kGenericAuthFailed), acts);
    }
  }
}

void ImapUpstreamLogin::idRefused(Actions& acts) {
  acts.push_back(LogNote{LogNote::Level::Warn,
                         "imap upstream: backend refused ID; the client address is not "
                         "forwarded (login_trusted_networks?)"});
}

void ImapUpstreamLogin::afterCapabilities(Actions& acts) {
  if (!caps_known_) return send(Cmd::Capability, {"CAPABILITY\r\n"}, acts);
  if (up_.tls == UpstreamTls::Starttls && !tls_) {
    // 6.C 17: no STARTTLS means no login at all, never a plaintext fallback.
    if (!hasCap("STARTTLS")) return fail("", "backend does not offer STARTTLS", acts);
    return send(Cmd::Starttls, {"STARTTLS\r\n"}, acts);
  }
  state_ = State::Ready;
  maybeLogin(acts);
}

Actions ImapUpstreamLogin::onUpstreamTls() {
  Actions acts;
  if (state_ != State::TlsHandshake) return acts;
  // Security invariant 2: pre-TLS capabilities are forgotten and re-queried.
  tls_ = true;
  caps_.clear();
  caps_known_ = false;
  reader_.clear();
  afterCapabilities(acts);
  return acts;
}

Actions ImapUpstreamLogin::login(Authenticate auth) {
  Actions acts;
  if (state_ == State::Done) return acts;
  pending_ = std::move(auth);
  if (state_ == State::Failed) {
    loginDone(LoginResult::Kind::TempFail, "NO", std::move(failed_text_), acts);
    return acts;
  }
  maybeLogin(acts);
  return acts;
}

void ImapUpstreamLogin::maybeLogin(Actions& acts) {
  if (state_ != State::Ready || !pending_) return;
  if (up_.client_address == ClientAddressMode::ImapId && !id_sent_) return sendId(acts);
  sendLogin(acts);
}

void ImapUpstreamLogin::sendId(Actions& acts) {
  id_sent_ = true;
  if (!hasCap("ID")) {
    acts.push_back(LogNote{LogNote::Level::Warn,
                           "imap upstream: backend does not offer ID; the client address is not forwarded"});
    return sendLogin(acts);
  }
  const bool literal_plus = hasCap("LITERAL+");
  std::vector<std::string> segs{"ID ("};
  bool first = true;
  auto field = [&](std::string_view key, std::string_view value) {
    if (value.empty() || !isLineSafe(value)) return;
    segs.back() += first ? "\"" : " \"";
    segs.back() += key;
    segs.back() += "\" ";
    appendAstring(segs, value, literal_plus);
    first = false;
  };
  field("x-originating-ip", ctx_.client_ip);
  if (ctx_.client_port) field("x-originating-port", std::to_string(ctx_.client_port));
  field("x-connected-ip", ctx_.local_ip);
  if (ctx_.local_port) field("x-connected-port", std::to_string(ctx_.local_port));
  field("x-session-ext-id", ctx_.session_id);
  for (const auto& [key, value] : pending_->id_fields)
    if (forwardableIdField(key)) field(key, value);
  segs.back() += ")\r\n";
  if (segs.size() > 1) return send(Cmd::Id, std::move(segs), acts);  // a synchronizing literal
  // No continuation to wait for: the login command follows in the same write
  // (RFC 9051 section 5.5). The backend executes commands in order, so the
  // address is in place before the credentials are checked, and the login
  // costs one round trip less.
  id_tag_ = nextTag();
  pipelined_id_ = id_tag_ + " " + segs.front();
  sendLogin(acts);
}

void ImapUpstreamLogin::sendLogin(Actions& acts) {
  if (!pending_) {
    state_ = State::Ready;
    return;
  }
  if (up_.tls == UpstreamTls::Starttls && !tls_)  // belt and braces: never in clear
    return fail("", "refusing to log in before TLS", acts);
  const Credentials& creds = pending_->creds;
  if (hasCap("AUTH=PLAIN")) {
    std::string b64 = sasl::encodePlain(creds);
    std::vector<std::string> segs;
    std::string line = hasCap("SASL-IR") ? "AUTHENTICATE PLAIN " : "";
    if (line.empty()) segs.push_back("AUTHENTICATE PLAIN\r\n");
    appendWiped(line, b64);
    appendWiped(line, "\r\n");
    segs.push_back(std::move(line));
    wipe(b64);
    return send(Cmd::Login, std::move(segs), acts);
  }
  if (hasCap("LOGINDISABLED")) return fail("", "backend has LOGINDISABLED and no AUTH=PLAIN", acts);
  const bool literal_plus = hasCap("LITERAL+");
  std::vector<std::string> segs{"LOGIN "};
  // A login name that is not UTF-8 cannot name an account; it is not written
  // raw into a literal (passwords may be legacy 8-bit and are sent as given).
  bool ok = isValidUtf8(creds.user) && appendAstring(segs, creds.user, literal_plus);
  segs.back() += ' ';
  ok = ok && appendAstring(segs, creds.password.reveal(), literal_plus);
  if (!ok) {
    for (auto& s : segs) wipe(s);
    state_ = State::Ready;
    return loginDone(LoginResult::Kind::AuthFailed, "NO", std::string(kGenericAuthFailed), acts);
  }
  appendWiped(segs.back(), "\r\n");
  send(Cmd::Login, std::move(segs), acts);
}

}  // namespace mailshim::proto::imap
