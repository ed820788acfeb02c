// Certificate audit. See cert_audit.h. Reads certificate files; no sockets.
#include "tls/cert_audit.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <ctime>
#include <memory>

#include "tls/tls_context.h"

namespace mailshim::tls {
namespace {

constexpr long long kExpiryWarningDays = 21;

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

std::vector<X509Ptr> readChain(const std::string& file) {
  std::vector<X509Ptr> out;
  FILE* f = std::fopen(file.c_str(), "r");
  if (!f) return out;
  while (X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr)) out.emplace_back(x);
  std::fclose(f);
  ERR_clear_error();  // the loop ends on a "no start line" error
  return out;
}

std::string subjectOf(X509* x) {
  char buf[512] = {};
  X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof buf);
  return buf;
}

std::string issuerOf(X509* x) {
  char buf[512] = {};
  X509_NAME_oneline(X509_get_issuer_name(x), buf, sizeof buf);
  return buf;
}

bool isPublicAddress(const std::string& address) {
  auto ip = conf::IpAddress::parse(address);
  if (!ip) return true;
  static const char* kPrivate[] = {"127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                   "169.254.0.0/16", "::1/128", "fc00::/7", "fe80::/10"};
  for (const char* net : kPrivate)
    if (conf::Cidr::parse(net)->contains(*ip)) return false;
  return true;  // includes 0.0.0.0 / :: (every interface)
}

void auditOne(const conf::CertificateFiles& files, const conf::TlsSettings& settings,
              const std::vector<const conf::Listener*>& public_listeners, long long now,
              std::vector<AuditFinding>& out) {
  auto err = [&out](std::string m) { out.push_back({AuditFinding::Severity::Error, std::move(m)}); };
  auto warn = [&out](std::string m) { out.push_back({AuditFinding::Severity::Warning, std::move(m)}); };
  const std::string& name = files.cert_file;

  auto chain = readChain(name);
  if (chain.empty()) {
    err(name + ": no PEM certificate found");
    return;
  }
  X509* leaf = chain.front().get();

  // Key matches certificate.
  FILE* kf = std::fopen(files.key_file.c_str(), "r");
  EVP_PKEY* key = kf ? PEM_read_PrivateKey(kf, nullptr, nullptr, nullptr) : nullptr;
  if (kf) std::fclose(kf);
  if (!key) {
    err(files.key_file + ": cannot read a private key: " + drainErrors());
  } else {
    if (X509_check_private_key(leaf, key) != 1) {
      ERR_clear_error();
      err(files.key_file + ": private key does not match certificate " + name + " (" + subjectOf(leaf) + ")");
    }
    EVP_PKEY_free(key);
  }

  // Chain order: each certificate must be issued by the next one.
  for (size_t i = 0; i + 1 < chain.size(); ++i) {
    if (X509_check_issued(chain[i + 1].get(), chain[i].get()) != X509_V_OK) {
      err(name + ": chain not in order: certificate #" + std::to_string(i + 2) + " (" + subjectOf(chain[i + 1].get()) +
          ") did not issue #" + std::to_string(i + 1) + " (" + subjectOf(chain[i].get()) + "); put the leaf first, "
          "then each intermediate (Let's Encrypt: use fullchain.pem)");
      break;
    }
  }

  // Validity period.
  time_t t = now ? static_cast<time_t>(now) : std::time(nullptr);
  for (size_t i = 0; i < chain.size(); ++i) {
    X509* x = chain[i].get();
    const ASN1_TIME* not_after = X509_get0_notAfter(x);
    std::string who = i == 0 ? "certificate" : "intermediate #" + std::to_string(i + 1);
    if (X509_cmp_time(not_after, &t) < 0) {
      err(name + ": " + who + " (" + subjectOf(x) + ") has expired");
      continue;
    }
    int days = 0, secs = 0;
    ASN1_TIME* now_asn1 = ASN1_TIME_set(nullptr, t);
    if (now_asn1 && ASN1_TIME_diff(&days, &secs, now_asn1, not_after) && days < kExpiryWarningDays)
      warn(name + ": " + who + " (" + subjectOf(x) + ") expires in " + std::to_string(days) + " days");
    ASN1_TIME_free(now_asn1);
  }

  // Completeness: the chain must lead to a trusted root.
  bool self_signed = X509_check_issued(leaf, leaf) == X509_V_OK;
  if (!self_signed) {
    X509_STORE* store = X509_STORE_new();
    bool loaded = settings.audit_ca_file.empty()
                      ? X509_STORE_set_default_paths(store) == 1
                      : X509_STORE_load_file(store, settings.audit_ca_file.c_str()) == 1;
    STACK_OF(X509)* untrusted = sk_X509_new_null();
    for (size_t i = 1; i < chain.size(); ++i) sk_X509_push(untrusted, chain[i].get());
    X509_STORE_CTX* sctx = X509_STORE_CTX_new();
    if (loaded && sctx && X509_STORE_CTX_init(sctx, store, leaf, untrusted) == 1) {
      // Validity dates are audited above; here only the path matters.
      X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(sctx), X509_V_FLAG_NO_CHECK_TIME);
      if (X509_verify_cert(sctx) != 1) {
        int code = X509_STORE_CTX_get_error(sctx);
        if (code == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY || code == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT)
          err(name + ": chain incomplete: the issuer '" + issuerOf(X509_STORE_CTX_get_current_cert(sctx)) +
              "' of '" + subjectOf(X509_STORE_CTX_get_current_cert(sctx)) +
              "' is neither in the file nor trusted; add the intermediate certificate(s) after the leaf "
              "(Let's Encrypt: fullchain.pem, not cert.pem)" +
              (settings.audit_ca_file.empty() ? "" : ", or check [tls] audit_ca_file"));
        else
          err(name + ": chain does not verify: " + X509_verify_cert_error_string(code));
      }
    } else {
      err(name + ": cannot set up chain verification: " + drainErrors());
    }
    X509_STORE_CTX_free(sctx);
    sk_X509_free(untrusted);
    X509_STORE_free(store);
  } else {
    for (const auto* l : public_listeners)
      warn(name + ": self-signed certificate on listener '" + l->name + "' (" + l->address +
           "), which is reachable from outside: Outlook and phones will refuse it");
  }
  ERR_clear_error();
}

}  // namespace

std::vector<AuditFinding> auditCertificates(const conf::Config& cfg, long long now) {
  std::vector<AuditFinding> out;
  std::vector<const conf::Listener*> public_listeners;
  for (const auto& l : cfg.listeners)
    if (isPublicAddress(l.address)) public_listeners.push_back(&l);

  std::vector<conf::CertificateFiles> all;
  all.push_back({cfg.tls.cert_file, cfg.tls.key_file});
  all.insert(all.end(), cfg.tls.extra.begin(), cfg.tls.extra.end());
  std::vector<std::set<std::string>> names;
  for (const auto& files : all) {
    auditOne(files, cfg.tls, public_listeners, now, out);
    names.push_back(certificateNames(files.cert_file));
  }

  // Every name clients are told to use must be on some certificate.
  for (const auto& l : cfg.listeners) {
    for (const auto& wanted : l.server_names) {
      std::string lower = wanted;
      for (char& c : lower)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      bool covered = false;
      for (const auto& set : names)
        for (const auto& n : set) covered = covered || nameMatches(n, lower);
      if (!covered) {
        std::string have;
        for (const auto& set : names)
          for (const auto& n : set) have += (have.empty() ? "" : ", ") + n;
        out.push_back({AuditFinding::Severity::Error,
                       "listener '" + l.name + "': server_names entry '" + wanted +
                           "' is not covered by any certificate (they name: " + have +
                           "); clients told to use it will reject the certificate"});
      }
    }
  }
  return out;
}

}  // namespace mailshim::tls
