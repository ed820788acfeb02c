// TLS contexts built from one config snapshot.
//
// Server side: one SSL_CTX per group of certificates that name the same hosts
// (an RSA and an ECDSA certificate for the same names share a context and
// OpenSSL serves whichever the client supports); the group is chosen by SNI in
// the ClientHello callback, the [tls] certificate's group being the default.
// Two profiles are applied per connection, chosen by the client's rule:
//   modern  TLS 1.2 and 1.3, Mozilla "intermediate" ciphers, client preference;
//   legacy  also TLS 1.0/1.1 and the CBC-SHA suites Windows 7 SChannel offers,
//           at OpenSSL security level 0 on that connection only.
// Session tickets use a key ring that rotates every ticket_key_rotation_s and
// survives reloads, so resumption keeps working across a certificate renewal.
//
// Client side: one context per upstream: TLS 1.2+, the backend certificate
// verified against the upstream's CA file and name, optional client
// certificate, and the last session kept for resumption toward the backend.
//
// Reads certificate/key files. No sockets. OpenSSL 3.
#pragma once

#include <memory>
#include <set>
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

enum class Profile { Modern, Legacy };
const char* profileName(Profile p);

// What the client's ClientHello said, recorded for diagnostics. The session
// owns one and hands it to newServerSsl(); the ClientHello callback fills it.
struct HelloInfo {
  Profile profile = Profile::Modern;
  bool seen = false;          // a ClientHello was parsed
  std::string sni;            // server_name, "" if none
  int max_version = 0;        // highest protocol version offered (e.g. TLS1_2_VERSION)
  int min_version = 0;        // lowest offered
  std::string versions;       // "TLSv1.3 TLSv1.2" as offered
};

// "TLSv1" / "TLSv1.2" ... for a protocol version number.
std::string versionName(int version);

// The OpenSSL error queue, drained into one readable line.
std::string drainErrors();

class TlsContexts {
 public:
  TlsContexts() = default;
  ~TlsContexts();
  TlsContexts(const TlsContexts&) = delete;
  TlsContexts& operator=(const TlsContexts&) = delete;

  // Builds every context. On failure returns null and fills `errors`.
  static std::shared_ptr<const TlsContexts> build(const conf::Config& cfg, std::vector<std::string>& errors);

  // A new server-side SSL for a client connection with the given profile.
  // `hello` (may be null) must outlive the handshake.
  SSL* newServerSsl(Profile profile, HelloInfo* hello) const;
  // A new client-side SSL toward upstream `index` (position in cfg.upstreams),
  // with SNI and name verification set and the cached session for resumption.
  SSL* newClientSsl(size_t index, const conf::Upstream& up) const;

  // For the ClientHello callback.
  SSL_CTX* contextForName(const std::string& sni) const;

 private:
  // One loaded certificate (leaf + chain + key) from the config.
  struct Cert {
    conf::CertificateFiles files;
    std::set<std::string> names;  // lowercase SAN DNS/IP names (may start with "*.")
    int key_type = 0;             // EVP_PKEY_RSA, EVP_PKEY_EC, ...
  };
  // For a host name: per key type, the first certificate (config order) that
  // covers it. An RSA and an ECDSA certificate can then share a context even
  // when one of them names more hosts than the other.
  std::vector<size_t> selectionFor(const std::string& name) const;
  SSL_CTX* contextFor(const std::vector<size_t>& selection) const;

  std::vector<Cert> certs_;
  std::vector<std::pair<std::vector<size_t>, SslCtxPtr>> contexts_;  // [0] is the default
  std::vector<SslCtxPtr> clients_;
};

using TlsContextsConstSharedPtr = std::shared_ptr<const TlsContexts>;

// Applies a profile's protocol range, ciphers and security level to an SSL.
void applyProfile(SSL* ssl, Profile profile);

// Names a certificate is valid for (SAN DNS entries, lowercase; CN if no SAN).
std::set<std::string> certificateNames(const std::string& cert_file);
// EVP_PKEY_RSA / EVP_PKEY_EC / ... of a certificate's key (0 if unreadable).
int certificateKeyType(const std::string& cert_file);
// True if `name` is covered by `pattern` (exact, or "*.example.test" for one label).
bool nameMatches(const std::string& pattern, const std::string& name);

// Describes the negotiated TLS of an established connection, e.g.
// "TLSv1.3 TLS_AES_256_GCM_SHA384".
std::string describe(SSL* ssl);

}  // namespace mailshim::tls
