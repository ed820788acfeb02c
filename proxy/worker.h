// Worker: one thread with its own libevent loop, its own SO_REUSEPORT
// listener sockets (the kernel spreads new connections over the workers) and
// the sessions it accepted. A worker holds the config snapshot and TLS
// contexts it was last given; the Server hands every worker a new snapshot on
// reload and asks each to drain on SIGTERM, through post(), the only
// cross-thread entry point.
//
// I/O: sockets, timers (libevent).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "conf/config.h"
#include "protocols/common/directory.h"
#include "tls/tls_context.h"

struct event_base;
struct event;
struct evconnlistener;
struct sockaddr;

namespace mailshim::proxy {

class Server;
class Session;
struct SessionInfo;
class RetirementStore;
class ClientLimits;
class UpstreamHealth;

class Worker {
 public:
  Worker(Server& server, size_t index, conf::ConfigConstSharedPtr cfg, tls::TlsContextsConstSharedPtr tls);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Opens this worker's listener sockets; false (logged) if any fails.
  bool openListeners();
  // Runs the loop until the worker has drained.
  void run();
  // Thread-safe: runs `task` on this worker's thread.
  void post(std::function<void(Worker&)> task);

  // On the worker's thread:
  void apply(conf::ConfigConstSharedPtr cfg, tls::TlsContextsConstSharedPtr tls);
  void beginDrain(bool immediately);

  size_t index() const { return index_; }
  event_base* base() const { return base_; }
  Server& server() { return server_; }

  // Shared services, forwarded to the Server (thread-safe there).
  proto::DirectoryConstSharedPtr directory() const;
  RetirementStore& retirement();
  UpstreamHealth& health();
  ClientLimits& clientLimits();
  std::string nextSessionId();
  void sessionClosed(Session* s);
  // On the worker's thread: the admin console's view and KILL.
  std::vector<SessionInfo> sessionInfos() const;
  bool kill(const std::string& session_id);

 private:
  struct ListenerSlot {
    Worker* worker;
    std::string name;
    std::string key;
    evconnlistener* lev = nullptr;
    ~ListenerSlot();
  };

  bool openListener(const conf::Listener& l);
  void syncListeners();
  void onAccept(ListenerSlot& slot, int fd, sockaddr* addr);
  void maybeFinishDrain();
  static void acceptCb(evconnlistener*, int fd, sockaddr* addr, int socklen, void* arg);
  static void postedCb(int, short, void* arg);
  static void drainTimeoutCb(int, short, void* arg);

  Server& server_;
  size_t index_;
  event_base* base_ = nullptr;
  conf::ConfigConstSharedPtr cfg_;
  tls::TlsContextsConstSharedPtr tls_;
  std::map<std::string, std::unique_ptr<ListenerSlot>> listeners_;
  std::unordered_set<Session*> sessions_;
  event* posted_ev_ = nullptr;
  event* drain_timer_ = nullptr;
  std::mutex posted_mu_;
  std::vector<std::function<void(Worker&)>> posted_;
  bool draining_ = false;
};

}  // namespace mailshim::proxy
