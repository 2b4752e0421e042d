// A TCP connection between bridges (Boost.Asio sockets in non-blocking mode, each wait bounded
// by poll(2) with a timeout, so no thread ever hangs on a dead peer), and the listening socket.
#pragma once

#include <chrono>
#include <memory>
#include <span>
#include <string>

#include <boost/asio/ip/tcp.hpp>

#include "link_protocol.hpp"
#include "link_tls.hpp"
#include "ringbus/result.hpp"

struct ssl_st;

namespace ringbus::bridge {

class LinkSocket {
 public:
  // Resolves and connects within `timeout`. Errors: io_error (refused, unreachable, unknown
  // host), timed_out.
  static Result<LinkSocket> connect(const std::string& address, std::chrono::milliseconds timeout);
  explicit LinkSocket(boost::asio::ip::tcp::socket socket);
  LinkSocket(LinkSocket&&) noexcept;
  LinkSocket& operator=(LinkSocket&&) noexcept;
  ~LinkSocket();

  // Runs a TLS handshake on the connection within `timeout`; from then on every byte goes
  // through TLS. A client checks the server's certificate against the CA and `host` (the
  // address it dialled); a server requires a client certificate from the same CA. Errors:
  // io_error (the peer's certificate, protocol or plain-text bytes refused, with OpenSSL's
  // reason), timed_out.
  Result<void> start_tls(const LinkTls& tls, bool server, const std::string& host,
                         std::chrono::milliseconds timeout);
  bool tls() const noexcept { return ssl_ != nullptr; }

  // Pieces gathered into one sendmsg(2); more are sent in several calls.
  static constexpr std::size_t kMaxPieces = 64;

  // Writes every byte of `pieces`, waiting at most `timeout` for the peer to take them.
  // Errors: timed_out, io_error (the connection broke).
  Result<void> write_all(std::span<const ConstBytes> pieces, std::chrono::milliseconds timeout);
  Result<void> write_all(const std::vector<std::byte>& bytes, std::chrono::milliseconds timeout);
  // Reads what arrives within `timeout` (returns at the first bytes) into the decoder; 0 on a
  // timeout. Errors: io_error ("closed by the peer", a reset).
  Result<std::size_t> read_into(LinkDecoder& decoder, std::chrono::milliseconds timeout);
  // Waits until bytes can be read, at most `timeout`. False on a timeout.
  bool wait_readable(std::chrono::microseconds timeout);
  std::string peer() const;  // "IP:PORT" of the other side
  void close() noexcept;

 private:
  struct SslFree {
    void operator()(ssl_st* ssl) const noexcept;
  };
  Result<void> write_tls(std::span<const ConstBytes> pieces, std::chrono::milliseconds timeout);
  Result<std::size_t> read_tls(LinkDecoder& decoder, std::chrono::milliseconds timeout);
  // What SSL_get_error says after a call that returned `result`: wait for the socket (true) or
  // fail.
  Result<bool> tls_wait(int result, std::chrono::steady_clock::time_point deadline,
                        const std::string& what);

  std::unique_ptr<boost::asio::ip::tcp::socket> socket_;
  std::unique_ptr<ssl_st, SslFree> ssl_;  // after start_tls
  std::string peer_;
};

class LinkListener {
 public:
  // Binds and listens. Errors: invalid_argument (address), io_error (in use, not permitted).
  static Result<LinkListener> listen(const std::string& address);
  // Accepts one connection within `timeout`; nullopt on a timeout. Errors: io_error.
  Result<std::optional<LinkSocket>> accept(std::chrono::milliseconds timeout);
  std::uint16_t port() const;  // the bound port (useful with port 0)

 private:
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
};

}  // namespace ringbus::bridge
