// TLS contexts. See tls_context.h. Reads certificate files; no sockets.
#include "tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace mailshim::tls {
namespace {

// Mozilla "intermediate" (v5.7) TLS 1.2 ciphers; TLS 1.3 suites are OpenSSL's defaults.
constexpr const char* kModernCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

// Per upstream: the last session, offered for resumption on the next connect.
// Stored as ex_data on the client SSL_CTX so it lives exactly as long as it.
int sessionSlot() {
  static int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

int onNewClientSession(SSL* ssl, SSL_SESSION* sess) {
  SSL_CTX* ctx = SSL_get_SSL_CTX(ssl);
  auto* old = static_cast<SSL_SESSION*>(SSL_CTX_get_ex_data(ctx, sessionSlot()));
  SSL_CTX_set_ex_data(ctx, sessionSlot(), sess);
  if (old) SSL_SESSION_free(old);
  return 1;  // we keep the reference
}

void freeCachedSession(SSL_CTX* ctx) {
  auto* old = static_cast<SSL_SESSION*>(SSL_CTX_get_ex_data(ctx, sessionSlot()));
  if (old) SSL_SESSION_free(old);
  SSL_CTX_set_ex_data(ctx, sessionSlot(), nullptr);
}

bool loadCertAndKey(SSL_CTX* ctx, const conf::TlsSettings& tls, std::vector<std::string>& errors) {
  if (SSL_CTX_use_certificate_chain_file(ctx, tls.cert_file.c_str()) != 1) {
    errors.push_back("cannot load certificate chain '" + tls.cert_file + "': " + drainErrors());
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    errors.push_back("cannot load private key '" + tls.key_file + "': " + drainErrors());
    return false;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    errors.push_back("private key '" + tls.key_file + "' does not match certificate '" + tls.cert_file +
                     "': " + drainErrors());
    return false;
  }
  return true;
}

}  // namespace

void SslCtxDeleter::operator()(SSL_CTX* ctx) const {
  if (!ctx) return;
  SSL_CTX_free(ctx);
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

std::shared_ptr<const TlsContexts> TlsContexts::build(const conf::Config& cfg, std::vector<std::string>& errors) {
  auto out = std::make_shared<TlsContexts>();
  out->server_.reset(SSL_CTX_new(TLS_server_method()));
  SSL_CTX* s = out->server_.get();
  if (!s) {
    errors.push_back("SSL_CTX_new failed: " + drainErrors());
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION);
  SSL_CTX_set_cipher_list(s, kModernCiphers);
  SSL_CTX_set_options(s, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Idle connections (IMAP IDLE) should not pin 2 x 16 KiB of buffers each.
  SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_id_context(s, reinterpret_cast<const unsigned char*>("mailshim"), 8);
  if (!loadCertAndKey(s, cfg.tls, errors)) return nullptr;

  for (const auto& up : cfg.upstreams) {
    SslCtxPtr c(SSL_CTX_new(TLS_client_method()));
    if (!c) {
      errors.push_back("SSL_CTX_new failed: " + drainErrors());
      return nullptr;
    }
    SSL_CTX_set_min_proto_version(c.get(), TLS1_2_VERSION);
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
    SSL_CTX_set_session_cache_mode(c.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c.get(), onNewClientSession);
    out->clients_.push_back(std::move(c));
  }
  return out;
}

TlsContexts::~TlsContexts() {
  for (auto& c : clients_)
    if (c) freeCachedSession(c.get());
}

SSL* TlsContexts::newServerSsl() const { return SSL_new(server_.get()); }

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
  if (auto* sess = static_cast<SSL_SESSION*>(SSL_CTX_get_ex_data(ctx, sessionSlot()))) SSL_set_session(ssl, sess);
  return ssl;
}

bool checkCertificate(const conf::TlsSettings& tls, std::vector<std::string>& errors) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return false;
  return loadCertAndKey(ctx.get(), tls, errors);
}

std::string describe(SSL* ssl) {
  if (!ssl) return "-";
  return std::string(SSL_get_version(ssl)) + " " + SSL_get_cipher_name(ssl);
}

}  // namespace mailshim::tls
