// Session: the network shell around the pure phases. See session.h.
#include "proxy/session.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "protocols/common/fingerprint.h"
#include "protocols/common/proxy_protocol.h"
#include "protocols/common/secret.h"
#include "protocols/common/text.h"
#include "protocols/protocol_registry.h"
#include "proxy/client_limits.h"
#include "proxy/log.h"
#include "proxy/net.h"
#include "proxy/worker.h"
#include "proxy/retirement_store.h"
#include "proxy/upstream_health.h"
#include "proxy/stats.h"
#include "proxy/tls_read_ahead.h"
#include "proxy/write_through.h"

namespace mailshim::proxy {
namespace {

constexpr uint32_t kFlushTimeoutMs = 5000;  // how long a closing session waits for its last bytes to leave
constexpr uint32_t kFlushPollMs = 10;
constexpr uint32_t kHalfCloseLingerMs = 5000;  // after a client's half-close in the relay

void setNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

std::string drain(bufferevent* bev) {
  evbuffer* in = bufferevent_get_input(bev);
  size_t n = evbuffer_get_length(in);
  std::string out(n, '\0');
  if (n) evbuffer_remove(in, out.data(), n);
  return out;
}

// STARTTLS: once nothing is buffered either way (the go-ahead written out
// now, no client bytes read ahead), the plain socket bufferevent gives way to
// an OpenSSL socket bufferevent on the same fd instead of carrying a filter
// bufferevent on top of it for the rest of the connection: one bufferevent
// and two evbuffers instead of two and four, about 7 KB less per idle
// connection. Returns nullptr (and changes nothing but what was flushed)
// when that is not possible; the caller stacks a filter then.
bufferevent* replaceWithTlsSocket(bufferevent* plain, SSL* ssl) {
  evutil_socket_t fd = bufferevent_getfd(plain);
  if (fd < 0 || bufferevent_get_underlying(plain) || evbuffer_get_length(bufferevent_get_input(plain)) != 0)
    return nullptr;
  evbuffer* out = bufferevent_get_output(plain);
  evbuffer_unfreeze(out, 1);  // a socket bufferevent drains its output only from its own callback
  bool flushed = true;
  while (flushed && evbuffer_get_length(out) > 0) flushed = evbuffer_write(out, fd) > 0;
  evbuffer_freeze(out, 1);
  if (!flushed) return nullptr;  // would block: the filter keeps the order
  bufferevent* tls = newTlsSocketBufferevent(bufferevent_get_base(plain), fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
  if (!tls) return nullptr;
  bufferevent_setcb(plain, nullptr, nullptr, nullptr, nullptr);
  bufferevent_setfd(plain, -1);  // the fd now belongs to `tls`
  bufferevent_free(plain);
  return tls;
}

std::string sslErrorText(bufferevent* bev) {
  std::string out;
  unsigned long e;
  char buf[256];
  while ((e = bufferevent_get_openssl_error(bev)) != 0) {
    // libevent also queues its SSL_get_error() code here (lib 0): not a reason.
    if (ERR_GET_LIB(e) == 0) continue;
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  if (SSL* ssl = bufferevent_openssl_get_ssl(bev)) {
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      if (!out.empty()) out += "; ";
      out += std::string("certificate: ") + X509_verify_cert_error_string(verify);
      if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        const char* expected = X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0);
        if (expected) out += std::string(" (expected '") + expected + "')";
      }
    }
  }
  if (out.empty()) {
    int err = EVUTIL_SOCKET_ERROR();
    out = err ? std::strerror(err) : "connection closed during handshake";
  }
  return out;
}

// Frees a backend bufferevent. A TLS leg that completed its handshake is
// marked as shut down first: OpenSSL otherwise treats the session as broken
// and refuses to resume it, and every client session would pay a full
// handshake toward the backend.
void freeUpstream(bufferevent*& bev, bool tls_up) {
  if (!bev) return;
  if (tls_up) {
    if (SSL* ssl = bufferevent_openssl_get_ssl(bev)) SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  }
  bufferevent_free(bev);
  bev = nullptr;
}

spdlog::level::level_enum levelOf(proto::LogNote::Level l) {
  switch (l) {
    case proto::LogNote::Level::Debug: return spdlog::level::debug;
    case proto::LogNote::Level::Info: return spdlog::level::info;
    case proto::LogNote::Level::Warn: return spdlog::level::warn;
  }
  return spdlog::level::info;
}

}  // namespace

Session::Session(Worker& server, conf::ConfigConstSharedPtr cfg, tls::TlsContextsConstSharedPtr tls,
                 const conf::Listener& listener, int fd, const sockaddr* peer)
    : server_(server), cfg_(std::move(cfg)), tls_(std::move(tls)), listener_(listener) {
  started_ = last_activity_ = std::chrono::steady_clock::now();
  ctx_.session_id = server_.nextSessionId();
  ctx_.server_name = cfg_->server.name;
  sockaddrToText(peer, ctx_.client_ip, ctx_.client_port);
  sockaddr_storage local{};
  socklen_t llen = sizeof local;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) == 0)
    sockaddrToText(reinterpret_cast<sockaddr*>(&local), ctx_.local_ip, ctx_.local_port);
  ctx_.client_tls = listener_.tls == conf::ListenerTls::Implicit;
  ctx_.starttls_available = listener_.tls != conf::ListenerTls::Implicit;
  today_ = conf::Date::today();
  if (auto addr = conf::IpAddress::parse(ctx_.client_ip)) address_ = *addr;
  for (const auto& net : listener_.trusted_proxies) via_proxy_ = via_proxy_ || net.contains(address_);
  classify();
  fp_.protocol = std::string(proto::protocolName(listener_.protocol));
  ctx_.max_line_bytes = cfg_->limits.max_line_bytes;
  ctx_.max_errors = cfg_->limits.max_errors;
  ctx_.preauth_timeout_ms = cfg_->limits.preauth_timeout_ms;
  ctx_.max_message_bytes = cfg_->limits.max_message_bytes;


  event_base* base = server_.base();
  setNoDelay(fd);
  if (via_proxy_) {
    // A trusted load balancer: its PROXY header comes first, in plaintext,
    // even on implicit-TLS listeners; TLS is stacked once it has been read.
    down_ = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    state_ = State::ProxyHeader;
  } else if (ctx_.client_tls) {
    SSL* ssl = tls_->newServerSsl(profile_, &hello_);
    down_ = newTlsSocketBufferevent(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    bufferevent_openssl_set_allow_dirty_shutdown(down_, 1);
    state_ = State::TlsHandshake;
  } else {
    down_ = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (listener_.tls == conf::ListenerTls::Auto) state_ = State::Sniffing;
  }
  bufferevent_setcb(down_, downReadCb, downWriteCb, downEventCb, this);
  timer_ = evtimer_new(base, timerCb, this);
  up_timer_ = evtimer_new(base, upTimerCb, this);
  destroy_ev_ = event_new(base, -1, 0, destroyCb, this);
  login_deadline_ = evtimer_new(base, loginDeadlineCb, this);
  auth_delay_ = evtimer_new(base, authDelayCb, this);
  preauth_held_ = server_.clientLimits().enterPreauth(cfg_->limits.max_preauth_sessions);
  if (!via_proxy_) takeAddressSlot();  // behind a load balancer: once the PROXY header named the client
  stats().sessions_accepted++;
  stats().sessions_active++;
  stats().listener_sessions.add({listener_.name});
  stats().sessions.add({listener_.name, stateName(state_)});
}

std::string_view Session::stateName(State s) {
  switch (s) {
    case State::ProxyHeader: return "proxy_header";
    case State::Sniffing: return "sniffing";
    case State::TlsHandshake: return "tls_handshake";
    case State::Front: return "preauth";
    case State::Login: return "login";
    case State::Relay: return "relay";
    case State::Closing: return "closing";
  }
  return "?";
}

SessionInfo Session::info() const {
  SessionInfo i;
  i.id = ctx_.session_id;
  i.listener = listener_.name;
  i.protocol = std::string(proto::protocolName(listener_.protocol));
  i.state = std::string(stateName(state_));
  i.client_ip = ctx_.client_ip;
  i.user = user_;
  i.rule = ctx_.rule_name;
  i.worker = server_.index();
  i.age_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_).count());
  i.bytes_in = bytes_from_client_;
  i.bytes_out = bytes_from_backend_;
  return i;
}

void Session::setState(State s) {
  if (s == state_) return;
  stats().sessions.add({listener_.name, stateName(state_)}, -1);
  stats().sessions.add({listener_.name, stateName(s)}, 1);
  state_ = s;
}

void Session::classify() {
  applyDecision(cfg_->decide(conf::RuleQuery{address_, listener_.name, std::nullopt, std::nullopt}, today_));
  profile_ = decision_.legacy_tls ? tls::Profile::Legacy : tls::Profile::Modern;
  limits_ = cfg_->limitsFor(decision_.rule);
}

void Session::takeAddressSlot() {
  // Counted from accept, so clients that never finish a TLS handshake or a
  // line (slowloris) hold their slot too. Over the limit the client still
  // gets a clear reply (at the greeting, after TLS where TLS comes first).
  slot_held_ = server_.clientLimits().acquire(address_, limits_.max_sessions_per_address);
  over_limit_ = !slot_held_;
}

void Session::applyDecision(const conf::RuleDecision& d) {
  decision_ = d;
  ctx_.quirks = d.quirks;
  ctx_.retired_quirks = d.retired;
  ctx_.retired_message = d.message;
  ctx_.rule_name = d.rule ? d.rule->name : "";
}

std::string Session::currentFingerprint() {
  if (hello_.seen) fp_.tls_max_offered = tls::versionName(hello_.max_version);
  return proto::fingerprint(fp_);
}

void Session::noteQuirk(proto::Quirk q, const std::string& detail) {
  bool retired = detail.rfind("retired:", 0) == 0;
  bool overdue = retired || decision_.overdue;
  auto& use = quirk_uses_[q];
  use.first++;
  if (overdue) use.second++;
  stats().quirk_uses[static_cast<size_t>(q)]++;
  std::string_view rule = ctx_.rule_name.empty() ? std::string_view("-") : std::string_view(ctx_.rule_name);
  stats().quirk_rule_uses.add({proto::quirkId(q), rule});
  if (overdue) {
    stats().quirk_overdue_uses++;
    stats().quirk_rule_overdue_uses.add({proto::quirkId(q), rule});
  }
  spdlog::info("quirk{}{}{}{}{}", tag(), kv("quirk", proto::quirkId(q)),
               kv("rule", ctx_.rule_name.empty() ? "-" : ctx_.rule_name), kv("detail", detail),
               overdue ? kv("overdue", decision_.rule && decision_.rule->sunset ? decision_.rule->sunset->toString()
                                                                                 : std::string("yes"))
                       : std::string());
}

Session::~Session() {
  freeUpstream(up_, up_tls_);
  if (down_) bufferevent_free(down_);
  if (timer_) event_free(timer_);
  if (up_timer_) event_free(up_timer_);
  if (destroy_ev_) event_free(destroy_ev_);
  if (login_deadline_) event_free(login_deadline_);
  if (auth_delay_) event_free(auth_delay_);
  if (slot_held_) server_.clientLimits().release(address_);
  if (preauth_held_) server_.clientLimits().leavePreauth();
  stats().sessions_active--;
  stats().sessions.add({listener_.name, stateName(state_)}, -1);
  server_.sessionClosed(this);
}

std::string Session::tag() const {
  return kv("session", ctx_.session_id) + kv("rip", ctx_.client_ip) +
         (user_.empty() ? std::string() : kv("user", user_));
}

void Session::logConnect() {
  if (!spdlog::should_log(spdlog::level::info)) return;  // skip building the arguments
  spdlog::info("connect{}{}{}{}{}{}{}{}{}{}", kv("session", ctx_.session_id), kv("listener", listener_.name),
               kv("proto", proto::protocolName(listener_.protocol)), kv("rip", ctx_.client_ip),
               kv("rport", ctx_.client_port), kv("lip", ctx_.local_ip), kv("lport", ctx_.local_port),
               kv("rule", ctx_.rule_name.empty() ? "-" : ctx_.rule_name), kv("quirks", ctx_.quirks.toString()),
               via_proxy_ ? kv("proxy", proxy_ip_) : std::string());
}

void Session::start() {
  if (!cfg_->findUpstream(listener_.upstream) && !cfg_->findPool(listener_.upstream)) {
    spdlog::error("internal{} no upstream for listener {}", tag(), listener_.name);
    close(proto::CloseReason::Internal);
    return;
  }
  if (!preauth_held_) {
    // Overload (max_preauth_sessions): refuse before any TLS or parsing work,
    // with one plaintext line where the protocol starts in plaintext.
    stats().sessions_refused_busy++;
    stats().refusals.add({listener_.name, "server_busy"});
    spdlog::warn("refused{}{}{}{}", tag(), kv("listener", listener_.name), kv("reason", "server_busy"),
                 kv("limit", cfg_->limits.max_preauth_sessions));
    if (!ctx_.client_tls && !via_proxy_) {
      std::string notice = proto::closeNotice(listener_.protocol, proto::CloseReason::ServerBusy, ctx_.server_name);
      bufferevent_write(down_, notice.data(), notice.size());
    }
    bufferevent_enable(down_, EV_WRITE);
    close(proto::CloseReason::ServerBusy);
    return;
  }
  bufferevent_enable(down_, EV_READ);  // EV_WRITE when something is queued (write_through.h)
  timeval deadline{static_cast<time_t>(limits_.login_timeout_ms / 1000),
                   static_cast<suseconds_t>((limits_.login_timeout_ms % 1000) * 1000)};
  evtimer_add(login_deadline_, &deadline);
  if (state_ == State::ProxyHeader) {
    proxy_ip_ = ctx_.client_ip;
    armTimer(listener_.proxy_header_timeout_ms);
    return;
  }
  logConnect();
  beginClient();
}

void Session::onProxyHeader(bool timed_out) {
  evbuffer* in = bufferevent_get_input(down_);
  std::string error;
  if (timed_out) {
    error = "no PROXY header within " + std::to_string(listener_.proxy_header_timeout_ms) + " ms";
  } else {
    size_t n = evbuffer_get_length(in);
    size_t want = std::min<size_t>(n, proto::ProxyHeaderDecoder::kMaxV2Bytes);
    std::string head(want, '\0');
    evbuffer_copyout(in, head.data(), want);
    size_t consumed = 0;
    proto::ProxyAddresses a;
    switch (proto::ProxyHeaderDecoder().decode(head, consumed, a, error)) {
      case proto::ProxyHeaderDecoder::Status::NeedMore:
        return;  // wait for more (the timer bounds it)
      case proto::ProxyHeaderDecoder::Status::Error:
        break;
      case proto::ProxyHeaderDecoder::Status::Done:
        evbuffer_drain(in, consumed);
        evtimer_del(timer_);
        if (!a.local) {
          ctx_.client_ip = a.src_ip;
          ctx_.client_port = a.src_port;
          ctx_.local_ip = a.dst_ip;
          ctx_.local_port = a.dst_port;
          if (auto addr = conf::IpAddress::parse(a.src_ip)) {
            address_ = *addr;
            ctx_.client_ip = addr->toString();  // ::ffff:a.b.c.d -> a.b.c.d
          }
          classify();
          takeAddressSlot();
        }
        logConnect();
        beginClient();
        return;
    }
  }
  stats().proxy_header_errors++;
  spdlog::warn("proxy{}{}{}", kv("session", ctx_.session_id), kv("from", proxy_ip_), kv("error", error));
  close(timed_out ? proto::CloseReason::Timeout : proto::CloseReason::ClientError);
}

bool Session::rejectUntrustedProxyHeader(std::string_view first) {
  bool v1 = first.size() >= 6 && first.substr(0, 6) == "PROXY ";
  bool v2 = first.size() >= 12 && proto::ProxyHeaderDecoder::looksLikeHeader(first.substr(0, 12));
  if (!v1 && !v2) return false;
  stats().proxy_header_errors++;
  spdlog::warn("proxy{}{}", tag(), kv("error", "PROXY header from an address not in trusted_proxies; refused"));
  close(proto::CloseReason::ClientError);
  return true;
}

void Session::beginClient() {
  if (state_ == State::ProxyHeader) {
    // The PROXY header has been read from a plain socket: decide now how the
    // client's own bytes are to be read.
    bool pending = evbuffer_get_length(bufferevent_get_input(down_)) > 0;
    if (ctx_.client_tls) {
      if (!wrapDownstreamTls()) return;
      setState(State::TlsHandshake);
    } else if (listener_.tls == conf::ListenerTls::Auto) {
      setState(State::Sniffing);
      armTimer(listener_.sniff_timeout_ms);
      if (pending) onSniff(false);
      return;
    } else {
      startFront();
      if (pending && state_ == State::Front) onDownRead();
      return;
    }
  }
  if (state_ == State::TlsHandshake) {
    armTimer(limits_.handshake_timeout_ms);
    return;
  }
  if (state_ == State::Sniffing && over_limit_) {
    startFront();  // refuse at once, in plaintext
    return;
  }
  if (state_ == State::Sniffing) {
    // tls = "auto": give a client that talks TLS first (Outlook "SSL/TLS" on
    // 587) a moment to send its ClientHello before we greet in plaintext.
    armTimer(listener_.sniff_timeout_ms);
    return;
  }
  startFront();
}

void Session::startFront() {
  setState(State::Front);
  if (over_limit_) {
    stats().sessions_refused_address_limit++;
    stats().refusals.add({listener_.name, "too_many_connections"});
    spdlog::warn("refused{}{}{}{}", tag(), kv("listener", listener_.name), kv("reason", "too_many_connections"),
                 kv("limit", limits_.max_sessions_per_address));
    std::string notice =
        proto::closeNotice(listener_.protocol, proto::CloseReason::TooManyConnections, ctx_.server_name);
    writeThrough(down_, notice.data(), notice.size());
    close(proto::CloseReason::TooManyConnections);
    return;
  }
  front_ = proto::makeFrontPhase(listener_.protocol, ctx_);
  if (!front_) {
    close(proto::CloseReason::Internal);
    return;
  }
  run(front_->start());
}

void Session::onSniff(bool timed_out) {
  evbuffer* in = bufferevent_get_input(down_);
  if (!timed_out) {
    unsigned char first = 0;
    if (evbuffer_copyout(in, &first, 1) != 1) return;
    if (first == 0x16) {  // TLS handshake record: implicit TLS on a STARTTLS port
      evtimer_del(timer_);
      fp_.tls_before_greeting = true;
      ctx_.client_tls = true;
      ctx_.starttls_available = false;
      noteQuirk(proto::Quirk::TlsImplicitOnStarttlsPort,
                "TLS ClientHello before the greeting on " + listener_.name + " port " +
                    std::to_string(listener_.port) + ": implicit TLS");
      if (!wrapDownstreamTls()) return;
      setState(State::TlsHandshake);
      armTimer(limits_.handshake_timeout_ms);
      return;
    }
  }
  if (!timed_out) {
    size_t n = std::min<size_t>(evbuffer_get_length(in), 12);
    std::string head(n, '\0');
    evbuffer_copyout(in, head.data(), n);
    if (rejectUntrustedProxyHeader(head)) return;
  }
  // Silence, or a client that talks first in plaintext: greet, then treat
  // what it sent as pipelined input.
  evtimer_del(timer_);
  startFront();
  if (state_ == State::Front && evbuffer_get_length(in)) onDownRead();
}

// --- action execution --------------------------------------------------------

void Session::run(proto::Actions&& actions) {
  ++running_;
  for (auto& a : actions) {
    if (state_ == State::Closing) break;
    execute(a);
  }
  --running_;  // destruction happens only from destroyCb, never inside run()
}

void Session::execute(proto::Action& action) {
  std::visit(
      [this](auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, proto::SendDownstream>) {
          if (down_) writeThrough(down_, v.bytes.data(), v.bytes.size());
        } else if constexpr (std::is_same_v<T, proto::SendUpstream>) {
          // Not on a socket still connecting: send() there would consume
          // the connect error libevent checks for.
          if (up_ && up_connected_) {
            writeThrough(up_, v.bytes.data(), v.bytes.size());
          } else if (up_) {
            writeQueued(up_, v.bytes.data(), v.bytes.size());
          }
          proto::wipe(v.bytes);  // may hold an AUTH payload
        } else if constexpr (std::is_same_v<T, proto::StartTlsDownstream>) {
          startDownstreamTls();
        } else if constexpr (std::is_same_v<T, proto::StartTlsUpstream>) {
          startUpstreamTls();
        } else if constexpr (std::is_same_v<T, proto::ConnectUpstream>) {
          // The backend is chosen (and connected) with the credentials, so
          // pools can place the user; nothing to do before that.
        } else if constexpr (std::is_same_v<T, proto::Authenticate>) {
          if (listener_.protocol == proto::Protocol::Smtp) fp_.helo_only = !v.esmtp;
          login_pending_ = true;
          setState(State::Login);
          login_started_ = std::chrono::steady_clock::now();
          pending_auth_ = v;  // kept for a failover to another pool member
          if (!ensureUpstream(v.creds.user)) return;
          // The login phase queues the credentials until the backend is ready.
          run(login_->login(std::move(v)));
        } else if constexpr (std::is_same_v<T, proto::EnterRelay>) {
          enterRelay(v);
        } else if constexpr (std::is_same_v<T, proto::LogNote>) {
          if (spdlog::should_log(levelOf(v.level)))
            spdlog::log(levelOf(v.level), "note{}{}", tag(), kv("text", v.text));
        } else if constexpr (std::is_same_v<T, proto::QuirkUsed>) {
          noteQuirk(v.quirk, v.detail);
        } else if constexpr (std::is_same_v<T, proto::ClientInfo>) {
          if (v.key == "helo") {
            helo_ = v.value;
            fp_.helo = v.value;
          } else if (v.key.rfind("id.", 0) == 0 && fp_.id.size() < 16) {
            fp_.id[v.key.substr(3)] = v.value;
          } else if (v.key == "x-mailer") {
            fp_.x_mailer = v.value;
          } else if (v.key == "user-agent") {
            fp_.user_agent = v.value;
          }
          if (spdlog::should_log(spdlog::level::debug)) spdlog::debug("client{}{}", tag(), kv(v.key, v.value));
        } else if constexpr (std::is_same_v<T, proto::UserKnown>) {
          user_ = v.user;
        } else if constexpr (std::is_same_v<T, proto::ArmTimer>) {
          // While a STARTTLS handshake is pending the handshake deadline rules.
          armTimer(down_tls_pending_ ? std::min(v.ms, limits_.handshake_timeout_ms) : v.ms);
        } else if constexpr (std::is_same_v<T, proto::Close>) {
          close(v.reason);
        } else if constexpr (std::is_same_v<T, proto::LoginDone>) {
          login_pending_ = false;
          pending_auth_.reset();
          tried_.clear();
          evtimer_del(up_timer_);
          const auto& r = v.result;
          const char* verdict = r.kind == proto::LoginResult::Kind::Ok           ? "ok"
                                : r.kind == proto::LoginResult::Kind::AuthFailed ? "failed"
                                                                                 : "tempfail";
          if (r.kind == proto::LoginResult::Kind::Ok) stats().auth_ok++;
          if (r.kind == proto::LoginResult::Kind::AuthFailed) stats().auth_failed++;
          if (r.kind == proto::LoginResult::Kind::TempFail) stats().auth_tempfail++;
          stats().auth_results.add({listener_.name, verdict});
          if (upstream_ && r.kind != proto::LoginResult::Kind::TempFail)
            stats().upstream_login_seconds.observe(
                upstream_->name,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - login_started_).count());
          auto level = r.kind == proto::LoginResult::Kind::Ok ? spdlog::level::info : spdlog::level::warn;
          if (spdlog::should_log(level))  // skip building the arguments
            spdlog::log(level, "login{}{}{}{}{}", tag(), kv("result", verdict),
                        kv("upstream", upstream_ ? upstream_->name : "-"), kv("helo", helo_.empty() ? "-" : helo_),
                        kv("reply", r.code.empty() && r.text.empty() ? "-" : (r.code + " " + r.text)));
          bool unreachable = r.kind == proto::LoginResult::Kind::TempFail && r.code.empty();
          if (unreachable && up_) {
            freeUpstream(up_, false);
            login_.reset();
            up_connected_ = up_tls_ = up_tls_pending_ = false;
          }
          if (r.kind == proto::LoginResult::Kind::Ok) {
            // Rules that name users or fingerprints are decided now; their
            // message-level quirks apply to the relay.
            std::string fp = currentFingerprint();
            auto d = cfg_->decide(conf::RuleQuery{address_, listener_.name, user_, fp}, today_);
            if (d.rule != decision_.rule)
              spdlog::info("rule{}{}{}", tag(), kv("rule", d.rule ? d.rule->name : "-"), kv("fingerprint", fp));
            login_decision_ = d;
          }
          if (r.kind == proto::LoginResult::Kind::AuthFailed) {
            // Brute-force throttle: the failure reply waits base * 2^(n-1)
            // (capped), n = recent failures from this address on any session.
            auth_failures_++;
            uint32_t n = server_.clientLimits().recordFailure(address_, ClientLimits::nowMs(), limits_.auth_failure_window_ms);
            uint32_t delay = ClientLimits::failureDelayMs(n, limits_.auth_failure_delay_ms,
                                                          limits_.auth_failure_delay_max_ms);
            if (delay > 0) {
              stats().auth_failure_delays++;
              stats().refusals.add({listener_.name, "auth_failure_delay"});
              delayed_result_ = r;
              timeval tv{static_cast<time_t>(delay / 1000), static_cast<suseconds_t>((delay % 1000) * 1000)};
              // From now, not from the loop's cached time (the start of this
              // iteration): the reply waits at least the full delay.
              event_base_update_cache_time(server_.base());
              evtimer_add(auth_delay_, &tv);
              return;
            }
          } else if (r.kind == proto::LoginResult::Kind::Ok) {
            server_.clientLimits().recordSuccess(address_);
            evtimer_del(login_deadline_);
          }
          deliverLoginResult(r);
        }
      },
      action);
}

void Session::deliverLoginResult(const proto::LoginResult& r) {
  if (state_ == State::Login) setState(State::Front);
  run(front_->onLoginResult(r));
  if (r.kind == proto::LoginResult::Kind::AuthFailed && limits_.max_auth_failures != 0 &&
      auth_failures_ >= limits_.max_auth_failures && state_ != State::Closing) {
    stats().sessions_closed_auth_failures++;
    stats().refusals.add({listener_.name, "too_many_auth_failures"});
    spdlog::warn("refused{}{}{}", tag(), kv("reason", "too_many_auth_failures"), kv("failures", auth_failures_));
    closeWithNotice(proto::CloseReason::TooManyAuthFailures);
  }
}

void Session::authDelayCb(int, short, void* arg) {
  auto* s = static_cast<Session*>(arg);
  if (s->state_ == State::Closing || !s->delayed_result_) return;
  auto r = std::move(*s->delayed_result_);
  s->delayed_result_.reset();
  s->deliverLoginResult(r);
}

void Session::loginDeadlineCb(int, short, void* arg) {
  auto* s = static_cast<Session*>(arg);
  if (s->state_ == State::Closing || s->state_ == State::Relay) return;
  stats().login_timeouts++;
  stats().refusals.add({s->listener_.name, "login_timeout"});
  if (s->state_ == State::Front || s->state_ == State::Login)
    s->closeWithNotice(proto::CloseReason::LoginTimeout);
  else
    s->close(proto::CloseReason::LoginTimeout);  // still in TLS, sniffing or the PROXY header
}

// --- closing -----------------------------------------------------------------

void Session::closeWithNotice(proto::CloseReason reason) {
  if (state_ == State::Closing) return;
  if (down_ && front_ && state_ != State::TlsHandshake && !down_tls_pending_) {
    std::string notice = proto::closeNotice(listener_.protocol, reason, ctx_.server_name);
    if (!notice.empty()) writeThrough(down_, notice.data(), notice.size());
  }
  close(reason);
}

void Session::shutdown(proto::CloseReason reason) { closeWithNotice(reason); }

void Session::close(proto::CloseReason reason) {
  if (state_ == State::Closing) return;
  setState(State::Closing);
  close_reason_ = reason;
  stats().sessions_closed.add({proto::closeReasonName(reason)});
  stats().bytes_relayed.add({listener_.name, "from_client"}, static_cast<int64_t>(bytes_from_client_));
  stats().bytes_relayed.add({listener_.name, "from_backend"}, static_cast<int64_t>(bytes_from_backend_));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
  std::string fp = currentFingerprint();
  if (spdlog::should_log(spdlog::level::info))
    spdlog::info("disconnect{}{}{}{}{}{}", tag(), kv("reason", proto::closeReasonName(reason)),
                 kv("duration_ms", static_cast<uint64_t>(ms.count())), kv("bytes_in", bytes_from_client_),
                 kv("bytes_out", bytes_from_backend_), kv("fingerprint", fp));
  if (!quirk_uses_.empty()) {
    int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
    for (const auto& [q, use] : quirk_uses_)
      server_.retirement().record(user_.empty() ? "-" : user_, ctx_.client_ip, fp, std::string(proto::quirkId(q)),
                                  ctx_.rule_name.empty() ? "-" : ctx_.rule_name, use.first, use.second, now);
  }
  freeUpstream(up_, up_tls_);
  evtimer_del(up_timer_);
  if (down_) {
    bufferevent_disable(down_, EV_READ);
    // A client that is gone (reset, error) cannot receive anything more.
    bool client_gone = reason == proto::CloseReason::ClientError ||
                       (reason == proto::CloseReason::ClientEof && !client_eof_);
    if (!client_gone && pendingDownOutput() > 0) {
      // Let the final reply leave: downWriteCb and a short poll (a TLS filter
      // hands its records to the socket bufferevent below it, whose drain we
      // are not told about) destroy the session once nothing is pending, or
      // after kFlushTimeoutMs at the latest.
      bufferevent_setwatermark(down_, EV_WRITE, 0, 0);
      closing_since_ = std::chrono::steady_clock::now();
      armTimer(kFlushPollMs);
      return;
    }
  }
  scheduleDestroy();
}

size_t Session::pendingDownOutput() const {
  if (!down_) return 0;
  size_t n = evbuffer_get_length(bufferevent_get_output(down_));
  if (bufferevent* under = bufferevent_get_underlying(down_)) n += evbuffer_get_length(bufferevent_get_output(under));
  return n;
}

void Session::scheduleDestroy() {
  if (destroying_) return;
  destroying_ = true;
  event_active(destroy_ev_, 0, 0);
}


void Session::destroyCb(int, short, void* arg) {
  auto* s = static_cast<Session*>(arg);
  if (s->running_ > 0) {  // cannot happen (event callbacks are not nested), but be safe
    event_active(s->destroy_ev_, 0, 0);
    return;
  }
  delete s;
}

// --- timers ------------------------------------------------------------------

void Session::armTimer(uint32_t ms) {
  timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  evtimer_add(timer_, &tv);
}

void Session::armUpTimer(uint32_t ms) {
  timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  evtimer_add(up_timer_, &tv);
}

void Session::timerCb(int, short, void* arg) { static_cast<Session*>(arg)->onTimer(); }

void Session::upTimerCb(int, short, void* arg) {
  auto* s = static_cast<Session*>(arg);
  if (s->state_ == State::Closing) return;
  s->upstreamFailed("timeout talking to the backend", false);
}

void Session::onTimer() {
  switch (state_) {
    case State::Closing:
      if (pendingDownOutput() == 0 ||
          std::chrono::steady_clock::now() - closing_since_ > std::chrono::milliseconds(kFlushTimeoutMs)) {
        scheduleDestroy();
      } else {
        armTimer(kFlushPollMs);
      }
      return;
    case State::ProxyHeader:
      onProxyHeader(true);
      return;
    case State::Sniffing:
      onSniff(true);
      return;
    case State::TlsHandshake:
      logHandshakeFailure("handshake timeout");
      close(proto::CloseReason::Timeout);
      return;
    case State::Relay: {
      if (client_eof_) {  // the backend did not close after the client's half-close
        close(proto::CloseReason::ClientEof);
        return;
      }
      auto idle = std::chrono::steady_clock::now() - last_activity_;
      auto limit = std::chrono::milliseconds(cfg_->limits.idle_timeout_ms);
      if (idle < limit) {
        armTimer(static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(limit - idle).count()) + 1);
        return;
      }
      closeWithNotice(proto::CloseReason::Timeout);
      return;
    }
    case State::Front:
    case State::Login:
      if (down_tls_pending_) {
        logHandshakeFailure("handshake timeout after STARTTLS");
        close(proto::CloseReason::Timeout);
        return;
      }
      run(front_->onTimeout());
      return;
  }
}

// --- downstream --------------------------------------------------------------

void Session::downReadCb(bufferevent*, void* arg) {
  auto* s = static_cast<Session*>(arg);
  s->onDownRead();
  s->pumpDown();
}

// TLS records OpenSSL has read ahead of libevent (tls_read_ahead.h): into the
// input and through onDownRead() while the session reads.
void Session::pumpDown() {
  while (down_ && !down_paused_ &&
         (state_ == State::Front || state_ == State::Login || state_ == State::Relay)) {
    PumpResult r = pump(down_);
    if (r.added) onDownRead();
    if ((r.error || r.eof) && down_ && state_ != State::Closing) {
      onDownEvent(static_cast<short>(BEV_EVENT_READING | (r.error ? BEV_EVENT_ERROR : BEV_EVENT_EOF)));
      return;
    }
    if (!r.added) return;
  }
}
void Session::downWriteCb(bufferevent* bev, void* arg) {
  auto* s = static_cast<Session*>(arg);
  if (s->state_ == State::Closing) {
    if (s->pendingDownOutput() == 0) s->scheduleDestroy();
    return;
  }
  if (s->state_ == State::Relay) s->onDrained(bev);
}
void Session::downEventCb(bufferevent*, short what, void* arg) { static_cast<Session*>(arg)->onDownEvent(what); }

void Session::onDownRead() {
  if (state_ == State::ProxyHeader) {
    onProxyHeader(false);
    return;
  }
  if (state_ == State::Sniffing) {
    onSniff(false);
    return;
  }
  if (state_ == State::Relay) {
    relayDownToUp();
    return;
  }
  std::string bytes = drain(down_);
  if (state_ == State::Closing || bytes.empty()) return;
  if (bytes_from_client_ == 0 && rejectUntrustedProxyHeader(bytes)) return;
  bytes_from_client_ += bytes.size();
  stats().bytes_downstream_in += bytes.size();
  run(front_->onDownstreamData(bytes));
  proto::wipe(bytes);  // may have carried credentials
}

void Session::onDownEvent(short what) {
  if (what & BEV_EVENT_CONNECTED) {
    // Downstream TLS handshake finished (implicit TLS or after STARTTLS).
    stats().downstream_tls_handshakes++;
    SSL* ssl = bufferevent_openssl_get_ssl(down_);
    int version = SSL_version(ssl);
    stats().tls_handshakes.add({listener_.name, SSL_get_version(ssl)});
    if (spdlog::should_log(spdlog::level::info))
      spdlog::info("tls{}{}{}{}{}", tag(), kv("side", "downstream"), kv("cipher", tls::describe(ssl)),
                   kv("sni", hello_.sni.empty() ? "-" : hello_.sni), kv("profile", tls::profileName(profile_)));
    if (profile_ == tls::Profile::Legacy && version < TLS1_2_VERSION)
      noteQuirk(proto::Quirk::TlsLegacyProtocols, "negotiated " + tls::describe(ssl));
    // Read-ahead from now on, not during the handshake: a client that
    // trickles its ClientHello would otherwise hold a 64 KB buffer.
    if (!bufferevent_get_underlying(down_)) enableReadAhead(ssl);
    if (state_ == State::TlsHandshake) {
      startFront();
    } else if (down_tls_pending_) {
      down_tls_pending_ = false;
      ctx_.client_tls = true;
      // Invariant 2: what the client said about itself in plaintext (HELO, ID
      // fields) may come from an attacker on the path; forget it here as the
      // front phase does, or it would stay in the fingerprint (rules!) and logs.
      helo_.clear();
      fp_.helo.clear();
      fp_.id.clear();
      run(front_->onDownstreamTls());
    }
    pumpDown();  // a client's first command may have come with its Finished
    return;
  }
  if (state_ == State::Closing) {
    scheduleDestroy();
    return;
  }
  if (state_ == State::TlsHandshake || down_tls_pending_) {
    logHandshakeFailure(sslErrorText(down_));
    close(proto::CloseReason::TlsHandshakeFailed);
    return;
  }
  if (what & BEV_EVENT_EOF) {
    if (state_ == State::Relay && up_ && !client_eof_) {
      // Half-close (e.g. `printf 'QUIT\r\n' | nc`): the client may still be
      // reading. Forward what it sent, then give the backend a moment to
      // answer and close; the idle timer bounds the wait.
      client_eof_ = true;
      if (evbuffer_get_length(bufferevent_get_input(down_))) relayDownToUp();
      bufferevent_disable(down_, EV_READ);
      armTimer(kHalfCloseLingerMs);
      return;
    }
    close(proto::CloseReason::ClientEof);
  } else if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
    close(proto::CloseReason::ClientError);
  }
}

void Session::startDownstreamTls() {
  stats().downstream_starttls++;
  // Invariant 1: no plaintext crosses STARTTLS. The front phase consumed (and
  // discarded) everything we read; anything still in the socket buffer would
  // be read by the TLS layer as a broken record and fail the handshake.
  if (evbuffer_get_length(bufferevent_get_input(down_)) != 0) {
    spdlog::warn("starttls{}{}", tag(), kv("error", "plaintext buffered after STARTTLS"));
    close(proto::CloseReason::ClientError);
    return;
  }
  if (!wrapDownstreamTls()) return;
  down_tls_pending_ = true;
  armTimer(limits_.handshake_timeout_ms);
}

bool Session::wrapDownstreamTls() {
  SSL* ssl = tls_->newServerSsl(profile_, &hello_);
  bufferevent* f = ssl ? replaceWithTlsSocket(down_, ssl) : nullptr;
  if (!f && ssl)
    f = bufferevent_openssl_filter_new(server_.base(), down_, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                       BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
  if (!f) {
    if (ssl) SSL_free(ssl);
    close(proto::CloseReason::Internal);
    return false;
  }
  bufferevent_openssl_set_allow_dirty_shutdown(f, 1);
  down_ = f;
  bufferevent_setcb(down_, downReadCb, downWriteCb, downEventCb, this);
  // A filter has no socket events of its own: write interest costs nothing.
  bufferevent_enable(down_, bufferevent_get_underlying(down_) ? EV_READ | EV_WRITE : EV_READ);
  return true;
}

void Session::logHandshakeFailure(const std::string& error) {
  stats().downstream_tls_failures++;
  // A few stable classes for the metric; the log line says it in full.
  std::string_view cls = "other";
  if (error.find("timeout") != std::string::npos)
    cls = "timeout";
  else if (hello_.seen && hello_.max_version && hello_.max_version < TLS1_2_VERSION)
    cls = "protocol_version";
  else if (!hello_.seen && error.find("wrong version number") != std::string::npos)
    cls = "not_tls";
  else if (error.find("eof") != std::string::npos || error.empty())
    cls = "client_closed";
  else if (error.find("no shared cipher") != std::string::npos || error.find("no suitable") != std::string::npos)
    cls = "no_shared_cipher";
  else if (error.find("alert") != std::string::npos)
    cls = "client_alert";
  stats().tls_handshake_failures.add({listener_.name, cls});
  // Say in plain words why, e.g. "client offered only TLSv1; rule 'modern' requires TLSv1.2".
  std::string why = error;
  if (hello_.seen && hello_.max_version && hello_.max_version < TLS1_2_VERSION &&
      profile_ == tls::Profile::Modern) {
    why = "client offered only " + hello_.versions + "; rule '" +
          (ctx_.rule_name.empty() ? std::string("(none)") : ctx_.rule_name) +
          "' requires TLSv1.2 (enable tls.legacy_protocols for this client's network to allow it)";
  } else if (!hello_.seen && error.find("wrong version number") != std::string::npos) {
    why = "client did not start TLS (plaintext on an implicit-TLS port?): " + error;
  }
  if (hello_.seen && hello_.max_version && hello_.max_version < TLS1_2_VERSION &&
      decision_.retired.has(proto::Quirk::TlsLegacyProtocols)) {
    why = "client offered only " + hello_.versions + "; tls.legacy_protocols for rule '" + ctx_.rule_name +
          "' was retired on " + (decision_.rule && decision_.rule->sunset ? decision_.rule->sunset->toString() : "?");
    noteQuirk(proto::Quirk::TlsLegacyProtocols, "retired: " + why);
  }
  spdlog::info("tls{}{}{}{}{}{}", tag(), kv("side", "downstream"), kv("result", "failed"),
               kv("offered", hello_.seen ? hello_.versions : "-"), kv("sni", hello_.sni.empty() ? "-" : hello_.sni),
               kv("reason", why));
}

// --- upstream ----------------------------------------------------------------

bool Session::chooseUpstream(const std::string& user) {
  auto candidates = server_.health().candidates(*cfg_, listener_.upstream, user);
  for (int i : candidates) {
    if (std::find(tried_.begin(), tried_.end(), i) != tried_.end()) continue;
    upstream_ = &cfg_->upstreams[static_cast<size_t>(i)];
    upstream_index_ = static_cast<size_t>(i);
    up_ctx_.helo_name = cfg_->server.name;
    up_ctx_.tls = upstream_->tls;
    up_ctx_.client_address = upstream_->client_address;
    tried_.push_back(i);
    return true;
  }
  return false;
}

bool Session::ensureUpstream(const std::string& user) {
  if (!login_) {
    if (!up_ && !chooseUpstream(user)) {
      // Every backend of the pool is down: an immediate temporary failure, never a hang.
      spdlog::warn("upstream{}{}{}", tag(), kv("upstream", listener_.upstream),
                   kv("error", "no healthy backend in the pool"));
      stats().upstream_connect_failures++;
      if (login_pending_) {
        login_pending_ = false;
        stats().auth_tempfail++;
        if (state_ == State::Login) setState(State::Front);
        run(front_->onLoginResult(proto::LoginResult{}));
      }
      return false;
    }
    login_ = proto::makeUpstreamLogin(listener_.protocol, ctx_, up_ctx_);
    if (!login_) {
      close(proto::CloseReason::Internal);
      return false;
    }
  }
  if (!up_) connectUpstream();
  return login_ != nullptr;  // a synchronous connect failure resets it
}

void Session::connectUpstream() {
  const conf::Upstream& up = *upstream_;
  sockaddr_storage dst{};
  socklen_t dlen = 0;
  if (!makeSockaddr(up.host, up.port, dst, dlen)) {
    upstreamFailed("bad upstream address", false);
    return;
  }
  int fd = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    upstreamFailed(std::string("socket: ") + std::strerror(errno), false);
    return;
  }
  if (!up.source_address.empty()) {
    sockaddr_storage src{};
    socklen_t slen = 0;
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (!makeSockaddr(up.source_address, 0, src, slen) || bind(fd, reinterpret_cast<sockaddr*>(&src), slen) != 0) {
      std::string err = std::strerror(errno);
      ::close(fd);
      upstreamFailed("cannot bind source_address " + up.source_address + ": " + err, false);
      return;
    }
  }
  setNoDelay(fd);
  stats().upstream_connects++;
  up_connect_started_ = std::chrono::steady_clock::now();
  up_ = bufferevent_socket_new(server_.base(), fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
  bufferevent_setcb(up_, upReadCb, upWriteCb, upEventCb, this);
  // Nothing enabled yet: the connect arms EPOLLOUT itself, and reading
  // starts once connected (BEV_EVENT_CONNECTED).
  armUpTimer(up.connect_timeout_ms);
  if (bufferevent_socket_connect(up_, reinterpret_cast<sockaddr*>(&dst), static_cast<int>(dlen)) != 0) {
    upstreamFailed(std::string("connect: ") + std::strerror(errno), false);
  }
}

void Session::upReadCb(bufferevent*, void* arg) { static_cast<Session*>(arg)->onUpRead(); }
void Session::upWriteCb(bufferevent* bev, void* arg) {
  auto* s = static_cast<Session*>(arg);
  if (s->state_ == State::Relay) s->onDrained(bev);
}
void Session::upEventCb(bufferevent*, short what, void* arg) { static_cast<Session*>(arg)->onUpEvent(what); }

void Session::onUpRead() {
  if (state_ == State::Relay) {
    relayUpToDown();
    return;
  }
  std::string bytes = drain(up_);
  if (state_ == State::Closing || bytes.empty()) return;
  bytes_from_backend_ += bytes.size();
  stats().bytes_upstream_in += bytes.size();
  if (!login_) return;  // nothing expects backend bytes now
  run(login_->onUpstreamData(bytes));
}

void Session::onUpEvent(short what) {
  if (state_ == State::Closing) return;
  if (what & BEV_EVENT_CONNECTED) {
    if (up_tls_pending_) {
      up_tls_pending_ = false;
      up_tls_ = true;
      SSL* ssl = bufferevent_openssl_get_ssl(up_);
      if (spdlog::should_log(spdlog::level::debug))
        spdlog::debug("tls{}{}{}{}", tag(), kv("side", "upstream"), kv("cipher", tls::describe(ssl)),
                      kv("resumed", SSL_session_reused(ssl) ? "yes" : "no"));
      if (!up_connected_) {  // implicit TLS upstream: TCP + TLS are now up
        up_connected_ = true;
        server_.health().reportSuccess(upstream_->name);
        armUpTimer(ctx_.preauth_timeout_ms);
        run(login_->onConnected());
      } else {
        run(login_->onUpstreamTls());
      }
      return;
    }
    bufferevent_enable(up_, EV_READ);  // connected: read the greeting (see connectUpstream)
    stats().upstream_connect_seconds.observe(
        upstream_->name, std::chrono::duration<double>(std::chrono::steady_clock::now() - up_connect_started_).count());
    if (upstream_->client_address == proto::ClientAddressMode::ProxyV2) {
      // PROXY v2 first, in plaintext, before any TLS: the backend learns the
      // real client (and, via the SSL TLV, that the client leg was TLS).
      std::string tls_version;
      if (ctx_.client_tls && down_) {
        SSL* ssl = bufferevent_openssl_get_ssl(down_);
        if (ssl) tls_version = SSL_get_version(ssl);
      }
      std::string header =
          proto::encodeProxyV2(ctx_.client_ip, ctx_.client_port, ctx_.local_ip, ctx_.local_port, tls_version);
      if (header.empty()) {
        upstreamFailed("cannot encode a PROXY v2 header for " + ctx_.client_ip, false);
        return;
      }
      writeThrough(up_, header.data(), header.size());
    }
    if (upstream_->tls == proto::UpstreamTls::Implicit) {
      startUpstreamTls();
      return;
    }
    up_connected_ = true;
    server_.health().reportSuccess(upstream_->name);
    armUpTimer(ctx_.preauth_timeout_ms);
    run(login_->onConnected());
    return;
  }
  if (up_tls_pending_) {
    stats().upstream_tls_failures++;
    upstreamFailed("TLS handshake with backend failed: " + sslErrorText(up_), true);
    return;
  }
  if (state_ == State::Relay) {
    // Deliver what the backend sent last (e.g. "221 Bye", "* BYE") first.
    if (evbuffer_get_length(bufferevent_get_input(up_))) relayUpToDown();
    if (state_ != State::Relay) return;
    if (filter_) {
      run(filter_->onUpstreamClosed());
      if (state_ == State::Closing) return;
    }
    bool error = (what & BEV_EVENT_ERROR) != 0;
    // Deliver what the backend sent last (e.g. "221 Bye", "* BYE") before closing.
    if (error) {
      closeWithNotice(proto::CloseReason::UpstreamLost);
    } else {
      close(proto::CloseReason::UpstreamEof);
    }
    return;
  }
  int err = EVUTIL_SOCKET_ERROR();
  std::string why = "backend closed the connection";
  if (!(what & BEV_EVENT_EOF)) {
    // On a TLS leg the reason is OpenSSL's, not errno's ("Success").
    std::string tls_error = up_tls_ ? sslErrorText(up_) : std::string();
    why = !tls_error.empty() ? "backend TLS error: " + tls_error
          : err != 0         ? std::string("backend connection failed: ") + std::strerror(err)
                             : std::string("backend connection failed");
  }
  upstreamFailed(why, false);
}

void Session::upstreamFailed(const std::string& why, bool tls_problem) {
  if (state_ == State::Closing) return;
  bool never_connected = !up_connected_;
  if (never_connected) stats().upstream_connect_failures++;
  spdlog::warn("upstream{}{}{}", tag(), kv("upstream", upstream_ ? upstream_->name : "-"), kv("error", why));
  // A backend that fails before the login completed (refused, reset, no
  // greeting, TLS trouble) counts against its health; one that dies later
  // in a session does not (the session may simply have ended badly).
  bool before_login = never_connected || login_pending_;
  if (upstream_ && before_login && state_ != State::Relay) server_.health().reportFailure(upstream_->name, why);
  freeUpstream(up_, up_tls_);
  evtimer_del(up_timer_);
  login_.reset();
  up_connected_ = up_tls_ = up_tls_pending_ = false;
  if (before_login && login_pending_ && pending_auth_ && cfg_->findPool(listener_.upstream)) {
    // Failover: the next healthy pool member, with the same credentials.
    if (chooseUpstream(pending_auth_->creds.user)) {
      spdlog::info("upstream{}{}{}", tag(), kv("failover", upstream_->name), kv("after", why));
      proto::Authenticate again = *pending_auth_;
      if (ensureUpstream(again.creds.user)) run(login_->login(std::move(again)));
      return;
    }
  }
  if (state_ == State::Relay) {
    closeWithNotice(tls_problem ? proto::CloseReason::UpstreamTlsFailed : proto::CloseReason::UpstreamLost);
    return;
  }
  if (login_pending_) {
    login_pending_ = false;
    stats().auth_tempfail++;
    if (state_ == State::Login) setState(State::Front);
    proto::LoginResult r;
    r.kind = proto::LoginResult::Kind::TempFail;
    run(front_->onLoginResult(r));
  }
}

void Session::startUpstreamTls() {
  if (!up_) return;
  if (evbuffer_get_length(bufferevent_get_input(up_)) != 0) {
    // Response injection: the backend sent plaintext after its go-ahead.
    upstreamFailed("backend sent plaintext after its STARTTLS go-ahead", true);
    return;
  }
  SSL* ssl = tls_->newClientSsl(upstream_index_, *upstream_);
  if (!ssl) {
    upstreamFailed("cannot create TLS session: " + tls::drainErrors(), true);
    return;
  }
  bufferevent* f =
      bufferevent_openssl_filter_new(server_.base(), up_, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
  if (!f) {
    SSL_free(ssl);
    upstreamFailed("cannot start TLS", true);
    return;
  }
  bufferevent_openssl_set_allow_dirty_shutdown(f, 1);
  up_ = f;
  up_tls_pending_ = true;
  bufferevent_setcb(up_, upReadCb, upWriteCb, upEventCb, this);
  bufferevent_enable(up_, EV_READ | EV_WRITE);
}

// --- relay -------------------------------------------------------------------

void Session::enterRelay(proto::EnterRelay& r) {
  if (!up_) {
    close(proto::CloseReason::Internal);
    return;
  }
  setState(State::Relay);
  if (preauth_held_) {
    server_.clientLimits().leavePreauth();
    preauth_held_ = false;
  }
  login_.reset();
  evtimer_del(up_timer_);
  evtimer_del(login_deadline_);
  if (login_decision_) applyDecision(*login_decision_);
  ctx_.user = user_;
  ctx_.directory = server_.directory();
  ctx_.display_name_fallback_local_part = cfg_->directory.fallback_local_part;
  filter_ = proto::makeRelayFilter(listener_.protocol, ctx_);
  last_activity_ = std::chrono::steady_clock::now();
  armTimer(cfg_->limits.idle_timeout_ms);
  const size_t limit = cfg_->limits.relay_buffer_bytes;
  bufferevent_setwatermark(down_, EV_READ, 0, limit);
  bufferevent_setwatermark(up_, EV_READ, 0, limit);
  if (!r.to_downstream.empty()) writeThrough(down_, r.to_downstream.data(), r.to_downstream.size());
  if (!r.to_upstream.empty()) {
    if (filter_) {
      run(filter_->onDownstreamData(r.to_upstream));
    } else {
      writeThrough(up_, r.to_upstream.data(), r.to_upstream.size());
    }
  }
  // Bytes may already be waiting in either input buffer.
  if (state_ == State::Relay && evbuffer_get_length(bufferevent_get_input(down_))) relayDownToUp();
  if (state_ == State::Relay && up_ && evbuffer_get_length(bufferevent_get_input(up_))) relayUpToDown();
}

namespace {

constexpr size_t kTlsRecordBytes = 16384;       // the largest TLS record payload
constexpr size_t kSocketReadBytes = 4096;       // libevent 2.1 reads a socket at most this much at a time
constexpr size_t kMaxCoalescePerCall = 262144;  // fairness: bytes read past the bufferevent per callback
constexpr int kBlocksPerRead = 4;               // one readv() fills up to 4 records
constexpr size_t kPooledBlocks = 64;            // per worker thread: 1 MiB

// 16 KiB blocks handed to the TLS bufferevent by reference and taken back
// when OpenSSL has encrypted them: no malloc, no fresh pages to fault in, no
// copy into libevent's chains. One pool per worker thread (a session and its
// buffers stay on one thread).
struct BlockPool {
  std::vector<char*> free;
  ~BlockPool() {
    for (char* b : free) delete[] b;
  }
};
thread_local BlockPool t_blocks;

char* takeBlock() {
  if (t_blocks.free.empty()) return new char[kTlsRecordBytes];
  char* b = t_blocks.free.back();
  t_blocks.free.pop_back();
  return b;
}

void giveBlock(char* b) {
  if (t_blocks.free.size() < kPooledBlocks) {
    t_blocks.free.push_back(b);
  } else {
    delete[] b;
  }
}

void blockDone(const void* data, size_t, void*) { giveBlock(static_cast<char*>(const_cast<void*>(data))); }

// Moves `in` to the TLS bufferevent `to` in blocks of up to 16 KiB, so that
// each SSL_write (libevent makes one per buffer chain) is one full TLS record
// and one send(); libevent would otherwise write a 4 KiB record per 4 KiB
// socket read. When `fd` >= 0 (a plain socket behind `in`) and the
// bufferevent's last read filled its 4 KiB, the rest is read straight from
// the socket, up to 4 records per readv(), until it would block. EOF and errors
// are left for the socket bufferevent to report on its next read. Stops
// reading the socket once `to` holds `limit` bytes. Returns the bytes moved.
size_t moveAsTlsRecords(evbuffer* in, bufferevent* to, int fd, size_t limit) {
  size_t have = evbuffer_get_length(in);
  bool more = fd >= 0 && have >= kSocketReadBytes;
  if (!more) {
    // A short reply (one small record as it is, sent at once when nothing
    // is queued), or a TLS backend: its records arrive as 16 KiB chains
    // already, moved without a copy.
    writeThroughBuffer(to, in);
    return have;
  }
  evbuffer* out = bufferevent_get_output(to);
  size_t moved = 0;
  char* cur = nullptr;  // the block being filled
  size_t fill = 0;
  auto hand = [&](char* b, size_t n) {
    if (n == 0) {
      giveBlock(b);
    } else if (evbuffer_add_reference(out, b, n, blockDone, nullptr) == 0) {  // writes it now
      moved += n;
      ensureWriting(to);
    } else {
      giveBlock(b);
    }
  };
  while ((have = evbuffer_get_length(in)) > 0) {
    if (!cur) cur = takeBlock();
    int n = evbuffer_remove(in, cur + fill, std::min(have, kTlsRecordBytes - fill));
    if (n <= 0) break;
    fill += static_cast<size_t>(n);
    if (fill == kTlsRecordBytes) {
      hand(cur, fill);
      cur = nullptr;
      fill = 0;
    }
  }
  while (more && moved < kMaxCoalescePerCall && evbuffer_get_length(out) < limit) {
    char* b[kBlocksPerRead];
    iovec iov[kBlocksPerRead];
    b[0] = cur ? cur : takeBlock();
    iov[0] = {b[0] + fill, kTlsRecordBytes - fill};
    size_t want = iov[0].iov_len;
    for (int k = 1; k < kBlocksPerRead; ++k) {
      b[k] = takeBlock();
      iov[k] = {b[k], kTlsRecordBytes};
      want += kTlsRecordBytes;
    }
    ssize_t r = ::readv(fd, iov, kBlocksPerRead);
    if (r < 0 && errno == EINTR) r = 0;
    else if (r <= 0 || static_cast<size_t>(r) < want) more = false;  // drained, would block, EOF or error
    size_t got = r > 0 ? static_cast<size_t>(r) : 0;
    size_t first = std::min(got, iov[0].iov_len);
    hand(b[0], fill + first);
    got -= first;
    for (int k = 1; k < kBlocksPerRead; ++k) {
      size_t t = std::min(got, kTlsRecordBytes);
      hand(b[k], t);
      got -= t;
    }
    cur = nullptr;
    fill = 0;
  }
  if (cur) hand(cur, fill);
  return moved;
}

}  // namespace

void Session::relayDownToUp() {
  if (!up_ || state_ != State::Relay) return;
  last_activity_ = std::chrono::steady_clock::now();
  evbuffer* in = bufferevent_get_input(down_);
  size_t n = evbuffer_get_length(in);
  bytes_from_client_ += n;
  stats().bytes_downstream_in += n;
  if (filter_) {
    // Chain by chain, straight from the buffer (no copy into a string first).
    evbuffer_iovec v[8];
    while (state_ == State::Relay && filter_ && evbuffer_get_length(in)) {
      int k = evbuffer_peek(in, -1, nullptr, v, 8);
      if (k <= 0) break;
      k = std::min(k, 8);
      size_t fed = 0;
      for (int i = 0; i < k && state_ == State::Relay && filter_; ++i) {
        proto::Actions acts =
            filter_->onDownstreamData(std::string_view(static_cast<const char*>(v[i].iov_base), v[i].iov_len));
        // Message content (the filter's first action, nothing before it):
        // sent at once or handed to the backend's buffer by reference, not
        // copied (and, being no credential, not wiped).
        if (!acts.empty()) {
          auto* send = std::get_if<proto::SendUpstream>(&acts.front());
          if (send && send->bytes.size() >= kSocketReadBytes) writeThroughOwned(up_, send->bytes);
        }
        run(std::move(acts));
        fed += v[i].iov_len;
      }
      evbuffer_drain(in, fed);
    }
  } else {
    writeThroughBuffer(up_, in);
  }
  if (state_ == State::Relay) applyBackpressure(down_, up_);
}

void Session::relayUpToDown() {
  if (!up_ || state_ != State::Relay) return;
  last_activity_ = std::chrono::steady_clock::now();
  evbuffer* in = bufferevent_get_input(up_);
  size_t n = evbuffer_get_length(in);
  if (filter_) {
    bytes_from_backend_ += n;
    stats().bytes_upstream_in += n;
    std::string bytes = drain(up_);
    run(filter_->onUpstreamData(bytes));
  } else if (bufferevent_openssl_get_ssl(down_)) {
    n = moveAsTlsRecords(in, down_, up_tls_ ? -1 : bufferevent_getfd(up_), cfg_->limits.relay_buffer_bytes);
    bytes_from_backend_ += n;
    stats().bytes_upstream_in += n;
  } else {
    bytes_from_backend_ += n;
    stats().bytes_upstream_in += n;
    writeThroughBuffer(down_, in);
  }
  if (state_ == State::Relay) applyBackpressure(up_, down_);
}

void Session::applyBackpressure(bufferevent* from, bufferevent* to) {
  const size_t limit = cfg_->limits.relay_buffer_bytes;
  if (evbuffer_get_length(bufferevent_get_output(to)) < limit) return;
  bufferevent_disable(from, EV_READ);
  (from == down_ ? down_paused_ : up_paused_) = true;
  // Wake us when `to` has drained to half the bound.
  bufferevent_setwatermark(to, EV_WRITE, limit / 2, 0);
}

void Session::onDrained(bufferevent* to) {
  bufferevent* from = (to == down_) ? up_ : down_;
  bool& paused = (from == down_) ? down_paused_ : up_paused_;
  if (!paused || !from) return;
  paused = false;
  bufferevent_setwatermark(to, EV_WRITE, 0, 0);
  bufferevent_enable(from, EV_READ);
  // Data may have accumulated while paused.
  if (evbuffer_get_length(bufferevent_get_input(from))) {
    if (from == down_)
      relayDownToUp();
    else
      relayUpToDown();
  }
  if (from == down_) pumpDown();
}

}  // namespace mailshim::proxy
