// ConfigLoader. See config_loader.h. Reads one file; no sockets.
#define TOML_EXCEPTIONS 0
#define TOML_HEADER_ONLY 1
#include "conf/config_loader.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "protocols/common/text.h"
#include "protocols/protocol_registry.h"

namespace mailshim::conf {
namespace {

class Loader {
 public:
  explicit Loader(std::string path) : path_(std::move(path)) {}

  LoadResult run(std::string_view text) {
    auto parsed = toml::parse(text, path_);
    if (!parsed) {
      const auto& err = parsed.error();
      error(err.source(), std::string(err.description()));
      return finish();
    }
    auto cfg = std::make_shared<Config>();
    cfg->source_path = path_;
    const toml::table& root = parsed.table();
    checkKeys(root, {"server", "limits", "metrics", "tls", "certificate", "listener", "upstream", "pool", "rule",
                     "directory", "admin"},
              "top level");
    if (auto* t = root["directory"].as_table()) readDirectory(*t, cfg->directory);
    if (auto* t = root["server"].as_table()) readServer(*t, cfg->server);
    if (auto* t = root["limits"].as_table()) readLimits(*t, cfg->limits);
    if (auto* t = root["metrics"].as_table()) {
      checkKeys(*t, {"address", "port"}, "[metrics]");
      if (getString(*t, "address", cfg->metrics.address, false, "[metrics]") && !IpAddress::parse(cfg->metrics.address))
        error((*t)["address"].node()->source(), "[metrics] address must be an IP address");
      getUint(*t, "port", cfg->metrics.port, 1, 65535, false, "[metrics]");
    }
    if (auto* t = root["admin"].as_table()) {
      checkKeys(*t, {"socket", "mode", "users"}, "[admin]");
      if (getString(*t, "socket", cfg->admin.socket, false, "[admin]") && !cfg->admin.socket.empty() &&
          (cfg->admin.socket[0] != '/' || cfg->admin.socket.size() > 100))
        error((*t)["socket"].node()->source(), "[admin] socket must be an absolute path of at most 100 bytes");
      getUint(*t, "mode", cfg->admin.mode, 0, 0777, false, "[admin]");
      getStringArray(*t, "users", cfg->admin.users, "[admin]");
    }
    if (auto* t = root["tls"].as_table()) readTls(*t, cfg->tls);
    readArray(root, "certificate", [&](const toml::table& t) { readCertificate(t, *cfg); });
    readArray(root, "upstream", [&](const toml::table& t) { readUpstream(t, *cfg); });
    readArray(root, "pool", [&](const toml::table& t) { readPool(t, *cfg); });
    readArray(root, "listener", [&](const toml::table& t) { readListener(t, *cfg); });
    readArray(root, "rule", [&](const toml::table& t) { readRule(t, *cfg); });
    crossCheck(root, *cfg);
    config_ = std::move(cfg);
    return finish();
  }

 private:
  LoadResult finish() {
    LoadResult r;
    r.errors = std::move(errors_);
    r.warnings = std::move(warnings_);
    if (r.errors.empty()) r.config = std::move(config_);
    return r;
  }

  std::string where(const toml::source_region& src) const {
    std::ostringstream os;
    os << path_ << ":" << src.begin.line << ":" << src.begin.column;
    return os.str();
  }
  void error(const toml::source_region& src, const std::string& msg) {
    errors_.push_back(where(src) + ": " + msg);
  }
  void warning(const toml::source_region& src, const std::string& msg) {
    warnings_.push_back(where(src) + ": " + msg);
  }

  void checkKeys(const toml::table& t, std::initializer_list<std::string_view> allowed,
                 const std::string& what) {
    for (auto&& [k, v] : t) {
      bool known = false;
      for (auto a : allowed) known = known || (k.str() == a);
      if (!known) error(v.source(), "unknown key '" + std::string(k.str()) + "' in " + what);
    }
  }

  template <typename F>
  void readArray(const toml::table& root, std::string_view key, F&& fn) {
    auto node = root[key];
    if (!node) return;
    auto* arr = node.as_array();
    if (!arr) {
      error(node.node()->source(), std::string(key) + " must be an array of tables: use [[" +
                                       std::string(key) + "]]");
      return;
    }
    for (auto& el : *arr) {
      if (auto* t = el.as_table())
        fn(*t);
      else
        error(el.source(), std::string(key) + " entries must be tables");
    }
  }

  bool getString(const toml::table& t, std::string_view key, std::string& out, bool required,
                 const std::string& what) {
    auto node = t[key];
    if (!node) {
      if (required) error(t.source(), what + ": missing required key '" + std::string(key) + "'");
      return false;
    }
    if (auto v = node.value<std::string>()) {
      out = *v;
      return true;
    }
    error(node.node()->source(), std::string(key) + " must be a string");
    return false;
  }

  template <typename N>
  bool getUint(const toml::table& t, std::string_view key, N& out, uint64_t min, uint64_t max,
               bool required, const std::string& what) {
    auto node = t[key];
    if (!node) {
      if (required) error(t.source(), what + ": missing required key '" + std::string(key) + "'");
      return false;
    }
    auto v = node.value<int64_t>();
    if (!node.is_integer() || !v) {
      error(node.node()->source(), std::string(key) + " must be an integer");
      return false;
    }
    if (*v < 0 || static_cast<uint64_t>(*v) < min || static_cast<uint64_t>(*v) > max) {
      error(node.node()->source(), std::string(key) + " = " + std::to_string(*v) +
                                       " is out of range [" + std::to_string(min) + ", " +
                                       std::to_string(max) + "]");
      return false;
    }
    out = static_cast<N>(*v);
    return true;
  }

  void readServer(const toml::table& t, ServerSettings& s) {
    checkKeys(t, {"name", "log_level", "drain_timeout_ms", "state_dir", "workers"}, "[server]");
    getUint(t, "workers", s.workers, 0, 256, false, "[server]");
    getString(t, "name", s.name, false, "[server]");
    if (!validHostName(s.name)) error(t.source(), "[server] name '" + s.name + "' is not a valid host name");
    if (getString(t, "log_level", s.log_level, false, "[server]")) {
      static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error"};
      if (!kLevels.count(s.log_level))
        error(t["log_level"].node()->source(), "log_level must be one of trace, debug, info, warn, error");
    }
    getUint(t, "drain_timeout_ms", s.drain_timeout_ms, 0, 3600000, false, "[server]");
    getString(t, "state_dir", s.state_dir, false, "[server]");
  }

  void readLimits(const toml::table& t, Limits& l) {
    checkKeys(t, {"max_line_bytes", "max_errors", "preauth_timeout_ms", "idle_timeout_ms",
                  "max_message_bytes", "relay_buffer_bytes", "max_sessions_per_address", "handshake_timeout_ms",
                  "login_timeout_ms", "auth_failure_delay_ms", "auth_failure_delay_max_ms", "auth_failure_window_ms",
                  "max_auth_failures"},
              "[limits]");
    getUint(t, "max_line_bytes", l.max_line_bytes, 512, 65536, false, "[limits]");
    getUint(t, "max_errors", l.max_errors, 1, 1000, false, "[limits]");
    getUint(t, "preauth_timeout_ms", l.preauth_timeout_ms, 100, 3600000, false, "[limits]");
    getUint(t, "idle_timeout_ms", l.idle_timeout_ms, 1000, 86400000, false, "[limits]");
    getUint(t, "max_message_bytes", l.max_message_bytes, 0, uint64_t{1} << 40, false, "[limits]");
    getUint(t, "relay_buffer_bytes", l.relay_buffer_bytes, 4096, 64u << 20, false, "[limits]");
    getUint(t, "max_sessions_per_address", l.max_sessions_per_address, 0, 1000000, false, "[limits]");
    getUint(t, "handshake_timeout_ms", l.handshake_timeout_ms, 100, 600000, false, "[limits]");
    getUint(t, "login_timeout_ms", l.login_timeout_ms, 1000, 3600000, false, "[limits]");
    getUint(t, "auth_failure_delay_ms", l.auth_failure_delay_ms, 0, 60000, false, "[limits]");
    getUint(t, "auth_failure_delay_max_ms", l.auth_failure_delay_max_ms, 0, 300000, false, "[limits]");
    getUint(t, "auth_failure_window_ms", l.auth_failure_window_ms, 1000, 86400000, false, "[limits]");
    getUint(t, "max_auth_failures", l.max_auth_failures, 0, 1000, false, "[limits]");
    if (l.auth_failure_delay_max_ms < l.auth_failure_delay_ms)
      error(t.source(), "[limits] auth_failure_delay_max_ms must be at least auth_failure_delay_ms");
  }

  void readTls(const toml::table& t, TlsSettings& s) {
    checkKeys(t, {"cert_file", "key_file", "audit_ca_file", "ticket_key_rotation_s", "session_tickets"}, "[tls]");
    if (getString(t, "cert_file", s.cert_file, true, "[tls]")) checkReadable(t["cert_file"].node()->source(), s.cert_file);
    if (getString(t, "key_file", s.key_file, true, "[tls]")) checkReadable(t["key_file"].node()->source(), s.key_file);
    if (getString(t, "audit_ca_file", s.audit_ca_file, false, "[tls]"))
      checkReadable(t["audit_ca_file"].node()->source(), s.audit_ca_file);
    getUint(t, "ticket_key_rotation_s", s.ticket_key_rotation_s, 60, 7 * 86400, false, "[tls]");
    getUint(t, "session_tickets", s.session_tickets, 0, 8, false, "[tls]");
  }

  void readCertificate(const toml::table& t, Config& cfg) {
    checkKeys(t, {"cert_file", "key_file"}, "[[certificate]]");
    CertificateFiles c;
    if (getString(t, "cert_file", c.cert_file, true, "[[certificate]]"))
      checkReadable(t["cert_file"].node()->source(), c.cert_file);
    if (getString(t, "key_file", c.key_file, true, "[[certificate]]"))
      checkReadable(t["key_file"].node()->source(), c.key_file);
    cfg.tls.extra.push_back(std::move(c));
  }

  bool getStringArray(const toml::table& t, std::string_view key, std::vector<std::string>& out,
                      const std::string& what) {
    auto node = t[key];
    if (!node) return false;
    auto* arr = node.as_array();
    if (!arr) {
      error(node.node()->source(), what + ": " + std::string(key) + " must be an array of strings");
      return false;
    }
    for (auto& el : *arr) {
      if (auto v = el.value<std::string>())
        out.push_back(*v);
      else
        error(el.source(), what + ": " + std::string(key) + " must contain only strings");
    }
    return true;
  }

  void checkReadable(const toml::source_region& src, const std::string& file) {
    if (access(file.c_str(), R_OK) != 0) error(src, "cannot read '" + file + "'");
  }

  bool readProtocol(const toml::table& t, proto::Protocol& p, const std::string& what) {
    std::string name;
    if (!getString(t, "protocol", name, true, what)) return false;
    auto v = proto::protocolFromName(name);
    if (!v) {
      error(t["protocol"].node()->source(), "protocol must be \"smtp\", \"imap\" or \"pop3\"");
      return false;
    }
    p = *v;
    return true;
  }

  void readListener(const toml::table& t, Config& cfg) {
    Listener l;
    std::string what = "[[listener]]";
    checkKeys(t, {"name", "protocol", "address", "port", "tls", "upstream", "server_names", "sniff_timeout_ms",
                  "trusted_proxies", "proxy_header_timeout_ms"},
              what);
    getString(t, "name", l.name, true, what);
    what = "[[listener]] '" + l.name + "'";
    readProtocol(t, l.protocol, what);
    if (getString(t, "address", l.address, true, what) && !IpAddress::parse(l.address))
      error(t["address"].node()->source(), "address '" + l.address + "' is not an IPv4/IPv6 address");
    getUint(t, "port", l.port, 1, 65535, true, what);
    std::string tls = "starttls";
    if (getString(t, "tls", tls, false, what)) {
      if (tls == "implicit")
        l.tls = ListenerTls::Implicit;
      else if (tls == "starttls")
        l.tls = ListenerTls::Starttls;
      else if (tls == "auto")
        l.tls = ListenerTls::Auto;
      else
        error(t["tls"].node()->source(), "tls must be \"implicit\", \"starttls\" or \"auto\"");
    }
    getString(t, "upstream", l.upstream, true, what);
    if (getStringArray(t, "server_names", l.server_names, what))
      for (const auto& n : l.server_names)
        if (!validHostName(n)) error(t["server_names"].node()->source(), what + ": '" + n + "' is not a host name");
    getUint(t, "sniff_timeout_ms", l.sniff_timeout_ms, 10, 5000, false, what);
    std::vector<std::string> proxies;
    if (getStringArray(t, "trusted_proxies", proxies, what)) {
      for (const auto& p : proxies) {
        if (auto c = Cidr::parse(p))
          l.trusted_proxies.push_back(*c);
        else
          error(t["trusted_proxies"].node()->source(), what + ": '" + p + "' is not a network");
      }
    }
    getUint(t, "proxy_header_timeout_ms", l.proxy_header_timeout_ms, 100, 60000, false, what);
    for (const auto& other : cfg.listeners) {
      if (other.name == l.name) error(t.source(), "duplicate listener name '" + l.name + "'");
      if (other.address == l.address && other.port == l.port)
        error(t.source(), "listener '" + l.name + "' uses the same address and port as '" + other.name + "'");
    }
    cfg.listeners.push_back(std::move(l));
    listener_src_.push_back(t.source());
  }

  void readUpstream(const toml::table& t, Config& cfg) {
    Upstream u;
    std::string what = "[[upstream]]";
    checkKeys(t, {"name", "protocol", "host", "port", "tls", "ca_file", "verify_name", "verify",
                  "client_address", "source_address", "connect_timeout_ms", "client_cert_file", "client_key_file"},
              what);
    getString(t, "name", u.name, true, what);
    what = "[[upstream]] '" + u.name + "'";
    readProtocol(t, u.protocol, what);
    if (getString(t, "host", u.host, true, what) && !IpAddress::parse(u.host))
      error(t["host"].node()->source(),
            "host '" + u.host + "' must be an IP address (mailshim does not resolve names at runtime)");
    getUint(t, "port", u.port, 1, 65535, true, what);
    std::string tls = "starttls";
    if (getString(t, "tls", tls, false, what)) {
      if (tls == "implicit")
        u.tls = proto::UpstreamTls::Implicit;
      else if (tls == "starttls")
        u.tls = proto::UpstreamTls::Starttls;
      else if (tls == "none")
        u.tls = proto::UpstreamTls::None;
      else
        error(t["tls"].node()->source(), "tls must be \"starttls\", \"implicit\" or \"none\"");
    }
    if (getString(t, "ca_file", u.ca_file, false, what)) checkReadable(t["ca_file"].node()->source(), u.ca_file);
    getString(t, "verify_name", u.verify_name, false, what);
    if (u.verify_name.empty()) u.verify_name = u.host;
    if (auto node = t["verify"]) {
      if (auto v = node.value<bool>())
        u.verify = *v;
      else
        error(node.node()->source(), "verify must be true or false");
      if (!u.verify) warning(node.node()->source(), what + ": verify = false: the backend certificate is NOT checked");
    }
    std::string mode = "none";
    if (getString(t, "client_address", mode, false, what)) {
      if (mode == "none")
        u.client_address = proto::ClientAddressMode::None;
      else if (mode == "xclient")
        u.client_address = proto::ClientAddressMode::Xclient;
      else if (mode == "imap-id")
        u.client_address = proto::ClientAddressMode::ImapId;
      else if (mode == "proxy-v2")
        u.client_address = proto::ClientAddressMode::ProxyV2;
      else
        error(t["client_address"].node()->source(),
              "client_address must be \"xclient\", \"imap-id\", \"proxy-v2\" or \"none\"");
      if (u.client_address == proto::ClientAddressMode::ImapId && u.protocol != proto::Protocol::Imap)
        error(t["client_address"].node()->source(), "client_address = \"imap-id\" needs protocol = \"imap\"");
      if (u.client_address == proto::ClientAddressMode::Xclient && u.protocol == proto::Protocol::Imap)
        error(t["client_address"].node()->source(), "IMAP upstreams take client_address = \"imap-id\"");
    }
    if (getString(t, "source_address", u.source_address, false, what) && !IpAddress::parse(u.source_address))
      error(t["source_address"].node()->source(), "source_address '" + u.source_address + "' is not an IP address");
    getUint(t, "connect_timeout_ms", u.connect_timeout_ms, 100, 600000, false, what);
    if (getString(t, "client_cert_file", u.client_cert_file, false, what))
      checkReadable(t["client_cert_file"].node()->source(), u.client_cert_file);
    if (getString(t, "client_key_file", u.client_key_file, false, what))
      checkReadable(t["client_key_file"].node()->source(), u.client_key_file);
    if (u.client_cert_file.empty() != u.client_key_file.empty())
      error(t.source(), what + ": client_cert_file and client_key_file go together");
    if (u.tls == proto::UpstreamTls::None) {
      auto host = IpAddress::parse(u.host);
      bool loopback = host && ((!host->v6 && host->bytes[0] == 127) ||
                               (host->v6 && host->toString() == "::1"));
      if (!loopback)
        error(t.source(), what + ": tls = \"none\" is only allowed for a backend on this host (loopback)");
    }
    for (const auto& other : cfg.upstreams)
      if (other.name == u.name) error(t.source(), "duplicate upstream name '" + u.name + "'");
    cfg.upstreams.push_back(std::move(u));
  }

  void readPool(const toml::table& t, Config& cfg) {
    Pool p;
    std::string what = "[[pool]]";
    checkKeys(t, {"name", "protocol", "upstreams", "affinity", "health_interval_ms", "health_timeout_ms", "rise",
                  "fall"},
              what);
    getString(t, "name", p.name, true, what);
    what = "[[pool]] '" + p.name + "'";
    readProtocol(t, p.protocol, what);
    getStringArray(t, "upstreams", p.upstreams, what);
    if (p.upstreams.empty()) error(t.source(), what + ": needs a non-empty upstreams list");
    for (const auto& u : p.upstreams) {
      const Upstream* up = cfg.findUpstream(u);
      if (!up)
        error(t.source(), what + ": no [[upstream]] named '" + u + "' (define upstreams before pools)");
      else if (up->protocol != p.protocol)
        error(t.source(), what + ": upstream '" + u + "' is of another protocol");
    }
    std::string affinity = p.protocol == proto::Protocol::Smtp ? "none" : "user";
    if (getString(t, "affinity", affinity, false, what) && affinity != "user" && affinity != "none")
      error(t["affinity"].node()->source(), what + ": affinity must be \"user\" or \"none\"");
    p.user_affinity = affinity == "user";
    getUint(t, "health_interval_ms", p.health_interval_ms, 100, 3600000, false, what);
    getUint(t, "health_timeout_ms", p.health_timeout_ms, 50, 60000, false, what);
    getUint(t, "rise", p.rise, 1, 100, false, what);
    getUint(t, "fall", p.fall, 1, 100, false, what);
    for (const auto& other : cfg.pools)
      if (other.name == p.name) error(t.source(), "duplicate pool name '" + p.name + "'");
    if (cfg.findUpstream(p.name)) error(t.source(), what + ": an [[upstream]] has the same name");
    cfg.pools.push_back(std::move(p));
  }

  void readRule(const toml::table& t, Config& cfg) {
    Rule r;
    std::string what = "[[rule]]";
    checkKeys(t, {"name", "networks", "listeners", "users", "fingerprints", "quirks", "tls_profile", "sunset",
                  "after_sunset", "message", "max_sessions_per_address", "auth_failure_delay_ms", "max_auth_failures"},
              what);
    getString(t, "name", r.name, true, what);
    what = "[[rule]] '" + r.name + "'";
    if (auto node = t["networks"]) {
      if (auto* nets = node.as_array()) {
        for (auto& n : *nets) {
          auto s = n.value<std::string>();
          auto c = s ? Cidr::parse(*s) : std::nullopt;
          if (!c)
            error(n.source(), what + ": '" + (s ? *s : std::string("?")) +
                                  "' is not a network (a.b.c.d/len or ipv6/len, host bits zero)");
          else
            r.networks.push_back(*c);
        }
      } else {
        error(node.node()->source(), what + ": networks must be an array of strings");
      }
    }
    getStringArray(t, "listeners", r.listeners, what);
    getStringArray(t, "users", r.users, what);
    getStringArray(t, "fingerprints", r.fingerprints, what);
    if (r.networks.empty() && r.listeners.empty() && r.users.empty() && r.fingerprints.empty())
      error(t.source(), what + ": needs at least one matcher (networks, listeners, users or fingerprints)");
    if (auto node = t["quirks"]) {
      if (auto* qs = node.as_array()) {
        for (auto& q : *qs) {
          auto s = q.value<std::string>();
          auto id = s ? proto::quirkFromId(*s) : std::nullopt;
          if (!id)
            error(q.source(), what + ": unknown quirk '" + (s ? *s : std::string("?")) +
                                  "' (see `mailshim quirks`)");
          else
            r.quirks.add(*id);
        }
      } else {
        error(node.node()->source(), "quirks must be an array of strings");
      }
    }
    uint32_t n = 0;
    if (getUint(t, "max_sessions_per_address", n, 0, 1000000, false, what)) r.limits.max_sessions_per_address = n;
    if (getUint(t, "auth_failure_delay_ms", n, 0, 60000, false, what)) r.limits.auth_failure_delay_ms = n;
    if (getUint(t, "max_auth_failures", n, 0, 1000, false, what)) r.limits.max_auth_failures = n;
    std::string profile;
    if (getString(t, "tls_profile", profile, false, what)) {
      if (profile != "modern" && profile != "legacy")
        error(t["tls_profile"].node()->source(), what + ": tls_profile must be \"modern\" or \"legacy\"");
      else
        r.tls_profile = profile;
    }
    std::string sunset;
    if (getString(t, "sunset", sunset, false, what)) {
      r.sunset = Date::parse(sunset);
      if (!r.sunset) error(t["sunset"].node()->source(), what + ": sunset must be a date \"YYYY-MM-DD\"");
    }
    std::string after = "refuse";
    if (getString(t, "after_sunset", after, false, what)) {
      if (after == "refuse")
        r.after_sunset = AfterSunset::Refuse;
      else if (after == "warn")
        r.after_sunset = AfterSunset::Warn;
      else
        error(t["after_sunset"].node()->source(), what + ": after_sunset must be \"refuse\" or \"warn\"");
      if (!r.sunset) warning(t["after_sunset"].node()->source(), what + ": after_sunset without sunset has no effect");
    }
    if (getString(t, "message", r.message, false, what)) {
      bool ok = r.message.size() <= 400 && proto::isLineSafe(r.message);
      for (unsigned char c : r.message) ok = ok && (c >= 0x20 && c != 0x7f);  // no controls; UTF-8 is fine
      if (!ok)
        error(t["message"].node()->source(),
              what + ": message must be one line of at most 400 bytes without control characters");
    }
    for (const auto& other : cfg.rules)
      if (other.name == r.name) error(t.source(), "duplicate rule name '" + r.name + "'");
    rule_src_.push_back(t.source());
    cfg.rules.push_back(std::move(r));
  }

  void readDirectory(const toml::table& t, DirectorySettings& d) {
    checkKeys(t, {"file", "names", "fallback_local_part"}, "[directory]");
    if (getString(t, "file", d.file, false, "[directory]")) checkReadable(t["file"].node()->source(), d.file);
    if (auto node = t["names"]) {
      if (auto* names = node.as_table()) {
        for (auto&& [k, v] : *names) {
          auto name = v.value<std::string>();
          if (!name || !proto::isLineSafe(*name) || name->size() > 200)
            error(v.source(), "[directory.names]: '" + std::string(k.str()) + "' must map to a one-line name");
          else
            d.names.emplace_back(std::string(k.str()), *name);
        }
      } else {
        error(node.node()->source(), "[directory] names must be a table: address = \"Display Name\"");
      }
    }
    if (auto node = t["fallback_local_part"]) {
      if (auto v = node.value<bool>())
        d.fallback_local_part = *v;
      else
        error(node.node()->source(), "fallback_local_part must be true or false");
    }
  }

  void crossCheck(const toml::table& root, Config& cfg) {
    for (size_t i = 0; i < cfg.rules.size(); ++i)
      for (const auto& name : cfg.rules[i].listeners) {
        bool found = false;
        for (const auto& l : cfg.listeners) found = found || l.name == name;
        if (!found) error(rule_src_[i], "rule '" + cfg.rules[i].name + "': no listener named '" + name + "'");
      }
    if (cfg.listeners.empty()) error(root.source(), "no [[listener]] configured");
    for (size_t i = 0; i < cfg.listeners.size(); ++i) {
      const auto& l = cfg.listeners[i];
      const auto* u = cfg.findUpstream(l.upstream);
      const auto* pool = cfg.findPool(l.upstream);
      if (pool) {
        if (pool->protocol != l.protocol)
          error(listener_src_[i], "listener '" + l.name + "' points at pool '" + pool->name + "' of another protocol");
      } else if (!u)
        error(listener_src_[i], "listener '" + l.name + "': no [[upstream]] or [[pool]] named '" + l.upstream + "'");
      else if (u->protocol != l.protocol)
        error(listener_src_[i], "listener '" + l.name + "' (" + std::string(proto::protocolName(l.protocol)) +
                                    ") points at upstream '" + u->name + "' of another protocol");
    }
    if (!cfg.listeners.empty() && (cfg.tls.cert_file.empty() || cfg.tls.key_file.empty()))
      error(root.source(), "[tls] cert_file and key_file are required");
  }

  static bool validHostName(const std::string& s) {
    if (s.empty() || s.size() > 253) return false;
    for (char c : s)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) return false;
    return true;
  }

  std::string path_;
  std::vector<std::string> errors_;
  std::vector<std::string> warnings_;
  std::vector<toml::source_region> listener_src_;
  std::vector<toml::source_region> rule_src_;
  std::shared_ptr<Config> config_;
};

}  // namespace

const Upstream* Config::findUpstream(const std::string& name) const {
  for (const auto& u : upstreams)
    if (u.name == name) return &u;
  return nullptr;
}

LoadResult loadConfigString(std::string_view toml, const std::string& path) {
  return Loader(path).run(toml);
}

LoadResult loadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult r;
    r.errors.push_back(path + ": cannot open config file");
    return r;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return loadConfigString(ss.str(), path);
}

}  // namespace mailshim::conf
