// Worker. See worker.h.
#include "proxy/worker.h"

#include <event2/event.h>
#include <event2/listener.h>
#include <unistd.h>

#include "proxy/log.h"
#include "proxy/net.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/stats.h"

namespace mailshim::proxy {
namespace {

std::string listenerKey(const conf::Listener& l) { return l.address + ":" + std::to_string(l.port); }

}  // namespace

Worker::ListenerSlot::~ListenerSlot() {
  if (lev) evconnlistener_free(lev);
}

Worker::Worker(Server& server, size_t index, conf::ConfigConstSharedPtr cfg, tls::TlsContextsConstSharedPtr tls)
    : server_(server), index_(index), cfg_(std::move(cfg)), tls_(std::move(tls)) {
  // No EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST, although it saves ~10 of the
  // ~30 epoll_ctl per IMAPS session: it defers a closed socket's epoll_ctl
  // to the next loop iteration, and with several workers another thread may
  // have accepted a new connection on the same fd number by then
  // (ThreadSanitizer reported exactly that: worker 1's deferred epoll_ctl on
  // an fd worker 0 had just accepted).
  base_ = event_base_new();
  posted_ev_ = event_new(base_, -1, 0, postedCb, this);
}

Worker::~Worker() {
  std::vector<Session*> left(sessions_.begin(), sessions_.end());
  for (Session* s : left) delete s;
  listeners_.clear();
  if (posted_ev_) event_free(posted_ev_);
  if (drain_timer_) event_free(drain_timer_);
  if (base_) event_base_free(base_);
}

proto::DirectoryConstSharedPtr Worker::directory() const { return server_.directory(); }
RetirementStore& Worker::retirement() { return server_.retirement(); }
UpstreamHealth& Worker::health() { return server_.health(); }
ClientLimits& Worker::clientLimits() { return server_.clientLimits(); }
std::string Worker::nextSessionId() { return server_.nextSessionId(); }

void Worker::post(std::function<void(Worker&)> task) {
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    posted_.push_back(std::move(task));
  }
  event_active(posted_ev_, 0, 0);  // thread-safe with evthread_use_pthreads()
}

void Worker::postedCb(int, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  std::vector<std::function<void(Worker&)>> tasks;
  {
    std::lock_guard<std::mutex> lock(self->posted_mu_);
    tasks.swap(self->posted_);
  }
  for (auto& t : tasks) t(*self);
}

bool Worker::openListener(const conf::Listener& l) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!makeSockaddr(l.address, l.port, ss, len)) {
    spdlog::error("listen{}{}{}", kv("listener", l.name), kv("address", l.address), kv("error", "bad address"));
    return false;
  }
  auto slot = std::make_unique<ListenerSlot>();
  slot->worker = this;
  slot->name = l.name;
  slot->key = listenerKey(l);
  // SO_REUSEPORT: every worker binds the same address; the kernel balances.
  slot->lev = evconnlistener_new_bind(
      base_, acceptCb, slot.get(),
      LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 1024,
      reinterpret_cast<sockaddr*>(&ss), static_cast<int>(len));
  if (!slot->lev) {
    spdlog::error("listen{}{}{}{}", kv("listener", l.name), kv("address", l.address), kv("port", l.port),
                  kv("error", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR())));
    return false;
  }
  if (index_ == 0)
    spdlog::info("listen{}{}{}{}{}{}", kv("listener", l.name), kv("proto", proto::protocolName(l.protocol)),
                 kv("address", l.address), kv("port", l.port),
                 kv("tls", l.tls == conf::ListenerTls::Implicit ? "implicit"
                           : l.tls == conf::ListenerTls::Auto   ? "auto"
                                                                : "starttls"),
                 kv("workers", server_.workerCount()));
  listeners_[slot->key] = std::move(slot);
  return true;
}

bool Worker::openListeners() {
  for (const auto& l : cfg_->listeners)
    if (!openListener(l)) return false;
  return true;
}

void Worker::syncListeners() {
  std::map<std::string, const conf::Listener*> wanted;
  for (const auto& l : cfg_->listeners) wanted[listenerKey(l)] = &l;
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    auto w = wanted.find(it->first);
    if (w == wanted.end()) {
      if (index_ == 0) spdlog::info("unlisten{}{}", kv("listener", it->second->name), kv("address", it->first));
      it = listeners_.erase(it);
    } else {
      it->second->name = w->second->name;
      ++it;
    }
  }
  for (const auto& [key, l] : wanted)
    if (!listeners_.count(key)) openListener(*l);
}

void Worker::apply(conf::ConfigConstSharedPtr cfg, tls::TlsContextsConstSharedPtr tls) {
  cfg_ = std::move(cfg);
  tls_ = std::move(tls);
  if (!draining_) syncListeners();
}

void Worker::run() { event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY); }

void Worker::acceptCb(evconnlistener*, int fd, sockaddr* addr, int, void* arg) {
  auto* slot = static_cast<ListenerSlot*>(arg);
  slot->worker->onAccept(*slot, fd, addr);
}

void Worker::onAccept(ListenerSlot& slot, int fd, sockaddr* addr) {
  const conf::Listener* listener = nullptr;
  for (const auto& l : cfg_->listeners)
    if (l.name == slot.name) listener = &l;
  if (draining_ || !listener) {
    ::close(fd);
    return;
  }
  evutil_make_socket_nonblocking(fd);
  stats().worker_sessions[index_ % stats().worker_sessions.size()]++;
  auto* s = new Session(*this, cfg_, tls_, *listener, fd, addr);
  sessions_.insert(s);
  s->start();
}

std::vector<SessionInfo> Worker::sessionInfos() const {
  std::vector<SessionInfo> out;
  out.reserve(sessions_.size());
  for (const Session* s : sessions_) out.push_back(s->info());
  return out;
}

bool Worker::kill(const std::string& session_id) {
  for (Session* s : sessions_)
    if (s->id() == session_id) {
      spdlog::info("kill{}{}", kv("session", session_id), kv("by", "admin"));
      s->shutdown(proto::CloseReason::Killed);
      return true;
    }
  return false;
}

void Worker::sessionClosed(Session* s) {
  sessions_.erase(s);
  maybeFinishDrain();
}

void Worker::beginDrain(bool immediately) {
  if (draining_ && !immediately) return;
  if (immediately) {
    std::vector<Session*> all(sessions_.begin(), sessions_.end());
    for (Session* s : all) s->shutdown(proto::CloseReason::Shutdown);
    timeval tv{1, 0};
    event_base_loopexit(base_, &tv);
    return;
  }
  draining_ = true;
  listeners_.clear();
  drain_timer_ = evtimer_new(base_, drainTimeoutCb, this);
  timeval tv{static_cast<time_t>(cfg_->server.drain_timeout_ms / 1000),
             static_cast<suseconds_t>((cfg_->server.drain_timeout_ms % 1000) * 1000)};
  evtimer_add(drain_timer_, &tv);
  maybeFinishDrain();
}

void Worker::drainTimeoutCb(int, short, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  if (!self->sessions_.empty())
    spdlog::info("stop{}{}{}", kv("phase", "drain timeout"), kv("worker", self->index_),
                 kv("closing", self->sessions_.size()));
  self->beginDrain(true);
}

void Worker::maybeFinishDrain() {
  if (draining_ && sessions_.empty()) event_base_loopexit(base_, nullptr);
}

}  // namespace mailshim::proxy
