// TLS contexts. See tls_context.h. Reads certificate files; no sockets.
#include "tls/tls_context.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <cctype>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <mutex>

namespace mailshim::tls {
namespace {

// Mozilla "intermediate" (v5.7) TLS 1.2 ciphers; TLS 1.3 suites are OpenSSL's defaults.
constexpr const char* kModernCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
// The modern list plus what Windows 7 SChannel (TLS 1.0) and older scanners
// offer: ECDHE with CBC-SHA first, then plain-RSA CBC-SHA. No RC4, no 3DES.
constexpr const char* kLegacyCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA:"
    "AES256-SHA:AES128-SHA:@SECLEVEL=0";

int helloSlot() {
  static int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

// --- client-side session cache (one session per upstream context and thread) ---
//
// Each worker thread keeps its own last session per upstream context: an
// SSL_SESSION is then only ever touched by the thread that made it (sharing
// one across threads raced inside OpenSSL when one thread freed the session
// another was copying during its handshake — seen under ThreadSanitizer).
// Contexts are told apart by a process-unique id in their ex_data, so a
// context built on reload at a recycled address never inherits a stale entry.

int contextIdSlot() {
  static int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

uint64_t contextId(SSL_CTX* ctx) {
  return reinterpret_cast<uintptr_t>(SSL_CTX_get_ex_data(ctx, contextIdSlot()));
}

void assignContextId(SSL_CTX* ctx) {
  static std::atomic<uintptr_t> next{1};
  SSL_CTX_set_ex_data(ctx, contextIdSlot(), reinterpret_cast<void*>(next++));
}

struct ThreadSessionCache {
  std::map<uint64_t, SSL_SESSION*> sessions;
  ~ThreadSessionCache() {
    for (auto& [id, sess] : sessions) SSL_SESSION_free(sess);
  }
};

ThreadSessionCache& threadSessions() {
  thread_local ThreadSessionCache cache;
  return cache;
}

int onNewClientSession(SSL* ssl, SSL_SESSION* sess) {
  SSL_SESSION*& slot = threadSessions().sessions[contextId(SSL_get_SSL_CTX(ssl))];
  if (slot) SSL_SESSION_free(slot);
  slot = sess;
  return 1;  // we keep the reference
}

void freeCachedSession(SSL_CTX* ctx) {
  auto& sessions = threadSessions().sessions;
  auto it = sessions.find(contextId(ctx));
  if (it == sessions.end()) return;
  SSL_SESSION_free(it->second);
  sessions.erase(it);
}

// --- session ticket key ring --------------------------------------------------

// Process-wide, so tickets survive a reload. Keys rotate after `lifetime`; the
// previous key still decrypts (and asks the client to renew).
class TicketKeys {
 public:
  struct Key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    std::chrono::steady_clock::time_point born;
  };

  static TicketKeys& instance() {
    static TicketKeys k;
    return k;
  }

  void setLifetime(std::chrono::seconds s) {
    std::lock_guard<std::mutex> lock(mu_);
    lifetime_ = s;
  }

  // Fills `out` with the current key, rotating first if it is too old.
  void current(Key& out) {
    std::lock_guard<std::mutex> lock(mu_);
    auto now = std::chrono::steady_clock::now();
    if (!have_current_ || now - current_.born > lifetime_) {
      if (have_current_) {
        previous_ = current_;
        have_previous_ = true;
      }
      fresh(current_, now);
      have_current_ = true;
    }
    out = current_;
  }

  // 1: current key, 2: previous key (renew the ticket), 0: unknown.
  int find(const unsigned char name[16], Key& out) {
    std::lock_guard<std::mutex> lock(mu_);
    auto now = std::chrono::steady_clock::now();
    if (have_current_ && std::memcmp(name, current_.name, 16) == 0 && now - current_.born <= 2 * lifetime_) {
      out = current_;
      return 1;
    }
    if (have_previous_ && std::memcmp(name, previous_.name, 16) == 0 && now - previous_.born <= 2 * lifetime_) {
      out = previous_;
      return 2;
    }
    return 0;
  }

 private:
  static void fresh(Key& k, std::chrono::steady_clock::time_point now) {
    RAND_bytes(k.name, sizeof k.name);
    RAND_bytes(k.aes, sizeof k.aes);
    RAND_bytes(k.hmac, sizeof k.hmac);
    k.born = now;
  }

  std::mutex mu_;
  std::chrono::seconds lifetime_{43200};
  Key current_{};
  Key previous_{};
  bool have_current_ = false;
  bool have_previous_ = false;
};

// Fetched once: EVP_aes_256_cbc() makes OpenSSL 3 fetch the implementation
// from the provider again on every ticket.
const EVP_CIPHER* ticketCipher() {
  static const std::unique_ptr<EVP_CIPHER, void (*)(EVP_CIPHER*)> c(EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr),
                                                                     EVP_CIPHER_free);
  return c ? c.get() : EVP_aes_256_cbc();
}

int ticketKeyCb(SSL* ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH], EVP_CIPHER_CTX* cctx,
                EVP_MAC_CTX* hctx, int enc) {
  TicketKeys::Key k;
  int rc = 1;
  if (enc) {
    TicketKeys::instance().current(k);
    std::memcpy(key_name, k.name, 16);
    if (RAND_bytes(iv, 16) != 1) return -1;
  } else {
    rc = TicketKeys::instance().find(key_name, k);
    if (rc == 0) return 0;  // unknown key: full handshake
    // TLS 1.3 clients use a ticket once (RFC 8446 C.4; OpenSSL, NSS and
    // SChannel do): without a new ticket on every resumption a client
    // resumes only as often as it got tickets from its last full handshake
    // (bench: 67 % resumed with one ticket per full handshake, 99 % for
    // nginx and HAProxy). 2 = accept and issue a fresh one.
    if (SSL_version(ssl) == TLS1_3_VERSION) rc = 2;
  }
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof k.hmac),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(hctx, params) != 1) return -1;
  int ok = enc ? EVP_EncryptInit_ex(cctx, ticketCipher(), nullptr, k.aes, iv)
               : EVP_DecryptInit_ex(cctx, ticketCipher(), nullptr, k.aes, iv);
  OPENSSL_cleanse(&k, sizeof k);
  return ok == 1 ? rc : -1;
}

// --- ClientHello: SNI selection and diagnostics -------------------------------

std::string parseSni(SSL* ssl) {
  const unsigned char* p = nullptr;
  size_t len = 0;
  if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) || len < 5) return {};
  size_t list = (size_t(p[0]) << 8) | p[1];
  if (list + 2 != len || p[2] != TLSEXT_NAMETYPE_host_name) return {};
  size_t n = (size_t(p[3]) << 8) | p[4];
  if (n + 5 > len || n == 0 || n > 253) return {};
  std::string name(reinterpret_cast<const char*>(p + 5), n);
  for (char& c : name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) return {};
  }
  return name;
}

void parseVersions(SSL* ssl, HelloInfo& info) {
  const unsigned char* p = nullptr;
  size_t len = 0;
  info.versions.clear();
  info.max_version = 0;
  info.min_version = 0;
  auto add = [&info](int v) {
    if (v < TLS1_VERSION || v > TLS1_3_VERSION) return;  // skip GREASE and SSL 3
    if (!info.versions.empty()) info.versions += ' ';
    info.versions += versionName(v);
    info.max_version = std::max(info.max_version, v);
    info.min_version = info.min_version ? std::min(info.min_version, v) : v;
  };
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &p, &len) && len >= 1 && p[0] + 1u == len) {
    for (size_t i = 1; i + 1 < len; i += 2) add((p[i] << 8) | p[i + 1]);
  } else {
    // No supported_versions: the client offers everything up to legacy_version.
    int legacy = static_cast<int>(SSL_client_hello_get0_legacy_version(ssl));
    for (int v = legacy; v >= TLS1_VERSION; --v) add(v);
  }
}

int onClientHello(SSL* ssl, int*, void* arg) {
  const auto* ctxs = static_cast<const TlsContexts*>(arg);
  auto* info = static_cast<HelloInfo*>(SSL_get_ex_data(ssl, helloSlot()));
  std::string sni = parseSni(ssl);
  if (info) {
    info->seen = true;
    info->sni = sni;
    parseVersions(ssl, *info);
  }
  if (!sni.empty()) {
    SSL_CTX* want = ctxs->contextForName(sni);
    if (want && want != SSL_get_SSL_CTX(ssl)) {
      SSL_set_SSL_CTX(ssl, want);
      // SSL_set_SSL_CTX replaces the certificate settings, which carry the
      // security level: apply the connection's profile again.
      applyProfile(ssl, info ? info->profile : Profile::Modern);
    }
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

bool loadPair(SSL_CTX* ctx, const std::string& cert, const std::string& key, std::vector<std::string>& errors) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    errors.push_back("cannot load certificate chain '" + cert + "': " + drainErrors());
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    errors.push_back("cannot load private key '" + key + "': " + drainErrors());
    return false;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    errors.push_back("private key '" + key + "' does not match certificate '" + cert + "': " + drainErrors());
    return false;
  }
  return true;
}

SslCtxPtr newServerCtx(const TlsContexts* owner, const conf::TlsSettings& settings) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  SSL_CTX* s = ctx.get();
  if (!s) return ctx;
  SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
  SSL_CTX_set_cipher_list(s, kModernCiphers);
  SSL_CTX_set_options(s, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  // Idle connections (IMAP IDLE) should not pin 2 x 16 KiB of buffers each.
  SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_id_context(s, reinterpret_cast<const unsigned char*>("mailshim"), 8);
  SSL_CTX_set_num_tickets(s, settings.session_tickets);
  SSL_CTX_set_dh_auto(s, 1);  // ffdhe2048+ for the DHE suites of the Mozilla list
  SSL_CTX_set_tlsext_ticket_key_evp_cb(s, ticketKeyCb);
  SSL_CTX_set_client_hello_cb(s, onClientHello, const_cast<TlsContexts*>(owner));
  TicketKeys::instance().setLifetime(std::chrono::seconds(settings.ticket_key_rotation_s));
  return ctx;
}

}  // namespace

void SslCtxDeleter::operator()(SSL_CTX* ctx) const {
  if (ctx) SSL_CTX_free(ctx);
}

const char* profileName(Profile p) { return p == Profile::Legacy ? "legacy" : "modern"; }

std::string versionName(int v) {
  switch (v) {
    case TLS1_VERSION: return "TLSv1";
    case TLS1_1_VERSION: return "TLSv1.1";
    case TLS1_2_VERSION: return "TLSv1.2";
    case TLS1_3_VERSION: return "TLSv1.3";
    case SSL3_VERSION: return "SSLv3";
  }
  return "unknown";
}

std::string drainErrors() {
  std::string out;
  unsigned long e;
  char buf[256];
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown error" : out;
}

void applyProfile(SSL* ssl, Profile profile) {
  if (profile == Profile::Legacy) {
    SSL_set_min_proto_version(ssl, TLS1_VERSION);
    SSL_set_cipher_list(ssl, kLegacyCiphers);  // sets security level 0 too
    SSL_set_security_level(ssl, 0);
    SSL_set_options(ssl, SSL_OP_CIPHER_SERVER_PREFERENCE);
  } else {
    SSL_set_min_proto_version(ssl, TLS1_2_VERSION);
    SSL_clear_options(ssl, SSL_OP_CIPHER_SERVER_PREFERENCE);
  }
}

bool nameMatches(const std::string& pattern, const std::string& name) {
  if (pattern == name) return true;
  if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
    auto dot = name.find('.');
    return dot != std::string::npos && dot > 0 && name.substr(dot + 1) == pattern.substr(2);
  }
  return false;
}

int certificateKeyType(const std::string& cert_file) {
  FILE* f = std::fopen(cert_file.c_str(), "r");
  if (!f) return 0;
  X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!x) return 0;
  int type = EVP_PKEY_get_base_id(X509_get0_pubkey(x));
  X509_free(x);
  return type;
}

std::set<std::string> certificateNames(const std::string& cert_file) {
  std::set<std::string> names;
  FILE* f = std::fopen(cert_file.c_str(), "r");
  if (!f) return names;
  X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!x) return names;
  auto lower = [](std::string s) {
    for (char& c : s)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
  };
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
      if (gn->type == GEN_DNS) {
        const auto* s = gn->d.dNSName;
        names.insert(lower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), ASN1_STRING_length(s))));
      } else if (gn->type == GEN_IPADD) {
        const auto* s = gn->d.iPAddress;
        char buf[64] = {};
        int len = ASN1_STRING_length(s);
        const unsigned char* d = ASN1_STRING_get0_data(s);
        if (len == 4) std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", d[0], d[1], d[2], d[3]);
        if (buf[0]) names.insert(buf);
      }
    }
    GENERAL_NAMES_free(sans);
  } else {
    char cn[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn) > 0) names.insert(lower(cn));
  }
  X509_free(x);
  return names;
}

std::shared_ptr<const TlsContexts> TlsContexts::build(const conf::Config& cfg, std::vector<std::string>& errors) {
  auto out = std::make_shared<TlsContexts>();
  std::vector<conf::CertificateFiles> all;
  all.push_back({cfg.tls.cert_file, cfg.tls.key_file});
  all.insert(all.end(), cfg.tls.extra.begin(), cfg.tls.extra.end());
  for (const auto& files : all) {
    Cert c;
    c.files = files;
    c.names = certificateNames(files.cert_file);
    c.key_type = certificateKeyType(files.cert_file);
    if (c.names.empty() || c.key_type == 0) {
      errors.push_back("cannot read a certificate (or any name in it) from '" + files.cert_file + "': " + drainErrors());
      return nullptr;
    }
    out->certs_.push_back(std::move(c));
  }
  // The default context: the [tls] certificate, plus, for each other key
  // type, the first certificate that shares a name with it.
  std::vector<size_t> defaults{0};
  for (size_t i = 1; i < out->certs_.size(); ++i) {
    bool have_type = false;
    for (size_t d : defaults) have_type = have_type || out->certs_[d].key_type == out->certs_[i].key_type;
    bool shares = false;
    for (const auto& n : out->certs_[i].names) shares = shares || out->certs_[0].names.count(n);
    if (!have_type && shares) defaults.push_back(i);
  }
  std::vector<std::vector<size_t>> selections{defaults};
  for (const auto& c : out->certs_)
    for (const auto& n : c.names) {
      auto sel = out->selectionFor(n);
      if (std::find(selections.begin(), selections.end(), sel) == selections.end()) selections.push_back(sel);
    }
  for (auto& sel : selections) {
    SslCtxPtr ctx = newServerCtx(out.get(), cfg.tls);
    if (!ctx) {
      errors.push_back("SSL_CTX_new failed: " + drainErrors());
      return nullptr;
    }
    for (size_t i : sel)
      if (!loadPair(ctx.get(), out->certs_[i].files.cert_file, out->certs_[i].files.key_file, errors)) return nullptr;
    out->contexts_.emplace_back(std::move(sel), std::move(ctx));
  }

  for (const auto& up : cfg.upstreams) {
    SslCtxPtr c(SSL_CTX_new(TLS_client_method()));
    if (!c) {
      errors.push_back("SSL_CTX_new failed: " + drainErrors());
      return nullptr;
    }
    SSL_CTX_set_min_proto_version(c.get(), TLS1_2_VERSION);  // never the legacy profile upstream
    SSL_CTX_set_mode(c.get(), SSL_MODE_RELEASE_BUFFERS);
    if (up.verify) {
      SSL_CTX_set_verify(c.get(), SSL_VERIFY_PEER, nullptr);
      int ok = up.ca_file.empty() ? SSL_CTX_set_default_verify_paths(c.get())
                                  : SSL_CTX_load_verify_locations(c.get(), up.ca_file.c_str(), nullptr);
      if (ok != 1) {
        errors.push_back("upstream '" + up.name + "': cannot load CA file '" + up.ca_file + "': " + drainErrors());
        return nullptr;
      }
    } else {
      SSL_CTX_set_verify(c.get(), SSL_VERIFY_NONE, nullptr);
    }
    if (!up.client_cert_file.empty() &&
        !loadPair(c.get(), up.client_cert_file, up.client_key_file, errors)) {
      errors.back() = "upstream '" + up.name + "': " + errors.back();
      return nullptr;
    }
    SSL_CTX_set_session_cache_mode(c.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c.get(), onNewClientSession);
    assignContextId(c.get());
    out->clients_.push_back(std::move(c));
  }
  return out;
}

TlsContexts::~TlsContexts() {
  for (auto& c : clients_)
    if (c) freeCachedSession(c.get());
}

std::vector<size_t> TlsContexts::selectionFor(const std::string& name) const {
  std::vector<size_t> sel;
  std::vector<int> types;
  // Exact names win over wildcards, then config order.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < certs_.size(); ++i) {
      if (std::find(types.begin(), types.end(), certs_[i].key_type) != types.end()) continue;
      bool hit = pass == 0 ? certs_[i].names.count(name) > 0 : false;
      if (pass == 1)
        for (const auto& n : certs_[i].names) hit = hit || nameMatches(n, name);
      if (hit) {
        sel.push_back(i);
        types.push_back(certs_[i].key_type);
      }
    }
  }
  std::sort(sel.begin(), sel.end());
  return sel;
}

SSL_CTX* TlsContexts::contextFor(const std::vector<size_t>& selection) const {
  for (const auto& [sel, ctx] : contexts_)
    if (sel == selection) return ctx.get();
  return nullptr;
}

SSL_CTX* TlsContexts::contextForName(const std::string& sni) const {
  auto sel = selectionFor(sni);
  if (sel.empty()) return nullptr;  // unknown name: stay on the default
  if (SSL_CTX* ctx = contextFor(sel)) return ctx;
  // A wildcard mix not precomputed: the context of the first covering certificate.
  for (const auto& [s, ctx] : contexts_)
    if (std::find(s.begin(), s.end(), sel.front()) != s.end()) return ctx.get();
  return nullptr;
}

SSL* TlsContexts::newServerSsl(Profile profile, HelloInfo* hello) const {
  SSL* ssl = SSL_new(contexts_.front().second.get());
  if (!ssl) return nullptr;
  if (hello) {
    hello->profile = profile;
    SSL_set_ex_data(ssl, helloSlot(), hello);
  }
  applyProfile(ssl, profile);
  return ssl;
}

SSL* TlsContexts::newClientSsl(size_t index, const conf::Upstream& up) const {
  SSL_CTX* ctx = clients_.at(index).get();
  SSL* ssl = SSL_new(ctx);
  if (!ssl) return nullptr;
  // SNI only for names, never for IP literals (RFC 6066 section 3).
  if (!up.verify_name.empty() && !conf::IpAddress::parse(up.verify_name))
    SSL_set_tlsext_host_name(ssl, up.verify_name.c_str());
  if (up.verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (conf::IpAddress::parse(up.verify_name))
      X509_VERIFY_PARAM_set1_ip_asc(param, up.verify_name.c_str());
    else
      X509_VERIFY_PARAM_set1_host(param, up.verify_name.c_str(), 0);
  }
  auto& sessions = threadSessions().sessions;
  if (auto it = sessions.find(contextId(ctx)); it != sessions.end()) SSL_set_session(ssl, it->second);
  return ssl;
}

std::string describe(SSL* ssl) {
  if (!ssl) return "-";
  return std::string(SSL_get_version(ssl)) + " " + SSL_get_cipher_name(ssl);
}

}  // namespace mailshim::tls
