// Server: event loop, listeners, reload, drain. See server.h.
#include "proxy/server.h"

#include <event2/event.h>
#include <event2/listener.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/stat.h>

#include <csignal>
#include <random>
#include <vector>

#include "conf/config_loader.h"
#include "conf/directory_loader.h"
#include "proxy/log.h"
#include "proxy/net.h"
#include "proxy/sd_notify.h"
#include "proxy/session.h"
#include "proxy/stats.h"
#include "tls/cert_audit.h"

namespace mailshim::proxy {
namespace {

std::string listenerKey(const conf::Listener& l) { return l.address + ":" + std::to_string(l.port); }

}  // namespace

Server::ListenerSlot::~ListenerSlot() {
  if (lev) evconnlistener_free(lev);
}

Server::Server(conf::ConfigConstSharedPtr cfg, tls::TlsContextsConstSharedPtr tls)
    : cfg_(std::move(cfg)), tls_(std::move(tls)) {
  base_ = event_base_new();
  std::random_device rd;
  session_salt_ = rd();
}

Server::~Server() {
  // Sessions still alive at exit (drain timeout) are torn down here.
  std::vector<Session*> left(sessions_.begin(), sessions_.end());
  for (Session* s : left) delete s;
  listeners_.clear();
  for (event* e : {sig_hup_, sig_term_, sig_int_, drain_timer_, housekeeping_timer_})
    if (e) event_free(e);
  if (base_) event_base_free(base_);
}

std::string Server::nextSessionId() {
  // 12 characters, unique within this process run and unlikely to repeat
  // across restarts (salted), like Dovecot's session ids.
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKLMNPQRSTVWXYZ";
  uint64_t v = (static_cast<uint64_t>(session_salt_) << 28) ^ (++session_counter_ * 0x9E3779B97F4A7C15ull >> 8);
  std::string id(12, '0');
  for (int i = 11; i >= 0; --i) {
    id[i] = kAlphabet[v % 32];
    v /= 32;
  }
  return id;
}

bool Server::openListener(const conf::Listener& l) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!makeSockaddr(l.address, l.port, ss, len)) {
    spdlog::error("listen{}{}{}", kv("listener", l.name), kv("address", l.address), kv("error", "bad address"));
    return false;
  }
  auto slot = std::make_unique<ListenerSlot>();
  slot->server = this;
  slot->name = l.name;
  slot->key = listenerKey(l);
  slot->lev = evconnlistener_new_bind(base_, acceptCb, slot.get(),
                                      LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 1024,
                                      reinterpret_cast<sockaddr*>(&ss), static_cast<int>(len));
  if (!slot->lev) {
    spdlog::error("listen{}{}{}{}", kv("listener", l.name), kv("address", l.address), kv("port", l.port),
                  kv("error", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR())));
    return false;
  }
  spdlog::info("listen{}{}{}{}{}", kv("listener", l.name), kv("proto", proto::protocolName(l.protocol)),
               kv("address", l.address), kv("port", l.port),
               kv("tls", l.tls == conf::ListenerTls::Implicit ? "implicit"
                                         : l.tls == conf::ListenerTls::Auto   ? "auto"
                                                                              : "starttls"));
  listeners_[slot->key] = std::move(slot);
  return true;
}

bool Server::start() {
  if (!base_) return false;
  loadDirectory();
  health_ = std::make_unique<UpstreamHealth>(base_);
  health_->configure(cfg_);
  retirement_ = std::make_unique<RetirementStore>(cfg_->server.state_dir + "/retirement.tsv");
  std::string err;
  if (!retirement_->load(err)) spdlog::warn("retirement{}", kv("error", err));
  housekeeping_timer_ = event_new(base_, -1, EV_PERSIST, housekeepingCb, this);
  timeval every{30, 0};
  evtimer_add(housekeeping_timer_, &every);
  for (const auto& l : cfg_->listeners)
    if (!openListener(l)) return false;
  sig_hup_ = evsignal_new(base_, SIGHUP, signalCb, this);
  sig_term_ = evsignal_new(base_, SIGTERM, signalCb, this);
  sig_int_ = evsignal_new(base_, SIGINT, signalCb, this);
  for (event* e : {sig_hup_, sig_term_, sig_int_}) evsignal_add(e, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}

int Server::run() {
  sdNotify("READY=1\nSTATUS=accepting connections");
  spdlog::info("ready{}", kv("listeners", cfg_->listeners.size()));
  event_base_dispatch(base_);
  saveRetirement();
  spdlog::info("stopped{}", kv("stats", stats().render()));
  return 0;
}

void Server::housekeepingCb(int, short, void* arg) { static_cast<Server*>(arg)->housekeeping(); }

void Server::housekeeping() {
  saveRetirement();
  // The directory file (e.g. a cron export from iRedMail's SQL) is reloaded when it changes.
  if (!cfg_->directory.file.empty()) {
    struct stat st{};
    if (::stat(cfg_->directory.file.c_str(), &st) == 0 && st.st_mtime != directory_mtime_) loadDirectory();
  }
}

void Server::loadDirectory() {
  std::vector<std::string> warnings;
  if (!cfg_->directory.file.empty()) {
    struct stat st{};
    if (::stat(cfg_->directory.file.c_str(), &st) == 0) directory_mtime_ = st.st_mtime;
  }
  directory_ = conf::loadDirectory(cfg_->directory, warnings);
  for (const auto& w : warnings) spdlog::warn("directory{}", kv("warning", w));
  if (!cfg_->directory.file.empty() || !cfg_->directory.names.empty())
    spdlog::info("directory{}{}", kv("names", directory_->size()),
                 kv("file", cfg_->directory.file.empty() ? "-" : cfg_->directory.file));
}

void Server::saveRetirement() {
  if (!retirement_) return;
  std::string err;
  if (!retirement_->save(err)) spdlog::warn("retirement{}", kv("error", err));
}

void Server::signalCb(int sig, short, void* arg) {
  auto* self = static_cast<Server*>(arg);
  if (sig == SIGHUP)
    self->reload();
  else
    self->beginDrain();
}

void Server::reload() {
  sdNotify("RELOADING=1");
  spdlog::info("reload{}", kv("config", cfg_->source_path));
  stats().reloads++;
  auto loaded = conf::loadConfigFile(cfg_->source_path);
  for (const auto& w : loaded.warnings) spdlog::warn("config{}", kv("warning", w));
  std::vector<std::string> errors = loaded.errors;
  tls::TlsContextsConstSharedPtr tls;
  bool audit_ok = true;
  if (loaded.ok()) {
    for (const auto& f : tls::auditCertificates(*loaded.config)) {
      if (f.severity == tls::AuditFinding::Severity::Error) {
        errors.push_back(f.message);
        audit_ok = false;
      } else {
        spdlog::warn("config{}", kv("warning", f.message));
      }
    }
  }
  if (loaded.ok() && audit_ok) tls = tls::TlsContexts::build(*loaded.config, errors);
  if (!loaded.ok() || !tls) {
    stats().reload_failures++;
    for (const auto& e : errors) spdlog::error("reload{}", kv("error", e));
    spdlog::error("reload{}", kv("result", "failed, keeping the running configuration"));
    sdNotify("READY=1\nSTATUS=reload failed, running the previous configuration");
    return;
  }
  cfg_ = loaded.config;
  tls_ = tls;
  setLogLevel(cfg_->server.log_level);
  loadDirectory();
  health_->configure(cfg_);
  saveRetirement();
  if (!draining_) syncListeners();
  spdlog::info("reload{}", kv("result", "ok"));
  sdNotify("READY=1\nSTATUS=accepting connections");
}

void Server::syncListeners() {
  std::map<std::string, const conf::Listener*> wanted;
  for (const auto& l : cfg_->listeners) wanted[listenerKey(l)] = &l;
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    auto w = wanted.find(it->first);
    if (w == wanted.end()) {
      spdlog::info("unlisten{}{}", kv("listener", it->second->name), kv("address", it->first));
      it = listeners_.erase(it);
    } else {
      it->second->name = w->second->name;
      ++it;
    }
  }
  for (const auto& [key, l] : wanted)
    if (!listeners_.count(key)) openListener(*l);
}

void Server::acceptCb(evconnlistener*, int fd, sockaddr* addr, int socklen, void* arg) {
  auto* slot = static_cast<ListenerSlot*>(arg);
  slot->server->onAccept(*slot, fd, addr, socklen);
}

void Server::onAccept(ListenerSlot& slot, int fd, sockaddr* addr, int) {
  const conf::Listener* listener = nullptr;
  for (const auto& l : cfg_->listeners)
    if (l.name == slot.name) listener = &l;
  if (draining_ || !listener) {
    ::close(fd);
    return;
  }
  evutil_make_socket_nonblocking(fd);
  auto* s = new Session(*this, cfg_, tls_, *listener, fd, addr);
  sessions_.insert(s);
  s->start();
}

void Server::sessionClosed(Session* s) {
  sessions_.erase(s);
  maybeFinishDrain();
}

void Server::beginDrain() {
  if (draining_) {
    spdlog::info("stop{}", kv("phase", "second signal, closing all sessions now"));
    std::vector<Session*> all(sessions_.begin(), sessions_.end());
    for (Session* s : all) s->shutdown(proto::CloseReason::Shutdown);
    event_base_loopexit(base_, nullptr);
    return;
  }
  draining_ = true;
  sdNotify("STOPPING=1");
  spdlog::info("stop{}{}", kv("sessions", sessions_.size()), kv("drain_timeout_ms", cfg_->server.drain_timeout_ms));
  listeners_.clear();
  if (health_) health_->stop();
  drain_timer_ = evtimer_new(base_, drainTimeoutCb, this);
  timeval tv{static_cast<time_t>(cfg_->server.drain_timeout_ms / 1000),
             static_cast<suseconds_t>((cfg_->server.drain_timeout_ms % 1000) * 1000)};
  evtimer_add(drain_timer_, &tv);
  maybeFinishDrain();
}

void Server::drainTimeoutCb(int, short, void* arg) {
  auto* self = static_cast<Server*>(arg);
  spdlog::info("stop{}{}", kv("phase", "drain timeout"), kv("closing", self->sessions_.size()));
  std::vector<Session*> all(self->sessions_.begin(), self->sessions_.end());
  for (Session* s : all) s->shutdown(proto::CloseReason::Shutdown);
  // Give the shutdown notices a moment to leave, then exit regardless.
  timeval tv{1, 0};
  event_base_loopexit(self->base_, &tv);
}

void Server::maybeFinishDrain() {
  if (draining_ && sessions_.empty()) event_base_loopexit(base_, nullptr);
}

}  // namespace mailshim::proxy
