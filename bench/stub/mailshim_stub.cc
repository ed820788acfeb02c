// mailshim-stub: minimal, fast IMAP / POP3 / SMTP backends for capacity runs,
// so a benchmark measures the proxy and not Dovecot (~300 logins/s here) or
// Postfix. Speaks just enough for mailshim's upstream login (STARTTLS, CAPA /
// CAPABILITY / EHLO, ID, XCLIENT, AUTHENTICATE/AUTH PLAIN and LOGIN, LOGIN,
// USER/PASS) and for nginx mail's (IMAP LOGIN with synchronizing literals,
// POP3 USER/PASS, SMTP EHLO+XCLIENT), then serves SELECT, FETCH of an N-byte
// message, IDLE/DONE, NOOP, STAT/LIST/RETR, MAIL/RCPT/DATA (discarded),
// LOGOUT/QUIT. Any password is accepted unless --password is given.
//
//   mailshim-stub --proto imap|pop3|smtp --listen 127.0.0.1:30143
//                 [--cert FILE --key FILE] [--implicit] [--msg-size BYTES]
//                 [--password P] [--seconds S]
//
// With --cert/--key, STARTTLS/STLS is offered (or, with --implicit, TLS
// starts at accept). Loopback addresses only. One libevent loop, no threads.
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "bench_util.h"

namespace {

enum class Proto { Imap, Pop3, Smtp };

struct Options {
  Proto proto = Proto::Imap;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string cert, key;
  bool implicit = false;
  size_t msg_size = 1024;
  std::string password;  // empty: any
  double seconds = 0;    // 0: run until SIGINT/SIGTERM
  long max_conns = 0;
};

Options g_opt;
SSL_CTX* g_ctx = nullptr;
event_base* g_base = nullptr;
std::string g_body;  // the one message, CRLF lines
long g_conns = 0;
uint64_t g_accepted = 0, g_logins = 0, g_messages = 0, g_data_bytes = 0;

std::string upper(std::string_view s) {
  std::string o(s);
  for (auto& c : o) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return o;
}

std::string_view nextWord(std::string_view& rest) {
  size_t i = 0;
  while (i < rest.size() && rest[i] == ' ') ++i;
  size_t j = i;
  while (j < rest.size() && rest[j] != ' ') ++j;
  std::string_view w = rest.substr(i, j - i);
  rest = rest.substr(j);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  return w;
}

// Decodes base64 (no validation beyond the alphabet); for --password checks.
std::string b64decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  int buf = 0, bits = 0;
  for (char c : in) {
    int v = val(c);
    if (v < 0) continue;
    buf = (buf << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xff);
    }
  }
  return out;
}

bool plainOk(std::string_view b64) {
  if (g_opt.password.empty()) return true;
  std::string d = b64decode(b64);
  size_t p = d.rfind('\0');
  return p != std::string::npos && d.substr(p + 1) == g_opt.password;
}

class Conn {
 public:
  Conn(int fd) : fd_(fd) {
    g_conns++;
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (g_opt.implicit && g_ctx) {
      SSL* ssl = SSL_new(g_ctx);
      bev_ = bufferevent_openssl_socket_new(g_base, fd_, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
      bufferevent_openssl_set_allow_dirty_shutdown(bev_, 1);
      tls_ = true;
      owns_fd_ = false;
    } else {
      bev_ = bufferevent_socket_new(g_base, fd_, 0);
    }
    setup();
    greet();
  }
  ~Conn() {
    if (bev_) bufferevent_free(bev_);
    if (owns_fd_) ::close(fd_);
    g_conns--;
  }

 private:
  enum class Mode { Lines, Literal, Data, Idle, Sasl };

  void setup() {
    bufferevent_setcb(bev_, readCb, writeCb, eventCb, this);
    bufferevent_set_max_single_read(bev_, 256 * 1024);
    bufferevent_set_max_single_write(bev_, 256 * 1024);
    bufferevent_enable(bev_, EV_READ | EV_WRITE);
  }

  static void readCb(bufferevent*, void* arg) { static_cast<Conn*>(arg)->onRead(); }
  static void writeCb(bufferevent*, void* arg) { static_cast<Conn*>(arg)->onWritten(); }
  static void eventCb(bufferevent*, short what, void* arg) {
    auto* c = static_cast<Conn*>(arg);
    if (what & BEV_EVENT_CONNECTED) return;
    delete c;
  }

  void send(std::string_view s) { bufferevent_write(bev_, s.data(), s.size()); }
  void sendBody() {
    evbuffer_add_reference(bufferevent_get_output(bev_), g_body.data(), g_body.size(), nullptr, nullptr);
  }
  bool offerTls() const { return g_ctx && !tls_; }

  void greet() {
    switch (g_opt.proto) {
      case Proto::Imap: send("* OK [CAPABILITY " + imapCaps() + "] stub ready.\r\n"); break;
      case Proto::Pop3: send("+OK [XCLIENT] stub ready.\r\n"); break;
      case Proto::Smtp: send("220 stub.mail.test ESMTP stub\r\n"); break;
    }
  }

  void onWritten() {
    if (close_after_flush_) {
      delete this;
      return;
    }
    if (tls_after_flush_) {
      tls_after_flush_ = false;
      if (evbuffer_get_length(bufferevent_get_input(bev_)) != 0) {  // plaintext after STARTTLS
        delete this;
        return;
      }
      bufferevent_disable(bev_, EV_READ | EV_WRITE);
      bufferevent_free(bev_);
      SSL* ssl = SSL_new(g_ctx);
      bev_ = bufferevent_openssl_socket_new(g_base, fd_, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
      bufferevent_openssl_set_allow_dirty_shutdown(bev_, 1);
      owns_fd_ = false;
      tls_ = true;
      setup();
    }
  }

  void onRead() {
    evbuffer* in = bufferevent_get_input(bev_);
    while (!close_after_flush_ && !tls_after_flush_) {
      if (mode_ == Mode::Data) {
        if (!scanData(in)) return;
        continue;
      }
      if (mode_ == Mode::Literal) {
        size_t n = std::min(evbuffer_get_length(in), literal_left_);
        if (n == 0) return;
        evbuffer_drain(in, n);
        literal_left_ -= n;
        if (literal_left_ == 0) mode_ = Mode::Lines;
        continue;
      }
      size_t len = 0;
      char* raw = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
      if (!raw) {
        if (evbuffer_get_length(in) > 1 << 20) {  // no line end in 1 MB: give up
          delete this;
        }
        return;
      }
      std::string line(raw, len);
      std::free(raw);
      switch (g_opt.proto) {
        case Proto::Imap: imapLine(line); break;
        case Proto::Pop3: pop3Line(line); break;
        case Proto::Smtp: smtpLine(line); break;
      }
    }
  }

  // SMTP DATA: discard until CRLF.CRLF. Returns false when more input is needed.
  bool scanData(evbuffer* in) {
    evbuffer_ptr p = evbuffer_search(in, "\r\n.\r\n", 5, nullptr);
    if (p.pos >= 0) {
      g_data_bytes += static_cast<uint64_t>(p.pos);
      evbuffer_drain(in, static_cast<size_t>(p.pos) + 5);
      mode_ = Mode::Lines;
      g_messages++;
      send("250 2.0.0 Ok: queued as STUB\r\n");
      return true;
    }
    size_t len = evbuffer_get_length(in);
    if (len > 4) {
      evbuffer_drain(in, len - 4);
      g_data_bytes += len - 4;
    }
    return false;
  }

  // --- IMAP ---
  std::string imapCaps() const {
    std::string c = "IMAP4rev1 SASL-IR ID LITERAL+ IDLE AUTH=PLAIN AUTH=LOGIN";
    if (offerTls()) c += " STARTTLS";
    return c;
  }

  void imapLine(const std::string& line) {
    if (mode_ == Mode::Idle) {
      if (upper(line) == "DONE") {
        mode_ = Mode::Lines;
        send(pending_tag_ + " OK IDLE terminated.\r\n");
      }
      return;
    }
    if (mode_ == Mode::Sasl) {
      if (line == "*") {
        mode_ = Mode::Lines;
        send(pending_tag_ + " BAD Authentication aborted.\r\n");
        return;
      }
      if (sasl_login_step_ == 1) {
        sasl_login_step_ = 2;
        send("+ UGFzc3dvcmQ6\r\n");
        return;
      }
      mode_ = Mode::Lines;
      bool ok = sasl_login_step_ == 2 ? (g_opt.password.empty() || b64decode(line) == g_opt.password) : plainOk(line);
      sasl_login_step_ = 0;
      loginReply(ok);
      return;
    }
    // A line ending in {N} or {N+} continues after N literal bytes.
    if (!line.empty() && line.back() == '}') {
      size_t open = line.rfind('{');
      if (open != std::string::npos) {
        std::string num = line.substr(open + 1, line.size() - open - 2);
        bool plus = !num.empty() && num.back() == '+';
        if (plus) num.pop_back();
        if (!num.empty() && num.find_first_not_of("0123456789") == std::string::npos) {
          literal_left_ = std::strtoull(num.c_str(), nullptr, 10);
          acc_ += line;
          if (!plus) send("+ Ready for literal data\r\n");
          if (literal_left_) mode_ = Mode::Literal;
          return;
        }
      }
    }
    std::string full = acc_.empty() ? line : acc_ + line;
    acc_.clear();
    std::string_view rest = full;
    std::string tag(nextWord(rest));
    std::string verb = upper(nextWord(rest));
    if (verb == "UID") verb = upper(nextWord(rest));
    if (tag.empty()) return;
    pending_tag_ = tag;
    if (verb == "CAPABILITY") {
      send("* CAPABILITY " + imapCaps() + "\r\n" + tag + " OK Capability completed.\r\n");
    } else if (verb == "STARTTLS" && offerTls()) {
      send(tag + " OK Begin TLS negotiation now.\r\n");
      tls_after_flush_ = true;
    } else if (verb == "ID") {
      send("* ID (\"name\" \"mailshim-stub\")\r\n" + tag + " OK ID completed.\r\n");
    } else if (verb == "LOGIN") {
      loginReply(g_opt.password.empty() || full.find(g_opt.password) != std::string::npos);
    } else if (verb == "AUTHENTICATE") {
      std::string mech = upper(nextWord(rest));
      std::string ir(nextWord(rest));
      if (mech == "PLAIN" && !ir.empty()) {
        loginReply(plainOk(ir));
      } else if (mech == "PLAIN") {
        mode_ = Mode::Sasl;
        send("+ \r\n");
      } else if (mech == "LOGIN") {
        mode_ = Mode::Sasl;
        sasl_login_step_ = ir.empty() ? 1 : 2;
        send(ir.empty() ? "+ VXNlcm5hbWU6\r\n" : "+ UGFzc3dvcmQ6\r\n");
      } else {
        send(tag + " NO Unsupported mechanism.\r\n");
      }
    } else if (verb == "SELECT" || verb == "EXAMINE") {
      send("* FLAGS (\\Seen \\Deleted)\r\n* 1 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 1] UIDs valid\r\n"
           "* OK [UIDNEXT 2] Predicted next UID\r\n" +
           tag + " OK [READ-WRITE] " + verb + " completed.\r\n");
    } else if (verb == "FETCH") {
      send("* 1 FETCH (UID 1 RFC822.SIZE " + std::to_string(g_body.size()) + " BODY[] {" +
           std::to_string(g_body.size()) + "}\r\n");
      sendBody();
      send(")\r\n" + tag + " OK Fetch completed.\r\n");
    } else if (verb == "IDLE") {
      mode_ = Mode::Idle;
      send("+ idling\r\n");
    } else if (verb == "LOGOUT") {
      send("* BYE Logging out\r\n" + tag + " OK Logout completed.\r\n");
      close_after_flush_ = true;
    } else {
      send(tag + " OK " + (verb.empty() ? std::string("NOOP") : verb) + " completed.\r\n");
    }
  }

  void loginReply(bool ok) {
    if (g_opt.proto == Proto::Imap) {
      if (ok) g_logins++;
      send(pending_tag_ + (ok ? " OK [CAPABILITY IMAP4rev1 IDLE ID LITERAL+] Logged in\r\n"
                              : " NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"));
    } else if (g_opt.proto == Proto::Pop3) {
      if (ok) g_logins++;
      send(ok ? "+OK Logged in.\r\n" : "-ERR [AUTH] Authentication failed.\r\n");
    } else {
      if (ok) g_logins++;
      send(ok ? "235 2.7.0 Authentication successful\r\n" : "535 5.7.8 Error: authentication failed\r\n");
    }
  }

  // --- POP3 ---
  void pop3Line(const std::string& line) {
    if (mode_ == Mode::Sasl) {
      if (line == "*") {
        mode_ = Mode::Lines;
        send("-ERR Aborted\r\n");
        return;
      }
      if (sasl_login_step_ == 1) {
        sasl_login_step_ = 2;
        send("+ UGFzc3dvcmQ6\r\n");
        return;
      }
      mode_ = Mode::Lines;
      bool ok = sasl_login_step_ == 2 ? (g_opt.password.empty() || b64decode(line) == g_opt.password) : plainOk(line);
      sasl_login_step_ = 0;
      loginReply(ok);
      return;
    }
    std::string_view rest = line;
    std::string verb = upper(nextWord(rest));
    if (verb == "CAPA") {
      send(std::string("+OK\r\nUSER\r\nSASL PLAIN LOGIN\r\nXCLIENT\r\nPIPELINING\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n") +
           (offerTls() ? "STLS\r\n" : "") + ".\r\n");
    } else if (verb == "STLS" && offerTls()) {
      send("+OK Begin TLS negotiation now.\r\n");
      tls_after_flush_ = true;
    } else if (verb == "XCLIENT" || verb == "USER" || verb == "NOOP" || verb == "RSET" || verb == "DELE") {
      send("+OK\r\n");
    } else if (verb == "PASS") {
      loginReply(g_opt.password.empty() || std::string(rest) == g_opt.password);
    } else if (verb == "AUTH") {
      std::string mech = upper(nextWord(rest));
      std::string ir(nextWord(rest));
      if (mech.empty()) {
        send("+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n");
      } else if (mech == "PLAIN" && !ir.empty()) {
        loginReply(plainOk(ir));
      } else if (mech == "PLAIN") {
        mode_ = Mode::Sasl;
        send("+ \r\n");
      } else if (mech == "LOGIN") {
        mode_ = Mode::Sasl;
        sasl_login_step_ = ir.empty() ? 1 : 2;
        send(ir.empty() ? "+ VXNlcm5hbWU6\r\n" : "+ UGFzc3dvcmQ6\r\n");
      } else {
        send("-ERR Unsupported mechanism\r\n");
      }
    } else if (verb == "STAT") {
      send("+OK 1 " + std::to_string(g_body.size()) + "\r\n");
    } else if (verb == "LIST") {
      if (rest.empty())
        send("+OK 1 messages\r\n1 " + std::to_string(g_body.size()) + "\r\n.\r\n");
      else
        send("+OK 1 " + std::to_string(g_body.size()) + "\r\n");
    } else if (verb == "UIDL") {
      send(rest.empty() ? std::string("+OK\r\n1 stub1\r\n.\r\n") : std::string("+OK 1 stub1\r\n"));
    } else if (verb == "RETR" || verb == "TOP") {
      send("+OK " + std::to_string(g_body.size()) + " octets\r\n");
      sendBody();
      send(".\r\n");
    } else if (verb == "QUIT") {
      send("+OK Logging out.\r\n");
      close_after_flush_ = true;
    } else {
      send("-ERR Unknown command\r\n");
    }
  }

  // --- SMTP ---
  void smtpLine(const std::string& line) {
    if (mode_ == Mode::Sasl) {
      if (line == "*") {
        mode_ = Mode::Lines;
        send("501 5.7.0 Authentication aborted\r\n");
        return;
      }
      if (sasl_login_step_ == 1) {
        sasl_login_step_ = 2;
        send("334 UGFzc3dvcmQ6\r\n");
        return;
      }
      mode_ = Mode::Lines;
      bool ok = sasl_login_step_ == 2 ? (g_opt.password.empty() || b64decode(line) == g_opt.password) : plainOk(line);
      sasl_login_step_ = 0;
      loginReply(ok);
      return;
    }
    std::string_view rest = line;
    std::string verb = upper(nextWord(rest));
    if (verb == "EHLO") {
      send(std::string("250-stub.mail.test\r\n250-PIPELINING\r\n250-SIZE 0\r\n250-8BITMIME\r\n"
                       "250-ENHANCEDSTATUSCODES\r\n") +
           (offerTls() ? "250-STARTTLS\r\n" : "") +
           "250-AUTH PLAIN LOGIN\r\n250-XCLIENT NAME ADDR PORT PROTO HELO LOGIN\r\n250 DSN\r\n");
    } else if (verb == "HELO") {
      send("250 stub.mail.test\r\n");
    } else if (verb == "STARTTLS" && offerTls()) {
      send("220 2.0.0 Ready to start TLS\r\n");
      tls_after_flush_ = true;
    } else if (verb == "XCLIENT") {
      send("220 stub.mail.test ESMTP stub\r\n");
    } else if (verb == "AUTH") {
      std::string mech = upper(nextWord(rest));
      std::string ir(nextWord(rest));
      if (mech == "PLAIN" && !ir.empty()) {
        loginReply(plainOk(ir));
      } else if (mech == "PLAIN") {
        mode_ = Mode::Sasl;
        send("334 \r\n");
      } else if (mech == "LOGIN") {
        mode_ = Mode::Sasl;
        sasl_login_step_ = ir.empty() ? 1 : 2;
        send(ir.empty() ? "334 VXNlcm5hbWU6\r\n" : "334 UGFzc3dvcmQ6\r\n");
      } else {
        send("504 5.5.4 Unsupported mechanism\r\n");
      }
    } else if (verb == "MAIL") {
      send("250 2.1.0 Ok\r\n");
    } else if (verb == "RCPT") {
      send("250 2.1.5 Ok\r\n");
    } else if (verb == "DATA") {
      send("354 End data with <CR><LF>.<CR><LF>\r\n");
      // A virtual CRLF before the data lets an empty message ("." first) end too.
      evbuffer_prepend(bufferevent_get_input(bev_), "\r\n", 2);
      mode_ = Mode::Data;
    } else if (verb == "RSET" || verb == "NOOP") {
      send("250 2.0.0 Ok\r\n");
    } else if (verb == "QUIT") {
      send("221 2.0.0 Bye\r\n");
      close_after_flush_ = true;
    } else {
      send("502 5.5.2 Error: command not recognized\r\n");
    }
  }

  int fd_;
  bufferevent* bev_ = nullptr;
  bool owns_fd_ = true;
  bool tls_ = false;
  bool tls_after_flush_ = false;
  bool close_after_flush_ = false;
  Mode mode_ = Mode::Lines;
  size_t literal_left_ = 0;
  int sasl_login_step_ = 0;
  std::string acc_;
  std::string pending_tag_;
};

void acceptCb(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void*) {
  g_accepted++;
  if (g_opt.max_conns && g_conns >= g_opt.max_conns) {
    ::close(fd);
    return;
  }
  new Conn(fd);
}

void stopCb(evutil_socket_t, short, void*) { event_base_loopbreak(g_base); }

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: mailshim-stub --proto imap|pop3|smtp --listen HOST:PORT [--cert F --key F] [--implicit]\n"
               "                     [--msg-size BYTES] [--password P] [--seconds S] [--max-conns N]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--proto") {
      std::string p = val();
      if (p == "imap") g_opt.proto = Proto::Imap;
      else if (p == "pop3") g_opt.proto = Proto::Pop3;
      else if (p == "smtp") g_opt.proto = Proto::Smtp;
      else usage();
    } else if (a == "--listen") {
      listen = val();
    } else if (a == "--cert") {
      g_opt.cert = val();
    } else if (a == "--key") {
      g_opt.key = val();
    } else if (a == "--implicit") {
      g_opt.implicit = true;
    } else if (a == "--msg-size") {
      g_opt.msg_size = std::strtoull(val().c_str(), nullptr, 10);
    } else if (a == "--password") {
      g_opt.password = val();
    } else if (a == "--seconds") {
      g_opt.seconds = std::strtod(val().c_str(), nullptr);
    } else if (a == "--max-conns") {
      g_opt.max_conns = std::strtol(val().c_str(), nullptr, 10);
    } else {
      usage();
    }
  }
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) usage();
  g_opt.host = listen.substr(0, colon);
  g_opt.port = std::atoi(listen.c_str() + colon + 1);
  sockaddr_storage ss{};
  socklen_t slen = 0;
  if (!bench::parseAddr(g_opt.host, g_opt.port, ss, slen) || !bench::isLoopback(ss)) {
    std::fprintf(stderr, "mailshim-stub: listen address must be numeric loopback (127.0.0.0/8, ::1)\n");
    return 2;
  }
  if (g_opt.implicit && g_opt.cert.empty()) {
    std::fprintf(stderr, "mailshim-stub: --implicit needs --cert and --key\n");
    return 2;
  }
  long fdcap = bench::raiseFdLimit();
  if (!g_opt.max_conns) g_opt.max_conns = fdcap;
  signal(SIGPIPE, SIG_IGN);
  g_body = bench::bodyBlock(g_opt.msg_size);

  if (!g_opt.cert.empty()) {
    g_ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(g_ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(g_ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(g_ctx, g_opt.cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(g_ctx, g_opt.key.c_str(), SSL_FILETYPE_PEM) != 1) {
      std::fprintf(stderr, "mailshim-stub: cannot load certificate/key\n");
      ERR_print_errors_fp(stderr);
      return 1;
    }
  }

  g_base = event_base_new();
  evconnlistener* lev = evconnlistener_new_bind(g_base, acceptCb, nullptr, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                                4096, reinterpret_cast<sockaddr*>(&ss), static_cast<int>(slen));
  if (!lev) {
    std::fprintf(stderr, "mailshim-stub: cannot listen on %s: %s\n", listen.c_str(), std::strerror(errno));
    return 1;
  }
  event* sigint = evsignal_new(g_base, SIGINT, stopCb, nullptr);
  event* sigterm = evsignal_new(g_base, SIGTERM, stopCb, nullptr);
  evsignal_add(sigint, nullptr);
  evsignal_add(sigterm, nullptr);
  event* timer = nullptr;
  if (g_opt.seconds > 0) {
    timer = evtimer_new(g_base, stopCb, nullptr);
    timeval tv{static_cast<time_t>(g_opt.seconds), static_cast<suseconds_t>((g_opt.seconds - double(long(g_opt.seconds))) * 1e6)};
    evtimer_add(timer, &tv);
  }
  std::fprintf(stderr, "mailshim-stub: %s on %s%s, message %zu bytes\n",
               g_opt.proto == Proto::Imap ? "imap" : g_opt.proto == Proto::Pop3 ? "pop3" : "smtp", listen.c_str(),
               g_opt.implicit ? " (implicit TLS)" : g_ctx ? " (STARTTLS offered)" : "", g_body.size());
  event_base_dispatch(g_base);
  std::fprintf(stderr, "mailshim-stub: accepted=%" PRIu64 " logins=%" PRIu64 " messages=%" PRIu64 " data_bytes=%" PRIu64 "\n",
               g_accepted, g_logins, g_messages, g_data_bytes);
  if (timer) event_free(timer);
  event_free(sigint);
  event_free(sigterm);
  evconnlistener_free(lev);
  // Connections still open are leaked at exit on purpose (the process ends).
  event_base_free(g_base);
  if (g_ctx) SSL_CTX_free(g_ctx);
  return 0;
}
