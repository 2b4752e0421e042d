// TLS for bridge links (OpenSSL): one context per bridge, loaded once from PEM files. Links are
// mutually authenticated: the receiver presents its certificate and the forwarder checks it
// against the CA bundle and the address it dialled; the forwarder presents its own, which the
// receiver checks against the same CA. TLS 1.2 at least. The link protocol runs unchanged
// inside (the pre-shared key, if configured, is checked as well).
#pragma once

#include <memory>
#include <string>

#include "ringbus/result.hpp"

struct ssl_ctx_st;

namespace ringbus::bridge {

// PEM files of a bridge's TLS identity; all three or none.
struct TlsConfig {
  std::string cert;  // certificate chain this bridge presents
  std::string key;   // its private key (mode 0600)
  std::string ca;    // CA bundle the peers' certificates must chain to
  bool enabled() const { return !cert.empty() || !key.empty() || !ca.empty(); }
};

class LinkTls {
 public:
  // Loads and checks the files (the key must match the certificate). Errors: not_found,
  // invalid_argument (the file and OpenSSL's reason).
  static Result<std::shared_ptr<const LinkTls>> load(const TlsConfig& config);
  ~LinkTls();
  LinkTls(const LinkTls&) = delete;
  LinkTls& operator=(const LinkTls&) = delete;

  ssl_ctx_st* context() const noexcept { return context_; }

 private:
  explicit LinkTls(ssl_ctx_st* context) : context_(context) {}
  ssl_ctx_st* context_;
};

// OpenSSL's queued errors for this thread, drained, as one line ("" when none).
std::string tls_errors();

}  // namespace ringbus::bridge
