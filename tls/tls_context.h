// TLS contexts built from the config: the server context clients see (the
// configured certificate chain and key, the "modern" profile: TLS 1.2 and 1.3,
// Mozilla intermediate ciphers) and one client context per upstream (TLS 1.2+,
// certificate verified against the upstream's CA file and name, session
// resumption toward the backend).
//
// Reads certificate/key files. No sockets. OpenSSL 3.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace mailshim::tls {

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const;
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

// The OpenSSL error queue, drained into one readable line.
std::string drainErrors();

// Immutable set of TLS contexts for one config snapshot. Built off to the side
// at start and on reload; sessions keep the TlsContexts they started with
// (SSL objects hold their own reference to the SSL_CTX).
class TlsContexts {
 public:
  // Builds every context. On failure returns null and fills `errors`.
  static std::shared_ptr<const TlsContexts> build(const conf::Config& cfg, std::vector<std::string>& errors);

  ~TlsContexts();
  TlsContexts() = default;
  TlsContexts(const TlsContexts&) = delete;
  TlsContexts& operator=(const TlsContexts&) = delete;

  SSL_CTX* server() const { return server_.get(); }
  // Client context for the upstream at `index` in cfg.upstreams.
  SSL_CTX* client(size_t index) const { return clients_.at(index).get(); }

  // A new server-side SSL for a client connection.
  SSL* newServerSsl() const;
  // A new client-side SSL toward upstream `index`, with SNI and host name
  // verification set, and the cached session for resumption if any.
  SSL* newClientSsl(size_t index, const conf::Upstream& up) const;

 private:
  SslCtxPtr server_;
  std::vector<SslCtxPtr> clients_;
};

using TlsContextsConstSharedPtr = std::shared_ptr<const TlsContexts>;

// Checks that cert_file/key_file load and match. Used by --check-config.
bool checkCertificate(const conf::TlsSettings& tls, std::vector<std::string>& errors);

// Describes the negotiated TLS of an established connection, e.g.
// "TLSv1.3 TLS_AES_256_GCM_SHA384".
std::string describe(SSL* ssl);

}  // namespace mailshim::tls
