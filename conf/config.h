// Config: the immutable configuration snapshot. Plain data, built and
// validated by ConfigLoader (config_loader.h) from TOML; each session holds a
// shared_ptr<const Config> to the snapshot it started with, so a reload never
// changes a running session.
//
// No I/O. Standard library + protocols/.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/cidr.h"
#include "protocols/common/phase.h"
#include "protocols/common/quirks.h"

namespace mailshim::conf {

// implicit: TLS from the first byte. starttls: plaintext greeting, STARTTLS
// offered. auto: like starttls, but a TLS ClientHello sent before the greeting
// (Outlook "SSL/TLS" on 587) starts implicit TLS (quirk tls.implicit_on_starttls_port).
enum class ListenerTls : uint8_t { Implicit, Starttls, Auto };

struct ServerSettings {
  std::string name = "localhost";
  std::string log_level = "info";
  uint32_t drain_timeout_ms = 10000;
  std::string state_dir = "/var/lib/mailshim";
  uint32_t workers = 0;  // event loop threads; 0 = one per CPU
};

// Prometheus text endpoint (GET /metrics). Disabled unless a port is set;
// keep it on loopback (or a management network): it reveals traffic levels.
struct MetricsSettings {
  std::string address = "127.0.0.1";
  uint16_t port = 0;
};

// Admin console on a Unix socket (SHOW/RELOAD/KILL/SHUTDOWN, see
// docs/operations.md and `mailshim ctl`). Disabled while socket is empty.
// Peers are checked with SO_PEERCRED: root, mailshim's own user and `users`.
struct AdminSettings {
  std::string socket;
  uint32_t mode = 0660;
  std::vector<std::string> users;  // further user names allowed
};

struct Limits {
  uint32_t max_line_bytes = 4096;
  uint32_t max_errors = 10;
  uint32_t preauth_timeout_ms = 60000;
  uint32_t idle_timeout_ms = 1860000;
  uint64_t max_message_bytes = 15728640;
  uint32_t relay_buffer_bytes = 262144;
  // Abuse limits (see docs/operations.md). Overridable per rule.
  uint32_t max_preauth_sessions = 10000;    // sessions not yet logged in, whole process; 0 = no limit
  uint32_t max_sessions_per_address = 100;  // open sessions per client address (IPv6: per /64); 0 = no limit
  uint32_t handshake_timeout_ms = 10000;    // TLS handshake (implicit or after STARTTLS) must finish within this
  uint32_t login_timeout_ms = 180000;       // connect to completed login, however busy the client keeps us
  uint32_t auth_failure_delay_ms = 2000;    // first failed login's reply is delayed this long ...
  uint32_t auth_failure_delay_max_ms = 15000;  // ... doubling per failure from the address, up to this
  uint32_t auth_failure_window_ms = 600000;    // failures older than this are forgotten
  uint32_t max_auth_failures = 5;           // failed logins in one session, then it is closed
};

// Per-rule overrides of the abuse limits (a legacy LAN behind one NAT address
// may need more sessions; a retired network fewer attempts).
struct RuleLimits {
  std::optional<uint32_t> max_sessions_per_address;
  std::optional<uint32_t> auth_failure_delay_ms;
  std::optional<uint32_t> max_auth_failures;
};

struct CertificateFiles {
  std::string cert_file;  // leaf first, then intermediates (Let's Encrypt fullchain.pem)
  std::string key_file;
};

struct TlsSettings {
  // The default certificate, for clients without SNI or with an unknown name.
  std::string cert_file;
  std::string key_file;
  // Further certificates ([[certificate]]), selected by SNI against their
  // subjectAltName. An RSA and an ECDSA certificate for the same names are
  // served side by side: OpenSSL picks by what the client supports.
  std::vector<CertificateFiles> extra;
  // Trust anchors for the certificate audit of --check-config (chain
  // completeness); empty = the system store.
  std::string audit_ca_file;
  uint32_t ticket_key_rotation_s = 43200;
  // TLS 1.3 session tickets sent after each full handshake (0: none, so no
  // TLS 1.3 resumption but a cheaper handshake; TLS 1.2 tickets are unaffected).
  uint32_t session_tickets = 1;
};

struct Listener {
  std::string name;
  proto::Protocol protocol = proto::Protocol::Smtp;
  std::string address;
  uint16_t port = 0;
  ListenerTls tls = ListenerTls::Starttls;
  std::string upstream;  // name of an Upstream or a Pool
  // Host names clients are told to use; --check-config requires each to be
  // covered by a certificate (Outlook refuses a certificate without the name).
  std::vector<std::string> server_names;
  uint32_t sniff_timeout_ms = 200;  // tls = "auto": how long to wait for a ClientHello
  // Load balancers (HAProxy send-proxy[-v2], LVS, cloud LBs) allowed to put a
  // PROXY v1/v2 header in front of a connection. From these addresses the
  // header is required (read within proxy_header_timeout_ms); from anyone
  // else a PROXY header is refused.
  std::vector<Cidr> trusted_proxies;
  uint32_t proxy_header_timeout_ms = 3000;
};

struct Upstream {
  std::string name;
  proto::Protocol protocol = proto::Protocol::Smtp;
  std::string host;
  uint16_t port = 0;
  proto::UpstreamTls tls = proto::UpstreamTls::Starttls;
  std::string ca_file;      // verify the backend certificate against this CA bundle
  std::string verify_name;  // ... and this name (defaults to host)
  bool verify = true;
  std::string client_cert_file;  // optional client certificate toward the backend
  std::string client_key_file;
  proto::ClientAddressMode client_address = proto::ClientAddressMode::None;
  std::string source_address;  // bind() before connect(); empty = kernel's choice
  uint32_t connect_timeout_ms = 5000;
};

// A civil date (UTC), for sunsets. Comparable.
struct Date {
  int year = 0, month = 0, day = 0;
  static std::optional<Date> parse(std::string_view text);  // "YYYY-MM-DD"
  static Date today();                                      // UTC
  std::string toString() const;
  long long daysSinceEpoch() const;
  auto operator<=>(const Date&) const = default;
};

enum class AfterSunset : uint8_t { Refuse, Warn };

// Several upstreams of one protocol behind one name. Health-checked; new
// sessions go to healthy members only. With affinity = "user" (IMAP/POP3) a
// user always lands on the same healthy member (rendezvous hashing of the
// login), so a user's sessions meet on one Dovecot, as Dovecot's director
// arranges; with "none" members are used in order (failover).
struct Pool {
  std::string name;
  proto::Protocol protocol = proto::Protocol::Smtp;
  std::vector<std::string> upstreams;
  bool user_affinity = false;
  uint32_t health_interval_ms = 2000;
  uint32_t health_timeout_ms = 1000;
  uint32_t rise = 2;  // consecutive good checks to mark a member up
  uint32_t fall = 2;  // consecutive failures (checks or sessions) to mark it down
};

struct Rule {
  std::string name;
  // Matchers; an empty list matches everything. A rule that names users or
  // fingerprints can only be decided once they are known (after login), so
  // it is skipped when matching a new connection.
  std::vector<Cidr> networks;
  std::vector<std::string> listeners;     // listener names
  std::vector<std::string> users;         // globs, e.g. "*@example.test"
  std::vector<std::string> fingerprints;  // globs, e.g. "Windows Live Mail*"
  proto::QuirkSet quirks;
  std::optional<std::string> tls_profile;  // "modern" | "legacy"
  std::optional<Date> sunset;              // after this day the quirks stop applying
  AfterSunset after_sunset = AfterSunset::Refuse;
  std::string message;  // shown to refused clients; one line, any language
  RuleLimits limits;

  bool sunsetPassed(const Date& today) const { return sunset && today > *sunset; }
};

// What is known about a session when rules are evaluated.
struct RuleQuery {
  IpAddress address;
  std::string listener;
  std::optional<std::string> user;         // unset before login
  std::optional<std::string> fingerprint;  // unset before login
};

// The effective outcome of the rules for one session.
struct RuleDecision {
  const Rule* rule = nullptr;  // first match, or nullptr
  proto::QuirkSet quirks;      // what applies now
  proto::QuirkSet retired;     // sunset passed with after_sunset = refuse
  bool overdue = false;        // sunset passed (either mode)
  bool legacy_tls = false;     // tls.legacy_protocols or tls_profile = "legacy", and not retired
  std::string message;
};

// Directory of display names for smtp.display_name.
struct DirectorySettings {
  std::string file;                           // TSV: address<TAB>display name
  std::vector<std::pair<std::string, std::string>> names;  // inline [directory.names]
  bool fallback_local_part = false;
};

struct Config {
  std::string source_path;
  // The abuse limits that apply to a client matched by `rule` (may be null).
  Limits limitsFor(const Rule* rule) const;
  ServerSettings server;
  Limits limits;
  MetricsSettings metrics;
  AdminSettings admin;
  TlsSettings tls;
  std::vector<Listener> listeners;
  std::vector<Upstream> upstreams;
  std::vector<Pool> pools;
  std::vector<Rule> rules;
  DirectorySettings directory;

  const Upstream* findUpstream(const std::string& name) const;
  const Pool* findPool(const std::string& name) const;
  // Index of an upstream in `upstreams`, or -1.
  int upstreamIndex(const std::string& name) const;
  // First rule whose networks contain `addr` (rules are ordered; first match
  // wins), or nullptr when none matches. Ignores the other matchers.
  const Rule* matchRule(const IpAddress& addr) const;
  // First rule matching everything in `q` (see Rule), and what it means on `today`.
  RuleDecision decide(const RuleQuery& q, const Date& today) const;
};

// Shell-style glob with '*' and '?', ASCII case-insensitive.
bool globMatch(std::string_view pattern, std::string_view text);

using ConfigConstSharedPtr = std::shared_ptr<const Config>;

}  // namespace mailshim::conf
