// Link authentication with a pre-shared key: each side sends a fresh random nonce and proves it
// knows the key with an HMAC-SHA256 over both nonces and the topic (OpenSSL); the key itself
// never crosses the wire, and proofs are compared in constant time.
#pragma once

#include <string>
#include <vector>

#include "link_protocol.hpp"
#include "ringbus/result.hpp"

namespace ringbus::bridge {

enum class LinkRole : std::uint8_t { sender, receiver };

// A fresh random nonce (OpenSSL RAND_bytes). Errors: io_error if the generator fails.
Result<Nonce> make_nonce();

// The proof of `role`: HMAC-SHA256(key, role label | its own nonce | the peer's nonce | topic).
// Empty when the key is empty (an unauthenticated link).
std::vector<std::uint8_t> link_proof(const std::string& key, LinkRole role, const Nonce& own,
                                     const Nonce& peer, const std::string& topic);

// Constant-time comparison of a received proof with the expected one.
bool proofs_equal(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b);

}  // namespace ringbus::bridge
