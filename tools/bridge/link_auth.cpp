// HMAC-SHA256 proofs for link authentication (OpenSSL: HMAC, RAND_bytes, CRYPTO_memcmp).
#include "link_auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace ringbus::bridge {

Result<Nonce> make_nonce() {
  Nonce n{};
  if (RAND_bytes(n.data(), static_cast<int>(n.size())) != 1) {
    return Error(Errc::io_error, "the random number generator failed (RAND_bytes)");
  }
  return n;
}

std::vector<std::uint8_t> link_proof(const std::string& key, LinkRole role, const Nonce& own,
                                     const Nonce& peer, const std::string& topic) {
  if (key.empty()) return {};
  // The role label keeps a receiver's proof from being replayed as a sender's.
  std::string label = role == LinkRole::sender ? "ringbus-link-sender" : "ringbus-link-receiver";
  std::vector<std::uint8_t> input(label.begin(), label.end());
  input.insert(input.end(), own.begin(), own.end());
  input.insert(input.end(), peer.begin(), peer.end());
  input.insert(input.end(), topic.begin(), topic.end());
  std::vector<std::uint8_t> mac(EVP_MAX_MD_SIZE);
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), input.data(), input.size(),
       mac.data(), &length);
  mac.resize(length);
  return mac;
}

bool proofs_equal(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace ringbus::bridge
