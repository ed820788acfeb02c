// UpstreamHealth: which backends are up, and which one a new session uses.
//
// Every upstream that belongs to a [[pool]] is checked actively (connect and,
// for plaintext/STARTTLS backends, its greeting: "220", "* OK", "+OK") every
// health_interval_ms; sessions report connect failures passively. A member
// goes down after `fall` consecutive failures and comes back after `rise`
// consecutive good checks; each transition is logged. Selection for a new
// session: the healthy members of the pool, in preference order — by
// rendezvous hashing of the user name for affinity = "user" (so a user's
// sessions meet on one Dovecot while it is up, and only that user's sessions
// move when it goes down), else in configured order. A plain [[upstream]]
// target is always a candidate.
//
// Thread-safe: configure()/stop() and the probes belong to worker 0's thread;
// candidates()/report*()/isUp() may be called from any worker.
//
// I/O: probe connections (libevent).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "conf/config.h"

struct event_base;
struct event;

namespace mailshim::proxy {

class UpstreamHealth {
 public:
  explicit UpstreamHealth(event_base* base);
  ~UpstreamHealth();
  UpstreamHealth(const UpstreamHealth&) = delete;
  UpstreamHealth& operator=(const UpstreamHealth&) = delete;

  // (Re)starts the checks for `cfg`; state is kept for upstreams whose name
  // survives a reload.
  void configure(conf::ConfigConstSharedPtr cfg);
  void stop();

  // Upstream indexes (into cfg.upstreams) to try, best first. Empty when the
  // target is a pool whose members are all down.
  std::vector<int> candidates(const conf::Config& cfg, const std::string& target, const std::string& user) const;

  void reportSuccess(const std::string& upstream);
  void reportFailure(const std::string& upstream, const std::string& why);
  bool isUp(const std::string& upstream) const;

  struct Member {
    std::string name;
    bool up = true;
    uint32_t ok_streak = 0;
    uint32_t fail_streak = 0;
    uint32_t rise = 2, fall = 2;
  };
  std::vector<Member> members() const;

 private:
  struct Probe;
  Member* find(const std::string& name);
  const Member* find(const std::string& name) const;
  void scheduleChecks();
  void startProbe(const conf::Upstream& up, uint32_t timeout_ms);
  void probeDone(Probe* p, bool ok, const std::string& why);
  static void timerCb(int, short, void* arg);

  event_base* base_;
  conf::ConfigConstSharedPtr cfg_;
  // members_ is read and updated by every worker thread (sessions report
  // connect results, pick candidates); the probes run on worker 0's loop.
  mutable std::mutex mu_;
  std::vector<Member> members_;
  std::vector<event*> timers_;  // one per pool
  std::vector<std::unique_ptr<Probe>> probes_;
  struct TimerArg {
    UpstreamHealth* self;
    size_t pool;
  };
  std::vector<std::unique_ptr<TimerArg>> timer_args_;
};

}  // namespace mailshim::proxy
