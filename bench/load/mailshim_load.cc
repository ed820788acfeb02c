// mailshim-load: a load generator for SMTP submission, IMAP and POP3 through
// a TLS-terminating mail proxy (mailshim, nginx mail, HAProxy) or straight to
// a backend. libevent + OpenSSL, one event loop, one small state machine per
// connection; TCP_NODELAY on every socket.
//
// Sessions
//   smtp  greeting, EHLO, [STARTTLS, EHLO], AUTH PLAIN|LOGIN, N x (MAIL, RCPT,
//         DATA of --msg-size bytes), QUIT          (implicit TLS: port 465)
//   imap  greeting, [STARTTLS], LOGIN | AUTHENTICATE PLAIN, --actions from
//         select,fetch,noop,idle (IDLE then DONE after --idle-ms), LOGOUT
//   pop3  greeting, [STLS], USER/PASS | AUTH PLAIN, --actions from
//         stat,list,retr,noop, QUIT
// Modes
//   closed  -c concurrent sessions, -n total or -d seconds
//   open    --rate sessions/s (constant, or --poisson); latency is measured
//           from each session's intended start (no coordinated omission)
//   hold    --hold N connections stopped --hold-at tls|starttls|login, held for
//           --hold-secs (or until SIGUSR1), then closed; samples the target's
//           RSS before, while held and after close
//   bulk    one session (or -n in sequence) with a large DATA or FETCH/RETR;
//           reports MB/s and the target's ms of CPU per MB
// Output: JSON (stdout or --json FILE): per-phase latency histograms, errors by
// class, bytes, own CPU per session, the target's CPU (utime+stime from
// /proc/PID/stat and ns-precise schedstat) and VmRSS sampled at start, end and
// every --sample-ms.
// Safety: loopback targets only; connections capped below the fd limit;
// --max-sessions and --max-duration caps; SIGINT prints the JSON so far.
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bench_util.h"

namespace {

using bench::Hist;
using bench::JObj;
using bench::nowUs;

enum class Proto { Smtp, Imap, Pop3 };
enum class TlsMode { None, Implicit, Starttls };
enum class Mode { Closed, Open, Hold, Bulk };
enum class HoldAt { Tls, Starttls, Login };
enum class StopAfter { Full, Connect, Tls, Greeting, Login };

struct Options {
  Proto proto = Proto::Imap;
  std::string host = "127.0.0.1";
  int port = 0;
  TlsMode tls = TlsMode::Implicit;
  std::string auth = "";  // smtp: plain|login; imap: login|plain; pop3: user|plain
  bool sasl_ir = false;   // IMAP AUTHENTICATE PLAIN with an initial response
  std::string user = "user%d";
  std::string pass = "pass";
  std::vector<std::string> actions;  // imap/pop3 actions after login
  size_t msg_size = 1024;            // smtp DATA size
  int msgs = 1;                      // smtp messages per session
  uint32_t idle_ms = 100;
  Mode mode = Mode::Closed;
  long concurrency = 10;
  uint64_t total = 0;    // sessions (0: use duration)
  double duration = 0;   // seconds
  double rate = 0;       // open loop sessions/s
  bool poisson = false;
  long hold_n = 0;
  HoldAt hold_at = HoldAt::Tls;
  double hold_secs = 3;
  double settle_secs = 2;
  StopAfter stop_after = StopAfter::Full;
  // TLS
  std::string tls_min = "1.2", tls_max = "1.3", groups, ciphersuites, ciphers, sni = "localhost";
  double resume = 0;
  bool release_buffers = true;
  // target process sampling
  std::vector<int> pids;
  uint32_t sample_ms = 1000;
  // caps
  long max_conns = 0;
  uint64_t max_sessions = 10000000;
  double max_duration = 1800;
  uint32_t timeout_ms = 15000;
  std::string label;
  std::string json_out;
};

Options O;
event_base* g_base = nullptr;
SSL_CTX* g_ctx = nullptr;
SSL_SESSION* g_session = nullptr;  // the latest session the server gave us
std::mt19937_64 g_rng(12345);
std::string g_msg_head;    // SMTP message headers (+ small body)
std::string g_block;       // 256 KiB of body lines for streaming
std::string g_small_body;  // whole message when it fits in one block

// --- results -----------------------------------------------------------------

enum Phase { kStartDelay, kConnect, kGreeting, kTls, kAuth, kTransaction, kQuit, kTotal, kPhases };
const char* kPhaseNames[kPhases] = {"start_delay", "connect", "greeting", "tls", "auth", "transaction", "quit", "total"};

struct TargetTrack {
  int pid = 0;
  bench::ProcSample first, last;
  long rss_peak = 0;
  std::vector<std::string> samples;  // JSON objects
  std::map<std::string, bench::ProcSample> marks;
};

struct Results {
  Hist phase[kPhases];
  std::map<std::string, uint64_t> errors;
  uint64_t started = 0, completed = 0, failed = 0, held = 0, tls_full = 0, tls_resumed = 0;
  uint64_t bytes_sent = 0, bytes_received = 0;
  uint64_t tx_bytes = 0;   // payload bytes moved in transaction phases
  uint64_t tx_us = 0;      // summed transaction time
  uint64_t t0 = 0, t_end = 0;
  double cpu0 = 0, cpu1 = 0;
  std::vector<TargetTrack> targets;
  bool interrupted = false;
  std::string stop_reason;
} R;

void sampleTargets(const std::string& mark) {
  double t = double(nowUs() - R.t0) / 1e6;
  for (auto& tt : R.targets) {
    bench::ProcSample s = bench::sampleProc(tt.pid);
    if (!s.ok) continue;
    if (!tt.first.ok) tt.first = s;
    tt.last = s;
    tt.rss_peak = std::max(tt.rss_peak, s.rss_kb);
    if (!mark.empty()) tt.marks[mark] = s;
    tt.samples.push_back(JObj()
                             .num("t_s", t)
                             .num("cpu_ms_stat", s.cpu_ms_stat)
                             .num("cpu_ms_sched", s.cpu_ms_sched)
                             .num("rss_kb", uint64_t(s.rss_kb))
                             .str("mark", mark)
                             .done());
  }
}

void addError(const std::string& cls) { R.errors[cls]++; }

// --- helpers -----------------------------------------------------------------

std::string b64(std::string_view in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  while (i + 2 < in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += t[v & 63];
    i += 3;
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string userFor(uint64_t idx) {
  std::string u = O.user;
  size_t p = u.find("%d");
  if (p != std::string::npos) u.replace(p, 2, std::to_string(idx));
  return u;
}

std::string imapQuote(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o + "\"";
}

int tlsVersion(const std::string& v) {
  if (v == "1.0") return TLS1_VERSION;
  if (v == "1.1") return TLS1_1_VERSION;
  if (v == "1.2") return TLS1_2_VERSION;
  if (v == "1.3") return TLS1_3_VERSION;
  return -1;
}

// Keeps a private copy of the newest session: the connection's own object is
// marked non-resumable if that connection later ends without a shutdown.
// TLS 1.3 tickets are single-use for OpenSSL servers: they also go to a pool,
// and each resuming connection takes one of its own while there are any.
std::deque<SSL_SESSION*> g_ticket_pool;
int newSessionCb(SSL*, SSL_SESSION* sess) {
  if (SSL_SESSION* copy = SSL_SESSION_dup(sess)) {
    if (g_session) SSL_SESSION_free(g_session);
    g_session = copy;
  }
  if (SSL_SESSION_get_protocol_version(sess) == TLS1_3_VERSION && g_ticket_pool.size() < 4096) {
    if (SSL_SESSION* copy = SSL_SESSION_dup(sess)) g_ticket_pool.push_back(copy);
  }
  return 0;
}

class Conn;
void connHeld(Conn* c);
void connClosed(Conn* c, bool was_held);
void launchMore();
void reap(Conn* c);

// --- one connection ------------------------------------------------------------

class Conn {
 public:
  enum class St {
    Connecting, TlsImplicit, Greeting, Ehlo1, StarttlsCmd, TlsStarttls, Ehlo2,
    AuthUser, AuthPass, AuthFinal, Mail, Rcpt, Data, DataEnd, Action, IdleCont, IdleDone, Quit, Held, Done
  };

  Conn(uint64_t idx, uint64_t intended) : idx_(idx), t_intended_(intended) {}

  void start() {
    t_start_ = nowUs();
    R.started++;
    sockaddr_storage ss{};
    socklen_t slen = 0;
    bench::parseAddr(O.host, O.port, ss, slen);
    fd_ = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      fail(errno == EMFILE || errno == ENFILE ? "fd_exhausted" : "socket_error");
      return;
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bev_ = bufferevent_socket_new(g_base, fd_, 0);
    setup();
    st_ = St::Connecting;
    // A synchronous failure is reported through the event callback first.
    int r = bufferevent_socket_connect(bev_, reinterpret_cast<sockaddr*>(&ss), static_cast<int>(slen));
    if (r != 0 && st_ != St::Done) fail(errno == ECONNREFUSED ? "connect_refused" : "connect_error");
  }

  // Hold mode: close a held connection.
  void release() {
    finish(true, false);
  }
  bool held() const { return st_ == St::Held; }

 private:
  void setup() {
    bufferevent_setcb(bev_, readCb, writeCb, eventCb, this);
    bufferevent_set_max_single_read(bev_, 256 * 1024);
    bufferevent_set_max_single_write(bev_, 256 * 1024);
    armTimeout(true);
    bufferevent_enable(bev_, EV_READ | EV_WRITE);
  }
  void armTimeout(bool on) {
    if (on) {
      timeval tv{static_cast<time_t>(O.timeout_ms / 1000), static_cast<suseconds_t>((O.timeout_ms % 1000) * 1000)};
      bufferevent_set_timeouts(bev_, &tv, &tv);
    } else {
      bufferevent_set_timeouts(bev_, nullptr, nullptr);
    }
  }

  static void readCb(bufferevent*, void* a) { static_cast<Conn*>(a)->onRead(); }
  static void writeCb(bufferevent*, void* a) { static_cast<Conn*>(a)->onWritten(); }
  static void eventCb(bufferevent*, short what, void* a) { static_cast<Conn*>(a)->onEvent(what); }
  static void idleTimerCb(evutil_socket_t, short, void* a) { static_cast<Conn*>(a)->onIdleTimer(); }

  const char* stName() const {
    static const char* n[] = {"connect", "tls", "greeting", "ehlo", "starttls", "tls", "ehlo2",
                              "auth", "auth", "auth", "mail", "rcpt", "data", "data_end", "action", "idle",
                              "idle_done", "quit", "held", "done"};
    return n[static_cast<int>(st_)];
  }

  void send(const std::string& s) {
    R.bytes_sent += s.size();
    bufferevent_write(bev_, s.data(), s.size());
  }

  void fail(const std::string& cls) {
    addError(cls);
    finish(false, true);
  }

  void finish(bool ok, bool error) {
    if (st_ == St::Done) return;
    bool was_held = st_ == St::Held;
    st_ = St::Done;
    if (idle_timer_) {
      event_free(idle_timer_);
      idle_timer_ = nullptr;
    }
    if (bev_) {
      // SSL_free() without a shutdown marks the session "bad" (not resumable,
      // ssl_clear_bad_session): mark a clean end so the saved session survives.
      if (!owns_fd_ && !error)
        if (SSL* ssl = bufferevent_openssl_get_ssl(bev_)) SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
      bufferevent_free(bev_);
      bev_ = nullptr;
    }
    if (owns_fd_ && fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (ok && !error && !was_held) {
      uint64_t t = nowUs();
      if (t_quit_) R.phase[kQuit].add(t - t_quit_);
      R.phase[kTotal].add(t - t_intended_);
    }
    if (error) R.failed++;
    else if (!was_held) R.completed++;
    connClosed(this, was_held);
    reap(this);  // deleted from the event loop, never inside our own callbacks
  }

  void startTls() {
    int fd = fd_;
    bufferevent_disable(bev_, EV_READ | EV_WRITE);
    bufferevent_free(bev_);
    bev_ = nullptr;
    SSL* ssl = SSL_new(g_ctx);
    if (!O.sni.empty()) SSL_set_tlsext_host_name(ssl, O.sni.c_str());
    if (O.resume > 0 && g_session && std::uniform_real_distribution<double>(0, 1)(g_rng) < O.resume) {
      if (!g_ticket_pool.empty()) {
        SSL_SESSION* t = g_ticket_pool.front();
        g_ticket_pool.pop_front();
        SSL_set_session(ssl, t);  // takes its own reference
        SSL_SESSION_free(t);
      } else {
        SSL_set_session(ssl, g_session);
      }
    }
    bev_ = bufferevent_openssl_socket_new(g_base, fd, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    if (!bev_) {
      SSL_free(ssl);
      fail("tls_setup");
      return;
    }
    owns_fd_ = false;
    bufferevent_openssl_set_allow_dirty_shutdown(bev_, 1);
    t_tls_start_ = t_tls_start_ ? t_tls_start_ : nowUs();
    setup();
  }

  void onEvent(short what) {
    if (what & BEV_EVENT_CONNECTED) {
      uint64_t t = nowUs();
      if (st_ == St::Connecting) {
        t_connected_ = t;
        R.phase[kConnect].add(t - t_start_);
        if (O.stop_after == StopAfter::Connect) return finish(true, false);
        if (O.tls == TlsMode::Implicit) {
          st_ = St::TlsImplicit;
          startTls();
        } else {
          st_ = St::Greeting;
        }
        return;
      }
      if (st_ == St::TlsImplicit || st_ == St::TlsStarttls) {
        t_tls_done_ = t;
        R.phase[kTls].add(t - t_tls_start_);
        SSL* ssl = bufferevent_openssl_get_ssl(bev_);
        if (SSL_session_reused(ssl)) R.tls_resumed++;
        else R.tls_full++;
        if (st_ == St::TlsImplicit) {
          // Close right after the handshake, except when resuming TLS 1.3: its
          // tickets come after the handshake (read with the greeting), and a
          // fresh one per connection is what clients use (OpenSSL servers
          // mostly refuse a reused TLS 1.3 ticket).
          bool want_ticket = O.resume > 0 && (!g_session || SSL_version(ssl) == TLS1_3_VERSION);
          if (O.stop_after == StopAfter::Tls && !want_ticket) return finish(true, false);
          st_ = St::Greeting;  // hold-at tls holds after the greeting (afterGreeting)
          return;
        }
        // STARTTLS done
        if (O.stop_after == StopAfter::Tls) return finish(true, false);
        if (O.mode == Mode::Hold && O.hold_at == HoldAt::Starttls) return hold();
        afterStarttls();
        return;
      }
      return;
    }
    if (st_ == St::Done) return;
    if (what & BEV_EVENT_TIMEOUT) return fail(std::string("timeout:") + stName());
    if (st_ == St::Connecting) {
      int e = EVUTIL_SOCKET_ERROR();
      return fail(e == ECONNREFUSED ? "connect_refused" : "connect_error");
    }
    if (st_ == St::TlsImplicit || st_ == St::TlsStarttls) return fail("tls_handshake");
    if (st_ == St::Held) {
      // The server closed a held connection.
      addError("held_closed_by_peer");
      R.held--;
      return finish(false, true);
    }
    if (st_ == St::Quit) return finish(true, false);  // server closed first: fine
    if (what & BEV_EVENT_EOF) return fail(std::string("eof:") + stName());
    fail(std::string("error:") + stName());
  }

  void hold() {
    st_ = St::Held;
    armTimeout(false);
    R.held++;
    connHeld(this);  // lets the launcher open the next connection
  }

  // --- reading ---

  struct Reply {
    int code = 0;      // smtp code; imap: 1 OK, 2 NO, 3 BAD; pop3: 1 +OK, 2 -ERR
    bool cont = false; // IMAP "+" / SMTP 334 / POP3 "+ "
    std::string text;
  };

  // Returns true when one complete reply for the current state is parsed.
  bool parseReply(evbuffer* in, Reply& r) {
    if (multi_) {  // POP3 multi-line: until CRLF.CRLF
      evbuffer_ptr p = evbuffer_search(in, "\r\n.\r\n", 5, nullptr);
      size_t len = evbuffer_get_length(in);
      if (p.pos < 0) {
        if (len > 4) {
          evbuffer_drain(in, len - 4);
          R.bytes_received += len - 4;
          tx_bytes_ += len - 4;
        }
        return false;
      }
      evbuffer_drain(in, size_t(p.pos) + 5);
      R.bytes_received += size_t(p.pos) + 5;
      tx_bytes_ += size_t(p.pos);
      multi_ = false;
      r.code = 1;
      return true;
    }
    for (;;) {
      if (skip_ > 0) {
        size_t n = std::min(evbuffer_get_length(in), skip_);
        if (n == 0) return false;
        evbuffer_drain(in, n);
        R.bytes_received += n;
        tx_bytes_ += n;
        skip_ -= n;
        continue;
      }
      size_t len = 0;
      char* raw = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
      if (!raw) {
        if (evbuffer_get_length(in) > (1u << 20)) {
          addError("line_too_long");
          r.code = -1;
          return true;
        }
        return false;
      }
      R.bytes_received += len + 2;
      std::string line(raw, len);
      std::free(raw);
      if (O.proto == Proto::Smtp) {
        if (line.size() < 3) continue;
        if (line.size() > 3 && line[3] == '-') continue;  // continuation line
        r.code = std::atoi(line.substr(0, 3).c_str());
        r.cont = r.code == 334;
        r.text = line;
        return true;
      }
      if (O.proto == Proto::Pop3) {
        r.text = line;
        if (line.rfind("+OK", 0) == 0) r.code = 1;
        else if (line.rfind("-ERR", 0) == 0) r.code = 2;
        else if (line.rfind("+", 0) == 0) r.cont = true;
        else r.code = 3;
        return true;
      }
      // IMAP
      if (line.rfind("* ", 0) == 0) {
        if (!line.empty() && line.back() == '}') {
          size_t open = line.rfind('{');
          if (open != std::string::npos) skip_ = std::strtoull(line.c_str() + open + 1, nullptr, 10);
        }
        if (want_untagged_) {  // greeting
          r.code = line.rfind("* OK", 0) == 0 ? 1 : 2;
          r.text = line;
          return true;
        }
        continue;
      }
      if (line.rfind("+", 0) == 0) {
        r.cont = true;
        r.text = line;
        return true;
      }
      if (line.empty()) continue;  // end of a literal's response line, e.g. ")"
      std::string_view rest = line;
      size_t sp = rest.find(' ');
      if (sp == std::string::npos) continue;
      if (rest.substr(0, sp) != tag_) continue;  // ")" after a literal, or another tag
      std::string st(rest.substr(sp + 1, 3));
      r.code = st.rfind("OK", 0) == 0 ? 1 : st.rfind("NO", 0) == 0 ? 2 : 3;
      r.text = line;
      return true;
    }
  }

  void onRead() {
    evbuffer* in = bufferevent_get_input(bev_);
    while (st_ != St::Done && bev_) {
      if (st_ == St::Held || st_ == St::Connecting || st_ == St::TlsImplicit || st_ == St::TlsStarttls) {
        size_t n = evbuffer_get_length(in);
        if (n == 0) return;
        if (st_ == St::Held) {  // e.g. an unsolicited line; ignore
          evbuffer_drain(in, n);
          R.bytes_received += n;
          return;
        }
        return;
      }
      Reply r;
      if (!parseReply(in, r)) return;
      if (r.code < 0) return fail("protocol");
      step(r);
    }
  }

  void onWritten() {
    if (body_left_ == 0 && !streaming_) return;
    fillBody();
  }

  // --- session script ---

  std::string nextTag() { return tag_ = bench::cat("a", std::to_string(++tagn_)); }

  void imapCmd(const std::string& cmd) { send(nextTag() + " " + cmd + "\r\n"); }

  void unexpected(const Reply& r) {
    (void)r;
    fail(std::string("unexpected:") + stName());
  }

  void afterGreeting() {
    t_greeting_ = nowUs();
    R.phase[kGreeting].add(t_greeting_ - (t_tls_done_ && O.tls == TlsMode::Implicit ? t_tls_done_ : t_connected_));
    want_untagged_ = false;
    if (O.stop_after == StopAfter::Greeting || (O.stop_after == StopAfter::Tls && O.tls == TlsMode::Implicit))
      return finish(true, false);
    if (O.mode == Mode::Hold && O.hold_at == HoldAt::Tls && O.tls == TlsMode::Implicit) return hold();
    switch (O.proto) {
      case Proto::Smtp:
        st_ = St::Ehlo1;
        send("EHLO load.bench.test\r\n");
        return;
      case Proto::Imap:
        if (O.tls == TlsMode::Starttls) {
          st_ = St::StarttlsCmd;
          t_tls_start_ = nowUs();
          imapCmd("STARTTLS");
          return;
        }
        return startAuth();
      case Proto::Pop3:
        if (O.tls == TlsMode::Starttls) {
          st_ = St::StarttlsCmd;
          t_tls_start_ = nowUs();
          send("STLS\r\n");
          return;
        }
        return startAuth();
    }
  }

  void afterStarttls() {
    if (O.proto == Proto::Smtp) {
      st_ = St::Ehlo2;
      send("EHLO load.bench.test\r\n");
      return;
    }
    startAuth();
  }

  void startAuth() {
    t_auth_ = nowUs();
    std::string user = userFor(idx_);
    std::string plain = b64(std::string("") + '\0' + user + '\0' + O.pass);
    switch (O.proto) {
      case Proto::Smtp:
        if (O.auth == "login") {
          st_ = St::AuthUser;
          send("AUTH LOGIN\r\n");
        } else {
          st_ = St::AuthFinal;
          send("AUTH PLAIN " + plain + "\r\n");
        }
        return;
      case Proto::Imap:
        if (O.auth == "plain") {
          if (O.sasl_ir) {
            st_ = St::AuthFinal;
            imapCmd("AUTHENTICATE PLAIN " + plain);
          } else {
            st_ = St::AuthPass;
            imapCmd("AUTHENTICATE PLAIN");
          }
        } else {
          st_ = St::AuthFinal;
          imapCmd("LOGIN " + imapQuote(user) + " " + imapQuote(O.pass));
        }
        return;
      case Proto::Pop3:
        if (O.auth == "plain") {
          st_ = St::AuthFinal;
          send("AUTH PLAIN " + plain + "\r\n");
        } else {
          st_ = St::AuthUser;
          send("USER " + user + "\r\n");
        }
        return;
    }
  }

  void authDone() {
    uint64_t t = nowUs();
    R.phase[kAuth].add(t - t_auth_);
    if (O.stop_after == StopAfter::Login) return finish(true, false);
    if (O.mode == Mode::Hold && O.hold_at == HoldAt::Login) return hold();
    t_tx_ = t;
    tx_bytes_ = 0;
    action_i_ = 0;
    msgs_done_ = 0;
    nextAction();
  }

  void nextAction() {
    if (O.proto == Proto::Smtp) {
      if (msgs_done_ < O.msgs && O.msg_size > 0) {
        st_ = St::Mail;
        send("MAIL FROM:<load@bench.test>\r\n");
        return;
      }
      return startQuit();
    }
    if (action_i_ >= O.actions.size()) return startQuit();
    const std::string& a = O.actions[action_i_++];
    st_ = St::Action;
    if (O.proto == Proto::Imap) {
      if (a == "select") imapCmd("SELECT INBOX");
      else if (a == "fetch") imapCmd("FETCH 1 BODY[]");
      else if (a == "idle") {
        st_ = St::IdleCont;
        imapCmd("IDLE");
      } else imapCmd("NOOP");
      return;
    }
    if (a == "stat") send("STAT\r\n");
    else if (a == "retr" || a == "list") {
      send(a == "retr" ? "RETR 1\r\n" : "LIST\r\n");
      pop3_multi_pending_ = true;
    } else send("NOOP\r\n");
  }

  void startQuit() {
    uint64_t t = nowUs();
    R.phase[kTransaction].add(t - t_tx_);
    R.tx_bytes += tx_bytes_;
    R.tx_us += t - t_tx_;
    t_quit_ = t;
    st_ = St::Quit;
    if (O.proto == Proto::Imap) imapCmd("LOGOUT");
    else send("QUIT\r\n");
  }

  void onIdleTimer() {
    st_ = St::IdleDone;
    armTimeout(true);
    send("DONE\r\n");
  }

  void startBody() {
    size_t head = g_msg_head.size();
    body_left_ = O.msg_size > head ? O.msg_size - head : 0;
    tx_bytes_ += head;
    if (!g_small_body.empty() && body_left_ == g_small_body.size()) {
      // One write (one TLS record) for a small message, as mail clients do.
      send(bench::cat(g_msg_head, g_small_body, ".\r\n"));
      tx_bytes_ += body_left_;
      body_left_ = 0;
      st_ = St::DataEnd;
      return;
    }
    send(g_msg_head);
    streaming_ = true;
    bufferevent_setwatermark(bev_, EV_WRITE, 512 * 1024, 0);
    fillBody();
  }

  void fillBody() {
    if (!streaming_) return;
    evbuffer* out = bufferevent_get_output(bev_);
    while (body_left_ > 0 && evbuffer_get_length(out) < 1024 * 1024) {
      size_t n = std::min(body_left_, g_block.size());
      if (n < g_block.size()) n -= n % 78;  // whole lines only
      if (n == 0) {
        body_left_ = 0;
        break;
      }
      evbuffer_add_reference(out, g_block.data(), n, nullptr, nullptr);
      R.bytes_sent += n;
      tx_bytes_ += n;
      body_left_ -= n;
    }
    if (body_left_ == 0) {
      streaming_ = false;
      bufferevent_setwatermark(bev_, EV_WRITE, 0, 0);
      send(".\r\n");
      st_ = St::DataEnd;
    }
  }

  void step(const Reply& r) {
    switch (st_) {
      case St::Greeting:
        if (O.proto == Proto::Smtp ? r.code != 220 : r.code != 1) return unexpected(r);
        return afterGreeting();
      case St::Ehlo1:
        if (r.code != 250) return unexpected(r);
        if (O.tls == TlsMode::Starttls) {
          st_ = St::StarttlsCmd;
          t_tls_start_ = nowUs();
          send("STARTTLS\r\n");
          return;
        }
        return startAuth();
      case St::StarttlsCmd:
        if (O.proto == Proto::Smtp ? r.code != 220 : r.code != 1) return unexpected(r);
        if (evbuffer_get_length(bufferevent_get_input(bev_)) != 0) return fail("plaintext_after_starttls");
        st_ = St::TlsStarttls;
        return startTls();
      case St::Ehlo2:
        if (r.code != 250) return unexpected(r);
        return startAuth();
      case St::AuthUser:
        if (O.proto == Proto::Smtp) {
          if (r.code != 334) return unexpected(r);
          st_ = St::AuthPass;
          send(b64(userFor(idx_)) + "\r\n");
          return;
        }
        // POP3 USER
        if (r.code != 1) return unexpected(r);
        st_ = St::AuthFinal;
        send("PASS " + O.pass + "\r\n");
        return;
      case St::AuthPass:
        if (O.proto == Proto::Smtp) {
          if (r.code != 334) return unexpected(r);
          st_ = St::AuthFinal;
          send(b64(O.pass) + "\r\n");
          return;
        }
        // IMAP AUTHENTICATE PLAIN without initial response
        if (!r.cont) return unexpected(r);
        st_ = St::AuthFinal;
        send(b64(std::string("") + '\0' + userFor(idx_) + '\0' + O.pass) + "\r\n");
        return;
      case St::AuthFinal:
        if (O.proto == Proto::Smtp ? r.code != 235 : r.code != 1) {
          addError(O.proto == Proto::Smtp ? bench::cat("auth_failed:", std::to_string(r.code)) : std::string("auth_failed"));
          return finish(false, true);
        }
        return authDone();
      case St::Mail:
        if (r.code != 250) return unexpected(r);
        st_ = St::Rcpt;
        send("RCPT TO:<sink@bench.test>\r\n");
        return;
      case St::Rcpt:
        if (r.code != 250) return unexpected(r);
        st_ = St::Data;
        send("DATA\r\n");
        return;
      case St::Data:
        if (r.code != 354) return unexpected(r);
        return startBody();
      case St::DataEnd:
        if (r.code != 250) return unexpected(r);
        msgs_done_++;
        return nextAction();
      case St::Action:
        if (O.proto == Proto::Pop3 && pop3_multi_pending_) {
          pop3_multi_pending_ = false;
          if (r.code != 1) return unexpected(r);
          multi_ = true;
          // A virtual CRLF lets an empty multi-line body end at once.
          evbuffer_prepend(bufferevent_get_input(bev_), "\r\n", 2);
          R.bytes_received -= 2;
          return;
        }
        if (r.code != 1) return unexpected(r);
        return nextAction();
      case St::IdleCont:
        if (!r.cont) return unexpected(r);
        armTimeout(false);
        if (!idle_timer_) idle_timer_ = evtimer_new(g_base, idleTimerCb, this);
        {
          timeval tv{static_cast<time_t>(O.idle_ms / 1000), static_cast<suseconds_t>((O.idle_ms % 1000) * 1000)};
          evtimer_add(idle_timer_, &tv);
        }
        return;
      case St::IdleDone:
        if (r.code != 1) return unexpected(r);
        return nextAction();
      case St::Quit:
        if (O.proto == Proto::Smtp ? r.code != 221 : r.code != 1) return unexpected(r);
        return finish(true, false);
      default:
        return unexpected(r);
    }
  }

  uint64_t idx_;
  uint64_t t_intended_;
  uint64_t t_start_ = 0, t_connected_ = 0, t_tls_start_ = 0, t_tls_done_ = 0, t_greeting_ = 0, t_auth_ = 0,
           t_tx_ = 0, t_quit_ = 0;
  int fd_ = -1;
  bool owns_fd_ = true;
  bufferevent* bev_ = nullptr;
  event* idle_timer_ = nullptr;
  St st_ = St::Connecting;
  std::string tag_;
  int tagn_ = 0;
  bool want_untagged_ = true;  // IMAP: the greeting is untagged
  size_t skip_ = 0;            // IMAP literal bytes to skip
  bool multi_ = false;         // POP3 multi-line body in progress
  bool pop3_multi_pending_ = false;
  size_t action_i_ = 0;
  int msgs_done_ = 0;
  size_t body_left_ = 0;
  bool streaming_ = false;
  uint64_t tx_bytes_ = 0;
};

// --- the driver ----------------------------------------------------------------

long g_active = 0;      // connections open and not held
long g_open = 0;        // all connections with an fd (incl. held)
uint64_t g_launched = 0;
uint64_t g_deadline = 0;  // stop launching after (µs); 0 none
uint64_t g_hard_deadline = 0;
bool g_stopping = false;
std::deque<uint64_t> g_open_queue;  // open loop: intended start times waiting for a free slot
std::set<Conn*> g_held;
event* g_tick = nullptr;
event* g_sample_ev = nullptr;
event* g_phase_ev = nullptr;
double g_next_arrival = 0;  // open loop: µs since t0 of the next intended start
enum class HoldPhase { Opening, Holding, Closing, Settled } g_hold_phase = HoldPhase::Opening;

uint64_t sessionLimit() {
  uint64_t lim = O.total ? O.total : O.max_sessions;
  if (O.mode == Mode::Hold) lim = uint64_t(O.hold_n);
  return std::min(lim, O.max_sessions);
}

void finishRun(const std::string& why) {
  if (g_stopping) return;
  g_stopping = true;
  R.stop_reason = why;
  event_base_loopexit(g_base, nullptr);
}

void startOne(uint64_t intended) {
  auto* c = new Conn(g_launched, intended);
  g_launched++;
  g_active++;
  g_open++;
  c->start();
}

// Open loop: arrivals stop at the deadline, but queued ones still start.
bool launchAllowed(bool queued) {
  if (g_stopping) return false;
  if (g_launched >= sessionLimit()) return false;
  if (!queued && g_deadline && nowUs() >= g_deadline) return false;
  return g_open < O.max_conns;
}

void checkDone();

bool g_in_launch = false;
void launchMore() {
  if (g_in_launch) return;  // a connection failing inside start() re-enters here
  g_in_launch = true;
  if (O.mode == Mode::Open) {
    while (!g_open_queue.empty() && launchAllowed(true)) {
      uint64_t t = g_open_queue.front();
      g_open_queue.pop_front();
      startOne(t);
    }
  } else {
    long want = O.mode == Mode::Bulk ? 1 : O.concurrency;
    while (g_active < want && launchAllowed(false)) startOne(nowUs());
  }
  g_in_launch = false;
  if (O.mode != Mode::Open) checkDone();
}

void holdReleaseAll();

void checkDone() {
  if (g_stopping) return;
  bool no_more = g_launched >= sessionLimit() || (g_deadline && nowUs() >= g_deadline);
  if (O.mode == Mode::Hold) {
    if (g_hold_phase == HoldPhase::Opening && no_more && g_active == 0) {
      g_hold_phase = HoldPhase::Holding;
      sampleTargets("held");
      std::fprintf(stderr, "mailshim-load: %zu connections held\n", g_held.size());
      timeval tv{static_cast<time_t>(O.hold_secs), static_cast<suseconds_t>((O.hold_secs - double(long(O.hold_secs))) * 1e6)};
      evtimer_add(g_phase_ev, &tv);
    }
    return;
  }
  if (O.mode == Mode::Open && !g_open_queue.empty()) return;
  if (no_more && g_active == 0) finishRun(g_deadline && nowUs() >= g_deadline ? "duration" : "count");
}

void connHeld(Conn* c) {
  g_held.insert(c);
  g_active--;
  launchMore();
}

void connClosed(Conn* c, bool was_held) {
  g_open--;
  if (was_held) {
    g_held.erase(c);
    return;
  }
  g_active--;
  launchMore();
}

void reapCb(evutil_socket_t, short, void* arg) { delete static_cast<Conn*>(arg); }
void reap(Conn* c) {
  timeval zero{0, 0};
  event_base_once(g_base, -1, EV_TIMEOUT, reapCb, c, &zero);
}

void phaseCb(evutil_socket_t, short, void*) {
  if (O.mode != Mode::Hold) return;
  if (g_hold_phase == HoldPhase::Holding) {
    g_hold_phase = HoldPhase::Closing;
    holdReleaseAll();
    sampleTargets("closed");
    g_hold_phase = HoldPhase::Settled;
    timeval tv{static_cast<time_t>(O.settle_secs), static_cast<suseconds_t>((O.settle_secs - double(long(O.settle_secs))) * 1e6)};
    evtimer_add(g_phase_ev, &tv);
    return;
  }
  if (g_hold_phase == HoldPhase::Settled) {
    sampleTargets("after_close");
    finishRun("hold_done");
  }
}

void tickCb(evutil_socket_t, short, void*) {
  uint64_t now = nowUs();
  if (g_hard_deadline && now >= g_hard_deadline) {
    finishRun("max_duration");
    return;
  }
  if (O.mode == Mode::Open && !g_stopping) {
    double rel = double(now - R.t0);
    while (g_next_arrival <= rel && g_launched + g_open_queue.size() < sessionLimit() &&
           (!g_deadline || R.t0 + uint64_t(g_next_arrival) < g_deadline)) {
      g_open_queue.push_back(R.t0 + uint64_t(g_next_arrival));
      double gap = O.poisson ? std::exponential_distribution<double>(O.rate)(g_rng) * 1e6 : 1e6 / O.rate;
      g_next_arrival += gap;
    }
    launchMore();
    bool exhausted = g_launched + g_open_queue.size() >= sessionLimit() ||
                     (g_deadline && R.t0 + uint64_t(g_next_arrival) >= g_deadline);
    if (exhausted && g_open_queue.empty() && g_active == 0) {
      finishRun(g_deadline && now >= g_deadline ? "duration" : "count");
      return;
    }
  } else if (O.mode != Mode::Hold) {
    checkDone();
  }
  timeval tv{0, O.mode == Mode::Open ? 1000 : 100000};
  evtimer_add(g_tick, &tv);
}

void sampleCb(evutil_socket_t, short, void*) {
  sampleTargets("");
  timeval tv{static_cast<time_t>(O.sample_ms / 1000), static_cast<suseconds_t>((O.sample_ms % 1000) * 1000)};
  evtimer_add(g_sample_ev, &tv);
}

int g_sigint = 0;
void sigintCb(evutil_socket_t, short, void*) {
  if (++g_sigint > 1) _exit(130);
  R.interrupted = true;
  finishRun("sigint");
}
void sigusr1Cb(evutil_socket_t, short, void*) {
  if (O.mode == Mode::Hold && g_hold_phase == HoldPhase::Holding) {
    evtimer_del(g_phase_ev);
    phaseCb(-1, 0, nullptr);
  }
}

// --- output ----------------------------------------------------------------------

std::string protoName() { return O.proto == Proto::Smtp ? "smtp" : O.proto == Proto::Imap ? "imap" : "pop3"; }
std::string tlsName() { return O.tls == TlsMode::None ? "none" : O.tls == TlsMode::Implicit ? "implicit" : "starttls"; }
std::string modeName() {
  switch (O.mode) {
    case Mode::Closed: return "closed";
    case Mode::Open: return "open";
    case Mode::Hold: return "hold";
    case Mode::Bulk: return "bulk";
  }
  return "?";
}

std::string buildJson() {
  double elapsed = double((R.t_end ? R.t_end : nowUs()) - R.t0) / 1e6;
  std::vector<std::string> quoted;
  for (const auto& a : O.actions) quoted.push_back(bench::jstr(a));
  std::string actions = bench::jarray(quoted);
  static const char* holdNames[] = {"tls", "starttls", "login"};
  static const char* stopNames[] = {"full", "connect", "tls", "greeting", "login"};
  JObj cfg;
  cfg.str("proto", protoName())
      .str("host", O.host)
      .num("port", uint64_t(O.port))
      .str("tls", tlsName())
      .str("auth", O.auth)
      .add("actions", actions)
      .num("msg_size", uint64_t(O.msg_size))
      .num("msgs", uint64_t(O.msgs))
      .str("mode", modeName())
      .num("concurrency", uint64_t(O.concurrency))
      .num("total", O.total)
      .num("duration_s", O.duration)
      .num("rate", O.rate)
      .boolean("poisson", O.poisson)
      .num("hold_n", uint64_t(O.hold_n))
      .str("hold_at", holdNames[int(O.hold_at)])
      .str("stop_after", stopNames[int(O.stop_after)])
      .str("tls_min", O.tls_min)
      .str("tls_max", O.tls_max)
      .str("groups", O.groups)
      .num("resume", O.resume)
      .boolean("release_buffers", O.release_buffers)
      .num("timeout_ms", uint64_t(O.timeout_ms))
      .num("max_conns", uint64_t(O.max_conns));
  JObj phases;
  for (int p = 0; p < kPhases; ++p) {
    if (R.phase[p].count() == 0) continue;
    phases.add(kPhaseNames[p], bench::histJson(R.phase[p]));
  }
  JObj errs;
  for (auto& [k, v] : R.errors) errs.num(k, v);
  uint64_t done = R.completed;
  double cpu_ms = R.cpu1 - R.cpu0;
  std::vector<std::string> targets;
  for (auto& tt : R.targets) {
    std::string samples = bench::jarray(tt.samples);
    double dsched = tt.last.cpu_ms_sched - tt.first.cpu_ms_sched;
    double dstat = tt.last.cpu_ms_stat - tt.first.cpu_ms_stat;
    double dcpu = tt.last.cpu_ms_sched > 0 ? dsched : dstat;
    JObj t;
    t.num("pid", uint64_t(tt.pid))
        .num("cpu_ms", dcpu)
        .num("cpu_ms_stat", dstat)
        .num("cpu_ms_sched", dsched)
        .num("cpu_us_per_session", done ? dcpu * 1000.0 / double(done) : 0.0)
        .num("rss_kb_start", uint64_t(tt.first.rss_kb))
        .num("rss_kb_end", uint64_t(tt.last.rss_kb))
        .num("rss_kb_peak", uint64_t(tt.rss_peak));
    if (O.mode == Mode::Hold) {
      auto get = [&](const char* m) -> long { auto it = tt.marks.find(m); return it == tt.marks.end() ? -1 : it->second.rss_kb; };
      long before = get("start"), heldkb = get("held"), after = get("after_close");
      JObj h;
      h.num("rss_kb_before", double(before))
          .num("rss_kb_held", double(heldkb))
          .num("rss_kb_after_close", double(after))
          .num("bytes_per_conn", R.held && before >= 0 && heldkb >= 0 ? double(heldkb - before) * 1024.0 / double(R.held) : 0.0)
          .num("after_close_bytes_per_conn",
               R.held && before >= 0 && after >= 0 ? double(after - before) * 1024.0 / double(R.held) : 0.0);
      t.add("hold", h.done());
    }
    if (O.mode == Mode::Bulk || O.msg_size >= (1u << 20) ||
        std::find(O.actions.begin(), O.actions.end(), "fetch") != O.actions.end() ||
        std::find(O.actions.begin(), O.actions.end(), "retr") != O.actions.end()) {
      double mb = double(R.tx_bytes) / 1e6;
      t.num("ms_per_mb", mb > 0 ? dcpu / mb : 0.0);
    }
    t.add("samples", samples);
    targets.push_back(t.done());
  }
  JObj sess;
  sess.num("launched", g_launched)
      .num("started", R.started)
      .num("completed", R.completed)
      .num("failed", R.failed)
      .num("held", R.held)
      .num("tls_full", R.tls_full)
      .num("tls_resumed", R.tls_resumed);
  JObj out;
  out.str("tool", "mailshim-load")
      .num("format", uint64_t(1))
      .str("label", O.label)
      .num("unix_time", uint64_t(std::time(nullptr)))
      .add("config", cfg.done())
      .num("elapsed_s", elapsed)
      .str("stop_reason", R.stop_reason)
      .boolean("interrupted", R.interrupted)
      .add("sessions", sess.done())
      .num("sessions_per_s", elapsed > 0 ? double(done) / elapsed : 0.0)
      .add("errors", errs.done())
      .add("bytes", JObj().num("sent", R.bytes_sent).num("received", R.bytes_received).num("transaction", R.tx_bytes).done())
      .add("phases", phases.done())
      .add("client_cpu", JObj()
                             .num("ms", cpu_ms)
                             .num("us_per_session", done ? cpu_ms * 1000.0 / double(done) : 0.0)
                             .done())
      .add("targets", bench::jarray(targets));
  if (O.mode == Mode::Bulk || R.tx_bytes > (1u << 20)) {
    double secs = double(R.tx_us) / 1e6;
    out.add("bulk", JObj()
                        .num("bytes", R.tx_bytes)
                        .num("seconds", secs)
                        .num("mb_per_s", secs > 0 ? double(R.tx_bytes) / 1e6 / secs : 0.0)
                        .done());
  }
  return out.done() + "\n";
}

void holdReleaseAll() {
  // Conn::release() deletes the connection; copy first.
  std::vector<Conn*> v(g_held.begin(), g_held.end());
  g_held.clear();
  for (Conn* c : v) c->release();
}

[[noreturn]] void usage(const char* why = nullptr) {
  if (why) std::fprintf(stderr, "mailshim-load: %s\n", why);
  std::fprintf(stderr,
      "usage: mailshim-load --proto smtp|imap|pop3 --port N [--host 127.0.0.1] [--tls implicit|starttls|none]\n"
      "  session: [--auth plain|login|user] [--sasl-ir] [--user FMT(%%d=index)] [--pass P]\n"
      "           [--actions select,fetch,noop,idle | stat,list,retr,noop] [--idle-ms MS]\n"
      "           [--msg-size BYTES] [--msgs N] [--stop-after connect|tls|greeting|login]\n"
      "  mode:    [--mode closed|open|hold|bulk] [-c N] [-n N] [-d SECONDS] [--rate R] [--poisson]\n"
      "           [--hold N] [--hold-at tls|starttls|login] [--hold-secs S] [--settle-secs S]\n"
      "  tls:     [--tls-min 1.2] [--tls-max 1.3] [--groups LIST] [--ciphersuites LIST] [--ciphers LIST]\n"
      "           [--sni NAME] [--resume RATIO] [--no-release-buffers]\n"
      "  target:  [--pid PID]... [--sample-ms MS]\n"
      "  caps:    [--max-conns N] [--max-sessions N] [--max-duration S] [--timeout-ms MS]\n"
      "  output:  [--label TEXT] [--json FILE]\n");
  std::exit(2);
}

void parseArgs(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    auto num = [&]() { return std::strtod(val().c_str(), nullptr); };
    if (a == "--proto") {
      std::string p = val();
      O.proto = p == "smtp" ? Proto::Smtp : p == "imap" ? Proto::Imap : p == "pop3" ? Proto::Pop3 : (usage("bad --proto"), Proto::Imap);
    } else if (a == "--host") O.host = val();
    else if (a == "--port") O.port = int(num());
    else if (a == "--tls") {
      std::string t = val();
      O.tls = t == "implicit" ? TlsMode::Implicit : t == "starttls" ? TlsMode::Starttls : t == "none" ? TlsMode::None : (usage("bad --tls"), TlsMode::None);
    } else if (a == "--auth") O.auth = val();
    else if (a == "--sasl-ir") O.sasl_ir = true;
    else if (a == "--user") O.user = val();
    else if (a == "--pass") O.pass = val();
    else if (a == "--actions") {
      std::string s = val();
      O.actions.clear();
      size_t p = 0;
      while (p <= s.size()) {
        size_t q = s.find(',', p);
        if (q == std::string::npos) q = s.size();
        if (q > p) O.actions.push_back(s.substr(p, q - p));
        p = q + 1;
      }
    } else if (a == "--idle-ms") O.idle_ms = uint32_t(num());
    else if (a == "--msg-size") O.msg_size = size_t(num());
    else if (a == "--msgs") O.msgs = int(num());
    else if (a == "--stop-after") {
      std::string s = val();
      O.stop_after = s == "connect" ? StopAfter::Connect : s == "tls" ? StopAfter::Tls : s == "greeting" ? StopAfter::Greeting
                   : s == "login" ? StopAfter::Login : s == "full" ? StopAfter::Full : (usage("bad --stop-after"), StopAfter::Full);
    } else if (a == "--mode") {
      std::string m = val();
      O.mode = m == "closed" ? Mode::Closed : m == "open" ? Mode::Open : m == "hold" ? Mode::Hold : m == "bulk" ? Mode::Bulk : (usage("bad --mode"), Mode::Closed);
    } else if (a == "-c" || a == "--concurrency") O.concurrency = long(num());
    else if (a == "-n" || a == "--sessions") O.total = uint64_t(num());
    else if (a == "-d" || a == "--duration") O.duration = num();
    else if (a == "--rate") O.rate = num();
    else if (a == "--poisson") O.poisson = true;
    else if (a == "--hold") O.hold_n = long(num());
    else if (a == "--hold-at") {
      std::string h = val();
      O.hold_at = h == "tls" ? HoldAt::Tls : h == "starttls" ? HoldAt::Starttls : h == "login" ? HoldAt::Login : (usage("bad --hold-at"), HoldAt::Tls);
    } else if (a == "--hold-secs") O.hold_secs = num();
    else if (a == "--settle-secs") O.settle_secs = num();
    else if (a == "--tls-min") O.tls_min = val();
    else if (a == "--tls-max") O.tls_max = val();
    else if (a == "--groups") O.groups = val();
    else if (a == "--ciphersuites") O.ciphersuites = val();
    else if (a == "--ciphers") O.ciphers = val();
    else if (a == "--sni") O.sni = val();
    else if (a == "--resume") O.resume = num();
    else if (a == "--no-release-buffers") O.release_buffers = false;
    else if (a == "--release-buffers") O.release_buffers = true;
    else if (a == "--pid") O.pids.push_back(int(num()));
    else if (a == "--sample-ms") O.sample_ms = uint32_t(std::max(10.0, num()));
    else if (a == "--max-conns") O.max_conns = long(num());
    else if (a == "--max-sessions") O.max_sessions = uint64_t(num());
    else if (a == "--max-duration") O.max_duration = num();
    else if (a == "--timeout-ms") O.timeout_ms = uint32_t(num());
    else if (a == "--label") O.label = val();
    else if (a == "--json") O.json_out = val();
    else if (a == "-h" || a == "--help") usage();
    else usage(("unknown option " + a).c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  parseArgs(argc, argv);
  if (O.port <= 0 || O.port > 65535) usage("--port is required");
  sockaddr_storage ss{};
  socklen_t slen = 0;
  if (!bench::parseAddr(O.host, O.port, ss, slen)) usage("--host must be a numeric IP address");
  if (!bench::isLoopback(ss)) {
    std::fprintf(stderr, "mailshim-load: refusing non-loopback target %s (only 127.0.0.0/8 and ::1)\n", O.host.c_str());
    return 2;
  }
  if (O.auth.empty()) O.auth = O.proto == Proto::Imap ? "login" : O.proto == Proto::Pop3 ? "user" : "plain";
  if (O.proto != Proto::Smtp && O.actions.empty() && O.mode != Mode::Bulk)
    O.actions = {O.proto == Proto::Imap ? "noop" : "stat"};
  if (O.mode == Mode::Bulk && O.actions.empty() && O.proto != Proto::Smtp)
    O.actions = {O.proto == Proto::Imap ? "fetch" : "retr"};
  if (O.mode == Mode::Bulk) {
    O.concurrency = 1;
    if (!O.total) O.total = 1;
  }
  if (O.mode == Mode::Open && O.rate <= 0) usage("--mode open needs --rate");
  if (O.mode == Mode::Hold) {
    if (O.hold_n <= 0) usage("--mode hold needs --hold N");
    if (O.hold_at == HoldAt::Tls && O.tls != TlsMode::Implicit) usage("--hold-at tls needs --tls implicit");
    if (O.hold_at == HoldAt::Starttls && O.tls != TlsMode::Starttls) usage("--hold-at starttls needs --tls starttls");
    if (O.concurrency > 200) O.concurrency = 200;
  }
  if (O.mode != Mode::Hold && O.mode != Mode::Bulk && !O.total && O.duration <= 0) usage("give -n or -d");
  long fdcap = bench::raiseFdLimit(64);
  if (!O.max_conns) O.max_conns = fdcap;
  if (O.max_conns > fdcap) {
    std::fprintf(stderr, "mailshim-load: --max-conns %ld is above the fd limit minus margin (%ld)\n", O.max_conns, fdcap);
    return 2;
  }
  if (O.mode == Mode::Hold && O.hold_n > O.max_conns) {
    std::fprintf(stderr, "mailshim-load: --hold %ld is above the connection cap (%ld)\n", O.hold_n, O.max_conns);
    return 2;
  }
  if (O.concurrency > O.max_conns) {
    std::fprintf(stderr, "mailshim-load: -c %ld is above the connection cap (%ld)\n", O.concurrency, O.max_conns);
    return 2;
  }
  if (O.max_duration > 86400) O.max_duration = 86400;
  signal(SIGPIPE, SIG_IGN);

  if (O.tls != TlsMode::None) {
    g_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(g_ctx, SSL_VERIFY_NONE, nullptr);
    if (tlsVersion(O.tls_min) < 0 || tlsVersion(O.tls_max) < 0) usage("bad --tls-min/--tls-max");
    SSL_CTX_set_min_proto_version(g_ctx, tlsVersion(O.tls_min));
    SSL_CTX_set_max_proto_version(g_ctx, tlsVersion(O.tls_max));
    if (!O.groups.empty() && SSL_CTX_set1_groups_list(g_ctx, O.groups.c_str()) != 1) usage("bad --groups");
    if (!O.ciphersuites.empty() && SSL_CTX_set_ciphersuites(g_ctx, O.ciphersuites.c_str()) != 1) usage("bad --ciphersuites");
    if (!O.ciphers.empty() && SSL_CTX_set_cipher_list(g_ctx, O.ciphers.c_str()) != 1) usage("bad --ciphers");
    if (O.release_buffers) SSL_CTX_set_mode(g_ctx, SSL_MODE_RELEASE_BUFFERS);
    if (O.resume > 0) {
      SSL_CTX_set_session_cache_mode(g_ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
      SSL_CTX_sess_set_new_cb(g_ctx, newSessionCb);
    } else {
      SSL_CTX_set_session_cache_mode(g_ctx, SSL_SESS_CACHE_OFF);
    }
  }
  if (O.proto == Proto::Smtp && O.msg_size > 0) {
    g_msg_head = "From: <load@bench.test>\r\nTo: <sink@bench.test>\r\nSubject: mailshim-load\r\n"
                 "Message-ID: <load@bench.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n";
    if (O.msg_size < g_msg_head.size() + 80) O.msg_size = g_msg_head.size() + 80;
    size_t body = O.msg_size - g_msg_head.size();
    g_block = bench::bodyBlock(78 * 3360);  // 262,080 bytes of whole lines
    if (body <= g_block.size()) {
      g_small_body = bench::bodyBlock(body);
      // make sure it ends in CRLF so ".\r\n" terminates
      if (g_small_body.size() < 2 || g_small_body.compare(g_small_body.size() - 2, 2, "\r\n") != 0)
        g_small_body += "\r\n";
      O.msg_size = g_msg_head.size() + g_small_body.size();
    }
  }

  g_base = event_base_new();
  R.t0 = nowUs();
  R.cpu0 = bench::cpuSelfMs();
  for (int pid : O.pids) {
    TargetTrack t;
    t.pid = pid;
    R.targets.push_back(t);
  }
  sampleTargets("start");
  for (auto& t : R.targets)
    if (!t.first.ok) std::fprintf(stderr, "mailshim-load: warning: cannot read /proc/%d\n", t.pid);
  if (O.duration > 0) g_deadline = R.t0 + uint64_t(O.duration * 1e6);
  g_hard_deadline = R.t0 + uint64_t(O.max_duration * 1e6);

  event* sigint = evsignal_new(g_base, SIGINT, sigintCb, nullptr);
  event* sigterm = evsignal_new(g_base, SIGTERM, sigintCb, nullptr);
  event* sigusr1 = evsignal_new(g_base, SIGUSR1, sigusr1Cb, nullptr);
  evsignal_add(sigint, nullptr);
  evsignal_add(sigterm, nullptr);
  evsignal_add(sigusr1, nullptr);
  g_tick = evtimer_new(g_base, tickCb, nullptr);
  g_sample_ev = evtimer_new(g_base, sampleCb, nullptr);
  g_phase_ev = evtimer_new(g_base, phaseCb, nullptr);
  timeval tv0{0, 0};
  evtimer_add(g_tick, &tv0);
  if (!O.pids.empty()) {
    timeval tv{static_cast<time_t>(O.sample_ms / 1000), static_cast<suseconds_t>((O.sample_ms % 1000) * 1000)};
    evtimer_add(g_sample_ev, &tv);
  }
  if (O.mode != Mode::Open) launchMore();

  event_base_dispatch(g_base);

  R.t_end = nowUs();
  R.cpu1 = bench::cpuSelfMs();
  sampleTargets("end");
  std::string json = buildJson();
  if (!O.json_out.empty()) {
    FILE* f = std::fopen(O.json_out.c_str(), "w");
    if (!f) {
      std::fprintf(stderr, "mailshim-load: cannot write %s\n", O.json_out.c_str());
      std::fputs(json.c_str(), stdout);
    } else {
      std::fputs(json.c_str(), f);
      std::fclose(f);
    }
  } else {
    std::fputs(json.c_str(), stdout);
  }
  std::fprintf(stderr, "mailshim-load: %s: %" PRIu64 " completed, %" PRIu64 " failed, %.1f s (%s)\n", O.label.c_str(),
               R.completed, R.failed, double(R.t_end - R.t0) / 1e6, R.stop_reason.c_str());
  // Connections still open (interrupted run) are left to process exit.
  std::fflush(stdout);
  _exit(R.failed && !R.completed && !R.held ? 1 : 0);
}
