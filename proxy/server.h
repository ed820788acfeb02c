// Server: the process. It owns the workers (one event loop thread each, see
// worker.h), the current config snapshot and TLS contexts, and what all
// workers share: the display-name directory, the retirement store, backend
// health and the session-id counter (each thread-safe). Worker 0 runs on the
// main thread and also handles the signals and housekeeping: SIGHUP reloads
// (validate-then-swap, then every worker gets the new snapshot; a bad config
// keeps the old one and says why), SIGTERM/SIGINT drain (every worker stops
// accepting and lets its sessions finish up to drain_timeout_ms). Reports
// READY/RELOADING/STOPPING through sd_notify.
//
// I/O: threads, signals, timers (libevent).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "conf/config.h"
#include "protocols/common/directory.h"
#include "proxy/client_limits.h"
#include "proxy/retirement_store.h"
#include "proxy/upstream_health.h"
#include "tls/tls_context.h"

struct event;
struct evhttp;

namespace mailshim::proxy {

class Worker;
class AdminConsole;
struct SessionInfo;

class Server {
 public:
  Server(conf::ConfigConstSharedPtr cfg, tls::TlsContextsConstSharedPtr tls, size_t workers);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens every worker's listeners; false (with the reason logged) if any fails.
  bool start();
  // Runs until the drain finished. Returns the process exit code.
  int run();

  // SIGHUP and the console's RELOAD. False (with the reasons in *error) when
  // the new configuration was refused and the running one kept.
  bool reload(std::string* error = nullptr);
  void beginDrain();  // SIGTERM (a second call closes every session now)
  void shutdownNow();  // the console's SHUTDOWN

  // Admin console helpers (main thread). The callbacks run on the main thread.
  conf::ConfigConstSharedPtr config() const { return cfg_; }
  void collectSessions(std::function<void(std::vector<SessionInfo>)> done);
  void killSession(const std::string& id, std::function<void(bool found)> done);

  size_t workerCount() const { return workers_.size(); }

  // Shared, thread-safe.
  proto::DirectoryConstSharedPtr directory() const;
  RetirementStore& retirement() { return *retirement_; }
  UpstreamHealth& health() { return *health_; }
  ClientLimits& clientLimits() { return client_limits_; }
  std::string nextSessionId();

 private:
  static void signalCb(int sig, short, void* arg);
  static void housekeepingCb(int, short, void* arg);
  void housekeeping();
  void releaseMemory();
  void loadDirectory();
  void saveRetirement();
  bool startMetrics();
  std::string metricsText() const;

  conf::ConfigConstSharedPtr cfg_;  // main thread only
  tls::TlsContextsConstSharedPtr tls_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  event* sig_hup_ = nullptr;
  event* sig_term_ = nullptr;
  event* sig_int_ = nullptr;
  event* housekeeping_timer_ = nullptr;
  event* memory_timer_ = nullptr;  // releaseMemory() once a second
  evhttp* metrics_http_ = nullptr;
  std::unique_ptr<AdminConsole> admin_;
  mutable std::mutex directory_mu_;
  proto::DirectoryConstSharedPtr directory_;
  time_t directory_mtime_ = 0;
  std::unique_ptr<RetirementStore> retirement_;
  std::unique_ptr<UpstreamHealth> health_;
  ClientLimits client_limits_;
  bool draining_ = false;
  uint64_t closed_at_trim_ = 0;       // sessions closed when memory was last released
  uint64_t active_at_last_tick_ = 0;  // open sessions at the previous memory tick
  std::atomic<uint64_t> session_counter_{0};
  uint32_t session_salt_ = 0;
};

}  // namespace mailshim::proxy
