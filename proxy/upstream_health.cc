// UpstreamHealth. See upstream_health.h.
#include "proxy/upstream_health.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>

#include "proxy/log.h"
#include "proxy/net.h"
#include "proxy/stats.h"

namespace mailshim::proxy {
namespace {

// 64-bit FNV-1a, then a mix: stable across runs and hosts (rendezvous hashing
// must give every mailshim instance the same answer).
uint64_t hash64(const std::string& a, const std::string& b) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : a) h = (h ^ c) * 1099511628211ull;
  h = (h ^ 0xff) * 1099511628211ull;
  for (unsigned char c : b) h = (h ^ c) * 1099511628211ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

}  // namespace

struct UpstreamHealth::Probe {
  UpstreamHealth* owner = nullptr;
  std::string upstream;
  bool expect_greeting = true;
  std::string expected;  // greeting prefix
  bufferevent* bev = nullptr;
  event* timeout = nullptr;
  ~Probe() {
    if (bev) bufferevent_free(bev);
    if (timeout) event_free(timeout);
  }
};

UpstreamHealth::UpstreamHealth(event_base* base) : base_(base) {}

UpstreamHealth::~UpstreamHealth() { stop(); }

void UpstreamHealth::stop() {
  for (event* t : timers_) event_free(t);
  timers_.clear();
  timer_args_.clear();
  probes_.clear();
}

UpstreamHealth::Member* UpstreamHealth::find(const std::string& name) {
  for (auto& m : members_)
    if (m.name == name) return &m;
  return nullptr;
}

const UpstreamHealth::Member* UpstreamHealth::find(const std::string& name) const {
  for (const auto& m : members_)
    if (m.name == name) return &m;
  return nullptr;
}

std::vector<UpstreamHealth::Member> UpstreamHealth::members() const {
  std::lock_guard<std::mutex> lock(mu_);
  return members_;
}

void UpstreamHealth::configure(conf::ConfigConstSharedPtr cfg) {
  stop();
  std::lock_guard<std::mutex> lock(mu_);
  cfg_ = std::move(cfg);
  std::vector<Member> next;
  for (const auto& pool : cfg_->pools) {
    for (const auto& name : pool.upstreams) {
      Member m;
      if (const Member* old = find(name)) m = *old;  // keep state across reloads
      m.name = name;
      m.rise = pool.rise;
      m.fall = pool.fall;
      bool dup = false;
      for (const auto& n : next) dup = dup || n.name == name;
      if (!dup) next.push_back(m);
    }
  }
  members_ = std::move(next);
  for (size_t i = 0; i < cfg_->pools.size(); ++i) {
    auto arg = std::make_unique<TimerArg>(TimerArg{this, i});
    event* t = event_new(base_, -1, EV_PERSIST, timerCb, arg.get());
    uint32_t ms = cfg_->pools[i].health_interval_ms;
    timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
    evtimer_add(t, &tv);
    timers_.push_back(t);
    timer_args_.push_back(std::move(arg));
  }
}

void UpstreamHealth::timerCb(int, short, void* arg) {
  auto* a = static_cast<TimerArg*>(arg);
  const conf::Pool& pool = a->self->cfg_->pools[a->pool];
  for (const auto& name : pool.upstreams)
    if (const conf::Upstream* up = a->self->cfg_->findUpstream(name)) a->self->startProbe(*up, pool.health_timeout_ms);
}

void UpstreamHealth::startProbe(const conf::Upstream& up, uint32_t timeout_ms) {
  for (const auto& p : probes_)
    if (p->upstream == up.name) return;  // one probe at a time per member
  auto probe = std::make_unique<Probe>();
  Probe* p = probe.get();
  p->owner = this;
  p->upstream = up.name;
  p->expect_greeting = up.tls != proto::UpstreamTls::Implicit;
  p->expected = up.protocol == proto::Protocol::Smtp ? "220" : up.protocol == proto::Protocol::Imap ? "* OK" : "+OK";
  sockaddr_storage dst{};
  socklen_t dlen = 0;
  if (!makeSockaddr(up.host, up.port, dst, dlen)) return;
  int fd = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  if (!up.source_address.empty()) {
    sockaddr_storage src{};
    socklen_t slen = 0;
    if (makeSockaddr(up.source_address, 0, src, slen)) (void)bind(fd, reinterpret_cast<sockaddr*>(&src), slen);
  }
  p->bev = bufferevent_socket_new(base_, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
  bufferevent_setcb(
      p->bev,
      [](bufferevent* bev, void* arg) {
        auto* pr = static_cast<Probe*>(arg);
        evbuffer* in = bufferevent_get_input(bev);
        size_t n = evbuffer_get_length(in);
        if (n < pr->expected.size()) return;
        std::string head(pr->expected.size(), '\0');
        evbuffer_copyout(in, head.data(), head.size());
        pr->owner->probeDone(pr, head == pr->expected, "greeting: " + head);
      },
      nullptr,
      [](bufferevent*, short what, void* arg) {
        auto* pr = static_cast<Probe*>(arg);
        if (what & BEV_EVENT_CONNECTED) {
          if (!pr->expect_greeting) pr->owner->probeDone(pr, true, "");
          return;
        }
        pr->owner->probeDone(pr, false, (what & BEV_EVENT_EOF) ? "closed before the greeting" : "connect failed");
      },
      p);
  bufferevent_enable(p->bev, EV_READ);
  p->timeout = evtimer_new(
      base_, [](int, short, void* arg) { static_cast<Probe*>(arg)->owner->probeDone(static_cast<Probe*>(arg), false, "timeout"); },
      p);
  timeval tv{static_cast<time_t>(timeout_ms / 1000), static_cast<suseconds_t>((timeout_ms % 1000) * 1000)};
  evtimer_add(p->timeout, &tv);
  probes_.push_back(std::move(probe));
  if (bufferevent_socket_connect(p->bev, reinterpret_cast<sockaddr*>(&dst), static_cast<int>(dlen)) != 0)
    probeDone(p, false, "connect failed");
}

void UpstreamHealth::probeDone(Probe* p, bool ok, const std::string& why) {
  std::string name = p->upstream;
  // Free the probe after its callback returns (we may be inside it).
  auto it = std::find_if(probes_.begin(), probes_.end(), [p](const auto& q) { return q.get() == p; });
  if (it == probes_.end()) return;
  std::unique_ptr<Probe> done = std::move(*it);
  probes_.erase(it);
  bufferevent_disable(done->bev, EV_READ | EV_WRITE);
  evtimer_del(done->timeout);
  struct Deferred {
    std::unique_ptr<Probe> probe;
  };
  auto* d = new Deferred{std::move(done)};
  event_base_once(
      base_, -1, EV_TIMEOUT, [](int, short, void* arg) { delete static_cast<Deferred*>(arg); }, d, nullptr);
  if (ok)
    reportSuccess(name);
  else
    reportFailure(name, "health check: " + why);
}

void UpstreamHealth::reportSuccess(const std::string& upstream) {
  std::lock_guard<std::mutex> lock(mu_);
  Member* m = find(upstream);
  if (!m) return;
  m->fail_streak = 0;
  if (++m->ok_streak >= m->rise && !m->up) {
    m->up = true;
    spdlog::info("upstream-health{}{}", kv("upstream", upstream), kv("state", "up"));
  }
}

void UpstreamHealth::reportFailure(const std::string& upstream, const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  Member* m = find(upstream);
  if (!m) return;
  m->ok_streak = 0;
  if (++m->fail_streak >= m->fall && m->up) {
    m->up = false;
    stats().upstream_marked_down++;
    spdlog::warn("upstream-health{}{}{}", kv("upstream", upstream), kv("state", "down"), kv("reason", why));
  }
}

bool UpstreamHealth::isUp(const std::string& upstream) const {
  std::lock_guard<std::mutex> lock(mu_);
  const Member* m = find(upstream);
  return !m || m->up;
}

std::vector<int> UpstreamHealth::candidates(const conf::Config& cfg, const std::string& target,
                                            const std::string& user) const {
  const conf::Pool* pool = cfg.findPool(target);
  if (!pool) {
    int i = cfg.upstreamIndex(target);
    return i >= 0 ? std::vector<int>{i} : std::vector<int>{};
  }
  std::vector<std::pair<uint64_t, int>> ranked;
  for (size_t order = 0; order < pool->upstreams.size(); ++order) {
    const std::string& name = pool->upstreams[order];
    int i = cfg.upstreamIndex(name);
    if (i < 0 || !isUp(name)) continue;
    uint64_t key = pool->user_affinity && !user.empty() ? ~hash64(lower(user), name)  // highest weight first
                                                        : static_cast<uint64_t>(order);
    ranked.emplace_back(key, i);
  }
  std::sort(ranked.begin(), ranked.end());
  std::vector<int> out;
  for (const auto& r : ranked) out.push_back(r.second);
  return out;
}

}  // namespace mailshim::proxy
