// Server: owns the event loop, the listeners, the current config snapshot
// with its TLS contexts, and the set of live sessions. Handles the signals:
// SIGHUP reloads (validate-then-swap; a bad config keeps the old one and says
// why), SIGTERM/SIGINT drain (stop accepting, let sessions finish up to
// drain_timeout_ms, then close the rest with the protocol's shutdown notice).
// Reports READY/RELOADING/STOPPING through sd_notify.
//
// I/O: sockets, signals, timers (libevent).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_set>

#include "conf/config.h"
#include "protocols/common/directory.h"
#include "proxy/retirement_store.h"
#include "proxy/upstream_health.h"
#include "tls/tls_context.h"

struct event_base;
struct event;
struct evconnlistener;
struct sockaddr;

namespace mailshim::proxy {

class Session;

class Server {
 public:
  Server(conf::ConfigConstSharedPtr cfg, tls::TlsContextsConstSharedPtr tls);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens the listeners; false (with the reason logged) if any fails.
  bool start();
  // Runs the loop until the drain finished. Returns the process exit code.
  int run();

  // Called by SIGHUP; public for the admin console later.
  void reload();
  // Begins the graceful stop (SIGTERM).
  void beginDrain();

  event_base* base() const { return base_; }
  const conf::ConfigConstSharedPtr& config() const { return cfg_; }
  const tls::TlsContextsConstSharedPtr& tls() const { return tls_; }

  const proto::DirectoryConstSharedPtr& directory() const { return directory_; }
  RetirementStore& retirement() { return *retirement_; }
  UpstreamHealth& health() { return *health_; }

  // Session bookkeeping (called by Session only).
  void sessionClosed(Session* s);
  std::string nextSessionId();

 private:
  struct ListenerSlot {
    Server* server;
    std::string name;  // matches conf::Listener::name in the current config
    std::string key;   // "address:port"
    evconnlistener* lev = nullptr;
    ~ListenerSlot();
  };

  bool openListener(const conf::Listener& l);
  void syncListeners();
  void onAccept(ListenerSlot& slot, int fd, sockaddr* addr, int socklen);
  void maybeFinishDrain();

  static void acceptCb(evconnlistener*, int fd, sockaddr* addr, int socklen, void* arg);
  static void signalCb(int sig, short, void* arg);
  static void drainTimeoutCb(int, short, void* arg);
  static void housekeepingCb(int, short, void* arg);
  void housekeeping();
  void loadDirectory();
  void saveRetirement();

  event_base* base_ = nullptr;
  conf::ConfigConstSharedPtr cfg_;
  tls::TlsContextsConstSharedPtr tls_;
  std::map<std::string, std::unique_ptr<ListenerSlot>> listeners_;  // by "address:port"
  std::unordered_set<Session*> sessions_;
  event* sig_hup_ = nullptr;
  event* sig_term_ = nullptr;
  event* sig_int_ = nullptr;
  event* drain_timer_ = nullptr;
  event* housekeeping_timer_ = nullptr;
  proto::DirectoryConstSharedPtr directory_;
  time_t directory_mtime_ = 0;
  std::unique_ptr<RetirementStore> retirement_;
  std::unique_ptr<UpstreamHealth> health_;
  bool draining_ = false;
  uint64_t session_counter_ = 0;
  uint32_t session_salt_ = 0;
};

}  // namespace mailshim::proxy
