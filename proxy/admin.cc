// Admin console. See admin.h.
#include "proxy/admin.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>

#include "protocols/common/admin_command.h"
#include "protocols/common/text.h"
#include "proxy/client_limits.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/stats.h"
#include "proxy/upstream_health.h"

namespace mailshim::proxy {

namespace {

constexpr int kReadTimeoutS = 10;

// A table cell: printable, no spaces (so columns split on whitespace).
std::string cell(std::string_view v) {
  if (v.empty()) return "-";
  std::string out = proto::logSafe(v, 200);
  for (char& c : out)
    if (c == ' ') c = '_';
  return out;
}

std::string joinCidrs(const std::vector<conf::Cidr>& v) {
  std::string out;
  for (const auto& c : v) out += (out.empty() ? "" : ",") + c.toString();
  return out.empty() ? "*" : out;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + cell(s);
  return out.empty() ? "*" : out;
}

std::string pad(std::string s, size_t w) {
  if (s.size() < w) s.append(w - s.size(), ' ');
  return s;
}

std::string formatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (widths.size() <= i) widths.push_back(0);
      widths[i] = std::max(widths[i], r[i].size());
    }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) line += (i + 1 < r.size() ? pad(r[i], widths[i] + 2) : r[i]);
    out += line + "\n";
  }
  return out;
}

std::string showSessions(std::vector<SessionInfo> all) {
  std::sort(all.begin(), all.end(), [](const SessionInfo& a, const SessionInfo& b) { return a.age_ms > b.age_ms; });
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"ID", "WORKER", "LISTENER", "PROTO", "STATE", "CLIENT", "USER", "RULE", "AGE_S", "BYTES_IN",
                  "BYTES_OUT"});
  for (const auto& s : all)
    rows.push_back({s.id, std::to_string(s.worker), cell(s.listener), s.protocol, s.state, cell(s.client_ip),
                    cell(s.user), cell(s.rule), std::to_string(s.age_ms / 1000), std::to_string(s.bytes_in),
                    std::to_string(s.bytes_out)});
  return formatTable(rows);
}

std::string showUpstreams(const conf::Config& cfg, const UpstreamHealth& health) {
  auto members = health.members();
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"NAME", "PROTO", "ADDRESS", "TLS", "CLIENT_ADDRESS", "POOL", "HEALTH"});
  for (const auto& u : cfg.upstreams) {
    std::string pool = "-";
    for (const auto& p : cfg.pools)
      if (std::find(p.upstreams.begin(), p.upstreams.end(), u.name) != p.upstreams.end()) pool = p.name;
    std::string state = "not checked";
    for (const auto& m : members)
      if (m.name == u.name)
        state = std::string(m.up ? "up" : "down") + " (ok " + std::to_string(m.ok_streak) + ", fail " +
                std::to_string(m.fail_streak) + ")";
    const char* tls = u.tls == proto::UpstreamTls::Implicit ? "implicit"
                      : u.tls == proto::UpstreamTls::Starttls ? "starttls"
                                                              : "none";
    const char* ca = u.client_address == proto::ClientAddressMode::Xclient  ? "xclient"
                     : u.client_address == proto::ClientAddressMode::ImapId ? "imap-id"
                     : u.client_address == proto::ClientAddressMode::ProxyV2 ? "proxy-v2"
                                                                             : "none";
    rows.push_back({cell(u.name), std::string(proto::protocolName(u.protocol)),
                    cell(u.host) + ":" + std::to_string(u.port), tls, ca, cell(pool), cell(state)});
  }
  return formatTable(rows);
}

std::string showRules(const conf::Config& cfg) {
  std::map<std::string, int64_t> uses;
  for (const auto& row : stats().quirk_rule_uses.rows())
    if (row.values.size() == 2) uses[row.values[1]] += row.value;
  conf::Date today = conf::Date::today();
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"#", "NAME", "NETWORKS", "LISTENERS", "USERS", "FINGERPRINTS", "QUIRKS", "TLS", "SUNSET", "LIMITS",
                  "QUIRK_USES"});
  int n = 0;
  for (const auto& r : cfg.rules) {
    std::string sunset = "-";
    if (r.sunset) {
      long long days = r.sunset->daysSinceEpoch() - today.daysSinceEpoch();
      sunset = r.sunset->toString() +
               (days >= 0 ? "(in_" + std::to_string(days) + "_days)"
                          : "(overdue_" + std::string(r.after_sunset == conf::AfterSunset::Refuse ? "refuse" : "warn") +
                                ")");
    }
    std::string limits;
    if (r.limits.max_sessions_per_address)
      limits += "sessions=" + std::to_string(*r.limits.max_sessions_per_address);
    if (r.limits.auth_failure_delay_ms)
      limits += std::string(limits.empty() ? "" : ",") + "fail_delay_ms=" + std::to_string(*r.limits.auth_failure_delay_ms);
    if (r.limits.max_auth_failures)
      limits += std::string(limits.empty() ? "" : ",") + "max_auth_failures=" + std::to_string(*r.limits.max_auth_failures);
    std::string quirks = r.quirks.toString();
    for (char& c : quirks)
      if (c == ' ') c = ',';
    rows.push_back({std::to_string(++n), cell(r.name), joinCidrs(r.networks), join(r.listeners), join(r.users),
                    join(r.fingerprints), quirks.empty() ? "-" : quirks, r.tls_profile ? *r.tls_profile : "-", sunset,
                    limits.empty() ? "default" : limits, std::to_string(uses[r.name])});
  }
  return formatTable(rows);
}

std::string showClients(const ClientLimits& limits) {
  int64_t now = ClientLimits::nowMs();
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"CLIENT", "SESSIONS", "RECENT_AUTH_FAILURES", "LAST_FAILURE_S_AGO"});
  for (const auto& e : limits.snapshot())
    rows.push_back({e.key, std::to_string(e.sessions), std::to_string(e.failures),
                    e.failures ? std::to_string((now - e.last_failure_ms) / 1000) : "-"});
  return formatTable(rows);
}

}  // namespace

// One console connection. Owned by itself (`self`) until its reply has been
// written, so replies that wait for the workers outlive a client that left.
struct AdminConsole::Conn {
  AdminConsole* console = nullptr;
  bufferevent* bev = nullptr;
  std::shared_ptr<Conn> self;
  uid_t uid = 0;
  bool answered = false;
  std::function<void()> after;  // runs once the reply has left (SHUTDOWN)

  void finish() {
    if (bev) bufferevent_free(bev);
    bev = nullptr;
    auto then = std::move(after);
    auto keep = std::move(self);  // may destroy *this when `keep` goes out of scope
    if (then) then();
  }

  void reply(const std::string& body, bool ok, const std::string& status) {
    answered = true;
    if (!bev) {  // the client left while the workers were asked
      finish();
      return;
    }
    std::string out = body + (ok ? "OK" : "ERR") + (status.empty() ? "" : " " + status) + "\n";
    bufferevent_disable(bev, EV_READ);
    bufferevent_setcb(bev, nullptr, writeCb, eventCb, this);
    bufferevent_write(bev, out.data(), out.size());
  }

  static void readCb(bufferevent* bev, void* arg) {
    auto* c = static_cast<Conn*>(arg);
    if (c->answered) return;
    evbuffer* in = bufferevent_get_input(bev);
    size_t len = 0;
    char* line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
    if (!line) {
      if (evbuffer_get_length(in) > proto::kAdminMaxLine) c->reply("", false, "line too long");
      return;
    }
    std::string text(line, len);
    free(line);
    c->console->dispatch(c->self, text);
  }

  static void writeCb(bufferevent* bev, void* arg) {
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) static_cast<Conn*>(arg)->finish();
  }

  static void eventCb(bufferevent*, short, void* arg) {
    auto* c = static_cast<Conn*>(arg);
    if (c->answered) {
      c->finish();
    } else if (c->bev) {
      // Gone before asking anything, or while the answer is being collected:
      // free the socket now; reply() finishes the rest.
      bufferevent_free(c->bev);
      c->bev = nullptr;
      if (!c->answered) c->self.reset();
    }
  }
};

AdminConsole::AdminConsole(Server& server, event_base* base) : server_(server), base_(base) {}

AdminConsole::~AdminConsole() { close(); }

void AdminConsole::close() {
  if (listener_) {
    evconnlistener_free(listener_);
    listener_ = nullptr;
    ::unlink(path_.c_str());
  }
}

bool AdminConsole::open(const conf::AdminSettings& settings) {
  path_ = settings.socket;
  allowed_uids_ = {0, ::geteuid()};
  for (const auto& name : settings.users) {
    if (passwd* pw = ::getpwnam(name.c_str()))
      allowed_uids_.push_back(pw->pw_uid);
    else
      spdlog::warn("admin{}{}", kv("warning", "unknown user in [admin] users, ignored"), kv("user", name));
  }
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path_.size() >= sizeof sun.sun_path) {
    spdlog::error("admin{}{}", kv("socket", path_), kv("error", "path too long"));
    return false;
  }
  std::memcpy(sun.sun_path, path_.c_str(), path_.size() + 1);
  // A stale socket from an earlier run is replaced; anything else is not touched.
  struct stat st{};
  if (::lstat(path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      spdlog::error("admin{}{}", kv("socket", path_), kv("error", "exists and is not a socket"));
      return false;
    }
    ::unlink(path_.c_str());
  }
  mode_t old = ::umask(0777 & ~settings.mode);
  listener_ = evconnlistener_new_bind(base_, acceptCb, this, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
                                      reinterpret_cast<sockaddr*>(&sun), sizeof sun);
  ::umask(old);
  if (!listener_) {
    spdlog::error("admin{}{}", kv("socket", path_), kv("error", std::strerror(errno)));
    return false;
  }
  ::chmod(path_.c_str(), settings.mode);
  spdlog::info("admin{}{}", kv("socket", path_), kv("mode", std::to_string(settings.mode)));
  return true;
}

bool AdminConsole::allowed(uid_t uid) const {
  return std::find(allowed_uids_.begin(), allowed_uids_.end(), uid) != allowed_uids_.end();
}

void AdminConsole::acceptCb(evconnlistener*, int fd, ::sockaddr*, int, void* arg) {
  static_cast<AdminConsole*>(arg)->onAccept(fd);
}

void AdminConsole::onAccept(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  bool ok = ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && allowed(cred.uid);
  if (!ok) {
    spdlog::warn("admin{}{}{}", kv("result", "refused"), kv("uid", static_cast<uint64_t>(cred.uid)),
                 kv("pid", static_cast<uint64_t>(cred.pid)));
    static const char kDenied[] = "ERR permission denied\n";
    (void)!::write(fd, kDenied, sizeof kDenied - 1);
    ::close(fd);
    return;
  }
  evutil_make_socket_nonblocking(fd);
  auto c = std::make_shared<Conn>();
  c->console = this;
  c->uid = cred.uid;
  c->self = c;
  c->bev = bufferevent_socket_new(base_, fd, BEV_OPT_CLOSE_ON_FREE);
  timeval tv{kReadTimeoutS, 0};
  bufferevent_set_timeouts(c->bev, &tv, &tv);
  bufferevent_setcb(c->bev, Conn::readCb, nullptr, Conn::eventCb, c.get());
  bufferevent_enable(c->bev, EV_READ);
}

void AdminConsole::dispatch(std::shared_ptr<Conn> c, const std::string& line) {
  auto cmd = proto::parseAdminCommand(line);
  stats().admin_commands++;
  spdlog::info("admin{}{}", kv("uid", static_cast<uint64_t>(c->uid)),
               kv("command", cmd.verb == proto::AdminVerb::Invalid ? "invalid" : line));
  auto cfg = server_.config();
  switch (cmd.verb) {
    case proto::AdminVerb::Invalid:
      c->reply("", false, cmd.error);
      return;
    case proto::AdminVerb::Help:
      c->reply(std::string(proto::adminHelp()), true, "");
      return;
    case proto::AdminVerb::ShowStats:
      c->reply(renderText(stats()), true, "");
      return;
    case proto::AdminVerb::ShowSessions:
      server_.collectSessions([c](std::vector<SessionInfo> all) {
        size_t n = all.size();
        c->reply(showSessions(std::move(all)), true, std::to_string(n) + " sessions");
      });
      return;
    case proto::AdminVerb::ShowUpstreams:
      c->reply(showUpstreams(*cfg, server_.health()), true, "");
      return;
    case proto::AdminVerb::ShowRules:
      c->reply(showRules(*cfg), true, std::to_string(cfg->rules.size()) + " rules, first match wins");
      return;
    case proto::AdminVerb::ShowClients:
      c->reply(showClients(server_.clientLimits()), true, "");
      return;
    case proto::AdminVerb::Reload: {
      std::string error;
      if (server_.reload(&error))
        c->reply("", true, "reloaded " + cfg->source_path);
      else
        c->reply("", false, "reload refused, running configuration kept: " + proto::logSafe(error, 2000));
      return;
    }
    case proto::AdminVerb::Kill:
      server_.killSession(cmd.arg, [c, id = cmd.arg](bool found) {
        if (found)
          c->reply("", true, "killed " + id);
        else
          c->reply("", false, "no session " + id);
      });
      return;
    case proto::AdminVerb::Shutdown:
    case proto::AdminVerb::ShutdownGraceful: {
      bool graceful = cmd.verb == proto::AdminVerb::ShutdownGraceful;
      // Only once the reply has left: with nothing to drain the process
      // ends right away.
      Server* server = &server_;
      c->after = [server, graceful] {
        if (graceful)
          server->beginDrain();
        else
          server->shutdownNow();
      };
      c->reply("", true, graceful ? "draining" : "stopping");
      return;
    }
  }
}

}  // namespace mailshim::proxy
