// LinkTls: an SSL_CTX with the bridge's certificate, key and CA bundle, peer verification on.
#include "link_tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "key_file.hpp"

namespace ringbus::bridge {

std::string tls_errors() {
  std::string text;
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    char line[256];
    ERR_error_string_n(e, line, sizeof line);
    if (!text.empty()) text += "; ";
    text += line;
  }
  return text;
}

Result<std::shared_ptr<const LinkTls>> LinkTls::load(const TlsConfig& config) {
  if (config.cert.empty() || config.key.empty() || config.ca.empty()) {
    return Error(Errc::invalid_argument,
                 "TLS needs all of tls.cert, tls.key and tls.ca (--tls-cert, --tls-key, --tls-ca)");
  }
  if (auto ok = check_private_file(config.key, "tls.key"); !ok) return ok.error();
  ERR_clear_error();
  SSL_CTX* context = SSL_CTX_new(TLS_method());
  if (context == nullptr) return Error(Errc::io_error, "TLS: " + tls_errors());
  std::shared_ptr<const LinkTls> tls(new LinkTls(context));
  auto failed = [&](const std::string& what) {
    return Error(Errc::invalid_argument, what + ": " + tls_errors());
  };
  if (SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION) != 1) return failed("TLS");
  if (SSL_CTX_use_certificate_chain_file(context, config.cert.c_str()) != 1) {
    return failed("tls.cert '" + config.cert + "'");
  }
  if (SSL_CTX_use_PrivateKey_file(context, config.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return failed("tls.key '" + config.key + "' (the private key of tls.cert '" + config.cert +
                  "'?)");
  }
  if (SSL_CTX_check_private_key(context) != 1) {
    return failed("tls.key '" + config.key + "' does not match tls.cert '" + config.cert + "'");
  }
  if (SSL_CTX_load_verify_locations(context, config.ca.c_str(), nullptr) != 1) {
    return failed("tls.ca '" + config.ca + "'");
  }
  // Both sides check the other's certificate; a server also requires one from its client.
  SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  // Writes may end part-way (the socket is non-blocking); the caller continues them.
  SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE);
  return tls;
}

LinkTls::~LinkTls() { SSL_CTX_free(context_); }

}  // namespace ringbus::bridge
