// Session: one client connection and, after AUTH, its backend connection. The
// only place where a protocol phase meets sockets: it feeds the phases'
// events (bytes, TLS up, connected, timeouts) and executes the Actions they
// return (send, STARTTLS, connect, authenticate, enter relay, close). After
// login it runs the one generic relay: bounded buffers with backpressure both
// ways, an idle timeout, and an optional protocol RelayFilter (SMTP).
//
// Every close goes through close(reason), which logs the one disconnect line.
//
// I/O: sockets and TLS via libevent bufferevents.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <map>

#include "conf/config.h"
#include "protocols/common/fingerprint.h"
#include "protocols/common/phase.h"
#include "tls/tls_context.h"

struct bufferevent;
struct event;
struct sockaddr;

namespace mailshim::proxy {

class Worker;

// A snapshot of one session for the admin console (SHOW SESSIONS).
struct SessionInfo {
  std::string id, listener, protocol, state, client_ip, user, rule;
  size_t worker = 0;
  uint64_t age_ms = 0, bytes_in = 0, bytes_out = 0;
};

class Session {
 public:
  // Takes ownership of `fd` (accepted socket).
  Session(Worker& server, conf::ConfigConstSharedPtr cfg, tls::TlsContextsConstSharedPtr tls,
          const conf::Listener& listener, int fd, const sockaddr* peer);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start();
  // Closes with the protocol's notice for `reason` (shutdown, kill).
  void shutdown(proto::CloseReason reason);
  const std::string& id() const { return ctx_.session_id; }
  SessionInfo info() const;  // on the session's own thread

 private:
  enum class State { ProxyHeader, Sniffing, TlsHandshake, Front, Login, Relay, Closing };

  static std::string_view stateName(State s);
  void setState(State s);  // keeps the sessions{listener,state} gauge
  void run(proto::Actions&& actions);
  void execute(proto::Action& action);
  void close(proto::CloseReason reason);
  void scheduleDestroy();
  size_t pendingDownOutput() const;  // bytes not yet handed to the kernel

  // downstream
  void onDownRead();
  void pumpDown();  // TLS records read ahead by OpenSSL (tls_read_ahead.h)
  void onDownEvent(short what);
  void startDownstreamTls();  // after STARTTLS: stack TLS on the client socket
  bool wrapDownstreamTls();  // stacks an OpenSSL filter on down_
  void startFront();
  void classify();       // connect-time rules and TLS profile for the client address
  void logConnect();
  void beginClient();    // after accept (or the PROXY header): TLS, sniff or greeting
  void onProxyHeader(bool timed_out);
  bool rejectUntrustedProxyHeader(std::string_view first);  // true: closed
  void onSniff(bool timed_out);
  void logHandshakeFailure(const std::string& error);
  // upstream
  // Creates the upstream login phase and connects, unless already done.
  bool ensureUpstream(const std::string& user);
  bool chooseUpstream(const std::string& user);  // next untried healthy candidate
  void connectUpstream();
  void onUpRead();
  void onUpEvent(short what);
  void upstreamFailed(const std::string& why, bool tls_problem);
  void startUpstreamTls();
  // relay
  void enterRelay(proto::EnterRelay& r);
  void relayDownToUp();
  void relayUpToDown();
  void applyBackpressure(bufferevent* from, bufferevent* to);
  void onDrained(bufferevent* to);

  void armTimer(uint32_t ms);
  void onTimer();
  void armUpTimer(uint32_t ms);
  // Abuse limits: the per-address session slot, the login deadline and the
  // delayed reply to a failed login.
  void takeAddressSlot();
  void deliverLoginResult(const proto::LoginResult& r);
  void closeWithNotice(proto::CloseReason reason);

  std::string tag() const;  // "session=... rip=..." prefix for log lines
  void applyDecision(const conf::RuleDecision& d);
  std::string currentFingerprint();
  // Counts, logs and remembers (for the retirement report) one quirk use.
  void noteQuirk(proto::Quirk q, const std::string& detail);

  static void downReadCb(bufferevent*, void* arg);
  static void downWriteCb(bufferevent*, void* arg);
  static void downEventCb(bufferevent*, short what, void* arg);
  static void upReadCb(bufferevent*, void* arg);
  static void upWriteCb(bufferevent*, void* arg);
  static void upEventCb(bufferevent*, short what, void* arg);
  static void timerCb(int, short, void* arg);
  static void upTimerCb(int, short, void* arg);
  static void destroyCb(int, short, void* arg);
  static void loginDeadlineCb(int, short, void* arg);
  static void authDelayCb(int, short, void* arg);

  Worker& server_;  // the worker (thread) this session lives on
  conf::ConfigConstSharedPtr cfg_;
  tls::TlsContextsConstSharedPtr tls_;
  const conf::Listener& listener_;  // lives in *cfg_
  const conf::Upstream* upstream_ = nullptr;
  size_t upstream_index_ = 0;
  proto::SessionContext ctx_;
  proto::UpstreamContext up_ctx_;
  tls::Profile profile_ = tls::Profile::Modern;
  tls::HelloInfo hello_;  // filled by the ClientHello callback
  conf::IpAddress address_;
  bool via_proxy_ = false;  // connection from a trusted load balancer
  std::string proxy_ip_;
  conf::Date today_;
  conf::RuleDecision decision_;                       // rules at connect time
  std::optional<conf::RuleDecision> login_decision_;  // rules at login (user, fingerprint known)
  proto::FingerprintInput fp_;
  std::map<proto::Quirk, std::pair<uint64_t, uint64_t>> quirk_uses_;  // count, overdue
  std::unique_ptr<proto::FrontPhase> front_;
  std::unique_ptr<proto::UpstreamLogin> login_;
  std::unique_ptr<proto::RelayFilter> filter_;

  bufferevent* down_ = nullptr;
  bufferevent* up_ = nullptr;
  event* timer_ = nullptr;
  event* up_timer_ = nullptr;
  event* destroy_ev_ = nullptr;
  event* login_deadline_ = nullptr;
  event* auth_delay_ = nullptr;
  conf::Limits limits_;                  // effective abuse limits (connect-time rule)
  bool slot_held_ = false;               // counted in ClientLimits for address_
  bool over_limit_ = false;              // refused at the greeting: too many sessions
  bool preauth_held_ = false;            // counted in ClientLimits' pre-login sessions
  uint32_t auth_failures_ = 0;           // failed logins in this session
  std::optional<proto::LoginResult> delayed_result_;
  State state_ = State::Front;
  bool up_connected_ = false;
  bool up_tls_ = false;          // upstream leg is TLS now
  bool up_tls_pending_ = false;  // upstream handshake in progress
  bool down_tls_pending_ = false;
  bool login_pending_ = false;
  bool client_eof_ = false;      // client half-closed during the relay
  std::optional<proto::Authenticate> pending_auth_;  // for failover to another pool member
  std::vector<int> tried_;                            // upstream indexes tried for this login   // an Authenticate awaits its LoginDone
  bool down_paused_ = false;  // reading paused by backpressure
  bool up_paused_ = false;
  bool destroying_ = false;
  int running_ = 0;           // depth of run(); destroy waits for 0
  std::optional<proto::CloseReason> close_reason_;
  std::string user_;
  std::string helo_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point last_activity_;
  std::chrono::steady_clock::time_point closing_since_;
  std::chrono::steady_clock::time_point login_started_;
  std::chrono::steady_clock::time_point up_connect_started_;
  uint64_t bytes_from_client_ = 0;
  uint64_t bytes_from_backend_ = 0;
};

}  // namespace mailshim::proxy
