// Server: workers, shared state, reload, drain. See server.h.
#include "proxy/server.h"

#include "proxy/admin.h"
#include "proxy/session.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <sys/stat.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <chrono>
#include <csignal>
#include <random>

#include "conf/config_loader.h"
#include "conf/directory_loader.h"
#include "proxy/log.h"
#include "proxy/sd_notify.h"
#include "proxy/stats.h"
#include "proxy/worker.h"
#include "tls/cert_audit.h"

namespace mailshim::proxy {

Server::Server(conf::ConfigConstSharedPtr cfg, tls::TlsContextsConstSharedPtr tls, size_t workers)
    : cfg_(std::move(cfg)), tls_(std::move(tls)) {
  std::random_device rd;
  session_salt_ = rd();
  if (workers == 0) workers = 1;
  for (size_t i = 0; i < workers; ++i) workers_.push_back(std::make_unique<Worker>(*this, i, cfg_, tls_));
}

Server::~Server() {
  admin_.reset();
  if (metrics_http_) evhttp_free(metrics_http_);
  for (event* e : {sig_hup_, sig_term_, sig_int_, housekeeping_timer_, memory_timer_})
    if (e) event_free(e);
  health_.reset();  // its probes live on worker 0's loop
  workers_.clear();
}

std::string Server::nextSessionId() {
  // 12 characters, unique within this process run and unlikely to repeat
  // across restarts (salted), like Dovecot's session ids.
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKLMNPQRSTVWXYZ";
  uint64_t n = ++session_counter_;
  uint64_t v = (static_cast<uint64_t>(session_salt_) << 28) ^ (n * 0x9E3779B97F4A7C15ull >> 8);
  std::string id(12, '0');
  for (int i = 11; i >= 0; --i) {
    id[i] = kAlphabet[v % 32];
    v /= 32;
  }
  return id;
}

proto::DirectoryConstSharedPtr Server::directory() const {
  std::lock_guard<std::mutex> lock(directory_mu_);
  return directory_;
}

bool Server::start() {
  event_base* main = workers_.front()->base();
  loadDirectory();
  health_ = std::make_unique<UpstreamHealth>(main);
  health_->configure(cfg_);
  retirement_ = std::make_unique<RetirementStore>(cfg_->server.state_dir + "/retirement.tsv");
  std::string err;
  if (!retirement_->load(err)) spdlog::warn("retirement{}", kv("error", err));
  // Metrics and console first: once a client can connect, they answer too.
  if (!startMetrics()) return false;
  admin_ = std::make_unique<AdminConsole>(*this, main);
  // The console is for the admin, the listeners for the users: a console
  // that cannot open (e.g. /run/mailshim missing outside systemd) is logged
  // and mail keeps flowing.
  if (!cfg_->admin.socket.empty() && !admin_->open(cfg_->admin))
    spdlog::error("admin{}", kv("result", "console disabled"));
  for (auto& w : workers_)
    if (!w->openListeners()) return false;
  housekeeping_timer_ = event_new(main, -1, EV_PERSIST, housekeepingCb, this);
  timeval every{30, 0};
  evtimer_add(housekeeping_timer_, &every);
  // Checked every second (a few atomic loads) so that memory goes back soon
  // after a burst has closed, not up to 30 s later.
  memory_timer_ = event_new(
      main, -1, EV_PERSIST, [](int, short, void* arg) { static_cast<Server*>(arg)->releaseMemory(); }, this);
  timeval second{1, 0};
  evtimer_add(memory_timer_, &second);
  sig_hup_ = evsignal_new(main, SIGHUP, signalCb, this);
  sig_term_ = evsignal_new(main, SIGTERM, signalCb, this);
  sig_int_ = evsignal_new(main, SIGINT, signalCb, this);
  for (event* e : {sig_hup_, sig_term_, sig_int_}) evsignal_add(e, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}

int Server::run() {
  for (size_t i = 1; i < workers_.size(); ++i) threads_.emplace_back([w = workers_[i].get()] { w->run(); });
  sdNotify("READY=1\nSTATUS=accepting connections");
  spdlog::info("ready{}{}", kv("listeners", cfg_->listeners.size()), kv("workers", workers_.size()));
  workers_.front()->run();
  for (auto& t : threads_) t.join();
  threads_.clear();
  saveRetirement();
  spdlog::info("stopped{}", kv("stats", stats().render()));
  return 0;
}

bool Server::startMetrics() {
  if (cfg_->metrics.port == 0) return true;
  metrics_http_ = evhttp_new(workers_.front()->base());
  if (!metrics_http_ || evhttp_bind_socket(metrics_http_, cfg_->metrics.address.c_str(), cfg_->metrics.port) != 0) {
    spdlog::error("metrics{}{}{}", kv("address", cfg_->metrics.address), kv("port", cfg_->metrics.port),
                  kv("error", "cannot bind"));
    return false;
  }
  evhttp_set_allowed_methods(metrics_http_, EVHTTP_REQ_GET);
  evhttp_set_gencb(
      metrics_http_,
      [](evhttp_request* req, void* arg) {
        auto* self = static_cast<Server*>(arg);
        if (std::string_view(evhttp_request_get_uri(req)).rfind("/metrics", 0) != 0) {
          evhttp_send_error(req, HTTP_NOTFOUND, "try /metrics");
          return;
        }
        std::string body = self->metricsText();
        evbuffer* buf = evbuffer_new();
        evbuffer_add(buf, body.data(), body.size());
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; version=0.0.4");
        evhttp_send_reply(req, HTTP_OK, "OK", buf);
        evbuffer_free(buf);
      },
      this);
  spdlog::info("metrics{}{}", kv("address", cfg_->metrics.address), kv("port", cfg_->metrics.port));
  return true;
}

std::string Server::metricsText() const {
  std::string extra = "# TYPE mailshim_upstream_up gauge\n";
  if (health_)
    for (const auto& m : health_->members())
      extra += "mailshim_upstream_up{upstream=\"" + m.name + "\"} " + (m.up ? "1" : "0") + "\n";
  extra += "# TYPE mailshim_workers gauge\nmailshim_workers " + std::to_string(workers_.size()) + "\n";
  return renderPrometheus(stats(), extra);
}

void Server::signalCb(int sig, short, void* arg) {
  auto* self = static_cast<Server*>(arg);
  if (sig == SIGHUP)
    self->reload();
  else
    self->beginDrain();
}

void Server::housekeepingCb(int, short, void* arg) { static_cast<Server*>(arg)->housekeeping(); }

void Server::housekeeping() {
  saveRetirement();
  client_limits_.expire(ClientLimits::nowMs(), cfg_->limits.auth_failure_window_ms);
  // The directory file (e.g. a cron export from iRedMail's SQL) is reloaded when it changes.
  if (!cfg_->directory.file.empty()) {
    struct stat st{};
    if (::stat(cfg_->directory.file.c_str(), &st) == 0 && st.st_mtime != directory_mtime_) loadDirectory();
  }
}

// glibc keeps what the worker threads' arenas freed mapped: after a burst
// (10,000 slowloris TLS handshakes cost ~50 KB each) RSS would stay at the
// peak for good. When a burst recedes (at least 1,000 sessions closed since
// the last time, and the open sessions at most half of what they were at the
// previous tick, a second ago, or nearly none), the free pages go back to
// the system.
// Not during sustained load: the memory is reused then, and malloc_trim
// holds this thread (and each arena's lock) for tens of ms on a large heap
// (41 ms for ~190 MB). Found by scripts/soak: 2,000 unfinished handshakes
// left 120 MB resident after every session had closed; 21 MB after a trim.
void Server::releaseMemory() {
#ifdef __GLIBC__
  constexpr uint64_t kTrimAfterClosed = 1000;
  constexpr uint64_t kFewSessions = 64;
  const uint64_t active = stats().sessions_active.load();
  const uint64_t closed = stats().sessions_accepted.load() - active;
  const bool receding = active <= kFewSessions || active * 2 <= active_at_last_tick_;
  active_at_last_tick_ = active;
  if (closed - closed_at_trim_ < kTrimAfterClosed || !receding) return;
  closed_at_trim_ = closed;
  auto t0 = std::chrono::steady_clock::now();
  malloc_trim(0);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
  spdlog::debug("memory{}{}{}", kv("released_after_sessions", closed), kv("active", active),
                kv("trim_us", static_cast<uint64_t>(us)));
#endif
}

void Server::loadDirectory() {
  std::vector<std::string> warnings;
  if (!cfg_->directory.file.empty()) {
    struct stat st{};
    if (::stat(cfg_->directory.file.c_str(), &st) == 0) directory_mtime_ = st.st_mtime;
  }
  auto dir = conf::loadDirectory(cfg_->directory, warnings);
  for (const auto& w : warnings) spdlog::warn("directory{}", kv("warning", w));
  if (!cfg_->directory.file.empty() || !cfg_->directory.names.empty())
    spdlog::info("directory{}{}", kv("names", dir->size()),
                 kv("file", cfg_->directory.file.empty() ? "-" : cfg_->directory.file));
  std::lock_guard<std::mutex> lock(directory_mu_);
  directory_ = std::move(dir);
}

void Server::saveRetirement() {
  if (!retirement_) return;
  std::string err;
  if (!retirement_->save(err)) spdlog::warn("retirement{}", kv("error", err));
}

bool Server::reload(std::string* error_out) {
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
    if (error_out) {
      error_out->clear();
      for (const auto& e : errors) *error_out += (error_out->empty() ? "" : "; ") + e;
    }
    return false;
  }
  bool admin_changed = cfg_->admin.socket != loaded.config->admin.socket ||
                       cfg_->admin.mode != loaded.config->admin.mode || cfg_->admin.users != loaded.config->admin.users;
  cfg_ = loaded.config;
  tls_ = tls;
  setLogLevel(cfg_->server.log_level);
  loadDirectory();
  health_->configure(cfg_);
  saveRetirement();
  for (auto& w : workers_) {
    auto cfg = cfg_;
    auto t = tls_;
    w->post([cfg, t](Worker& worker) { worker.apply(cfg, t); });
  }
  if (admin_ && admin_changed) {
    admin_->close();
    if (!cfg_->admin.socket.empty()) admin_->open(cfg_->admin);
  }
  spdlog::info("reload{}", kv("result", "ok"));
  sdNotify("READY=1\nSTATUS=accepting connections");
  return true;
}

void Server::shutdownNow() {
  if (!draining_) beginDrain();
  beginDrain();  // the second call closes every session with its notice
}

void Server::collectSessions(std::function<void(std::vector<SessionInfo>)> done) {
  struct Gather {
    std::vector<SessionInfo> all;
    size_t remaining;
    std::function<void(std::vector<SessionInfo>)> done;
  };
  auto g = std::make_shared<Gather>(Gather{{}, workers_.size(), std::move(done)});
  Worker* home = workers_.front().get();
  for (auto& w : workers_)
    w->post([g, home](Worker& worker) {
      auto mine = worker.sessionInfos();
      home->post([g, mine = std::move(mine)](Worker&) mutable {
        for (auto& i : mine) g->all.push_back(std::move(i));
        if (--g->remaining == 0) g->done(std::move(g->all));
      });
    });
}

void Server::killSession(const std::string& id, std::function<void(bool)> done) {
  struct Gather {
    bool found = false;
    size_t remaining;
    std::function<void(bool)> done;
  };
  auto g = std::make_shared<Gather>(Gather{false, workers_.size(), std::move(done)});
  Worker* home = workers_.front().get();
  for (auto& w : workers_)
    w->post([g, home, id](Worker& worker) {
      bool found = worker.kill(id);
      home->post([g, found](Worker&) {
        g->found = g->found || found;
        if (--g->remaining == 0) g->done(g->found);
      });
    });
}

void Server::beginDrain() {
  bool immediately = draining_;
  if (immediately) spdlog::info("stop{}", kv("phase", "second signal, closing all sessions now"));
  draining_ = true;
  if (!immediately) {
    sdNotify("STOPPING=1");
    spdlog::info("stop{}", kv("drain_timeout_ms", cfg_->server.drain_timeout_ms));
    if (health_) health_->stop();
    if (housekeeping_timer_) evtimer_del(housekeeping_timer_);
    if (memory_timer_) evtimer_del(memory_timer_);
  }
  for (auto& w : workers_) w->post([immediately](Worker& worker) { worker.beginDrain(immediately); });
}

}  // namespace mailshim::proxy
