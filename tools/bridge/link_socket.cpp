// Non-blocking Asio sockets with poll(2) timeouts.
#include "link_socket.hpp"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "host_port.hpp"

namespace ringbus::bridge {
namespace {

namespace asio = boost::asio;
using Tcp = asio::ip::tcp;

asio::io_context& link_io() {
  // Only synchronous operations run on it, so it never needs run(); one per process.
  static asio::io_context io;
  return io;
}

bool wait_fd(int fd, short events, std::chrono::milliseconds timeout) {
  pollfd p{fd, events, 0};
  const int ms = static_cast<int>(std::min<std::int64_t>(timeout.count(), 1 << 30));
  int n = ::poll(&p, 1, ms);
  return n > 0;
}

Error io_error(const std::string& what, const boost::system::error_code& ec) {
  return Error(Errc::io_error, what + ": " + ec.message());
}

}  // namespace

Result<LinkSocket> LinkSocket::connect(const std::string& address,
                                       std::chrono::milliseconds timeout) {
  auto hp = split_host_port(address);
  if (!hp) return hp.error();
  boost::system::error_code ec;
  Tcp::resolver resolver(link_io());
  auto endpoints = resolver.resolve(hp->host, std::to_string(hp->port), ec);
  if (ec) return io_error("cannot resolve " + hp->host, ec);
  Error last(Errc::io_error, "no address for " + address);
  for (const auto& entry : endpoints) {
    Tcp::socket socket(link_io());
    socket.open(entry.endpoint().protocol(), ec);
    if (ec) return io_error("socket", ec);
    socket.non_blocking(true, ec);
    socket.connect(entry.endpoint(), ec);
    if (ec == asio::error::would_block || ec == asio::error::in_progress) {
      if (!wait_fd(socket.native_handle(), POLLOUT, timeout)) {
        last = Error(Errc::timed_out, "connecting to " + address + " timed out");
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(socket.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len);
      ec = boost::system::error_code(err, boost::system::system_category());
    }
    if (ec) {
      last = io_error("cannot connect to " + address, ec);
      continue;
    }
    socket.set_option(Tcp::no_delay(true), ec);
    return LinkSocket(std::move(socket));
  }
  return last;
}

LinkSocket::LinkSocket(Tcp::socket socket)
    : socket_(std::make_unique<Tcp::socket>(std::move(socket))) {
  boost::system::error_code ec;
  socket_->non_blocking(true, ec);
  auto remote = socket_->remote_endpoint(ec);
  peer_ =
      ec ? std::string("?") : remote.address().to_string() + ":" + std::to_string(remote.port());
}

LinkSocket::LinkSocket(LinkSocket&&) noexcept = default;
LinkSocket& LinkSocket::operator=(LinkSocket&&) noexcept = default;
LinkSocket::~LinkSocket() { close(); }

void LinkSocket::SslFree::operator()(ssl_st* ssl) const noexcept { SSL_free(ssl); }

void LinkSocket::close() noexcept {
  if (!socket_) return;
  if (ssl_) {
    (void)SSL_shutdown(ssl_.get());  // close_notify, best effort (non-blocking)
    ssl_.reset();
  }
  boost::system::error_code ec;
  socket_->shutdown(Tcp::socket::shutdown_both, ec);
  socket_->close(ec);
  socket_.reset();
}

std::string LinkSocket::peer() const { return peer_; }

Result<void> LinkSocket::write_all(std::span<const ConstBytes> pieces,
                                   std::chrono::milliseconds timeout) {
  if (!socket_) return Error(Errc::io_error, "the connection is closed");
  if (ssl_) return write_tls(pieces, timeout);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // One gathering sendmsg(2) for all the pieces (a DATA header and the frames, which may lie in
  // the ring), continued where a partial write stopped.
  std::size_t first = 0;  // the first piece not wholly sent
  std::size_t done = 0;   // bytes of it sent
  while (first < pieces.size()) {
    iovec vectors[kMaxPieces];
    std::size_t count = 0;
    for (std::size_t i = first; i < pieces.size() && count < kMaxPieces; ++i, ++count) {
      const std::size_t skip = i == first ? done : 0;
      vectors[count].iov_base = const_cast<std::byte*>(pieces[i].data() + skip);
      vectors[count].iov_len = pieces[i].size() - skip;
    }
    msghdr message{};
    message.msg_iov = vectors;
    message.msg_iovlen = count;
    const ssize_t n = ::sendmsg(socket_->native_handle(), &message, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      return io_error("sending to " + peer_,
                      boost::system::error_code(errno, boost::system::system_category()));
    }
    if (n < 0) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) {
        return Error(Errc::timed_out, "the peer " + peer_ + " took no bytes for " +
                                          std::to_string(timeout.count()) + " ms");
      }
      wait_fd(socket_->native_handle(), POLLOUT,
              std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
                  std::chrono::milliseconds(1));
      continue;
    }
    auto sent = static_cast<std::size_t>(n);
    while (first < pieces.size() && sent >= pieces[first].size() - done) {
      sent -= pieces[first].size() - done;
      done = 0;
      ++first;
    }
    done += sent;
  }
  return {};
}

Result<void> LinkSocket::write_all(const std::vector<std::byte>& bytes,
                                   std::chrono::milliseconds timeout) {
  const ConstBytes one(bytes.data(), bytes.size());
  return write_all(std::span<const ConstBytes>(&one, 1), timeout);
}

bool LinkSocket::wait_readable(std::chrono::microseconds timeout) {
  if (!socket_) return false;
  if (ssl_ && SSL_pending(ssl_.get()) > 0) return true;  // decrypted bytes already here
  pollfd p{socket_->native_handle(), POLLIN, 0};
  timespec ts{static_cast<time_t>(timeout.count() / 1'000'000),
              static_cast<long>(timeout.count() % 1'000'000 * 1000)};
  return ::ppoll(&p, 1, &ts, nullptr) > 0;
}

Result<std::size_t> LinkSocket::read_into(LinkDecoder& decoder, std::chrono::milliseconds timeout) {
  if (!socket_) return Error(Errc::io_error, "the connection is closed");
  if (ssl_) return read_tls(decoder, timeout);
  // Straight into the decoder's buffer, as much as the socket holds (no copy through the stack).
  const MutableBytes room = decoder.space(std::size_t{64} * 1024);
  boost::system::error_code ec;
  std::size_t n = socket_->read_some(asio::buffer(room.data(), room.size()), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    if (timeout.count() == 0 || !wait_fd(socket_->native_handle(), POLLIN, timeout)) return 0;
    n = socket_->read_some(asio::buffer(room.data(), room.size()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) return 0;
  }
  if (ec == asio::error::eof) return Error(Errc::io_error, "closed by " + peer_);
  if (ec) return io_error("receiving from " + peer_, ec);
  decoder.filled(n);
  return n;
}

Result<bool> LinkSocket::tls_wait(int result, std::chrono::steady_clock::time_point deadline,
                                  const std::string& what) {
  const int error = SSL_get_error(ssl_.get(), result);
  short events = 0;
  if (error == SSL_ERROR_WANT_READ) {
    events = POLLIN;
  } else if (error == SSL_ERROR_WANT_WRITE) {
    events = POLLOUT;
  } else if (error == SSL_ERROR_ZERO_RETURN) {
    return Error(Errc::io_error, "closed by " + peer_);
  } else {
    const int err = errno;
    std::string why = tls_errors();
    if (why.empty() && error == SSL_ERROR_SYSCALL) {
      why = err == 0 ? "closed by " + peer_ : std::generic_category().message(err);
    }
    if (why.empty()) why = "TLS error " + std::to_string(error);
    if (const long verify = SSL_get_verify_result(ssl_.get()); verify != X509_V_OK) {
      why += " (certificate: " + std::string(X509_verify_cert_error_string(verify)) + ")";
    }
    return Error(Errc::io_error, what + ": " + why);
  }
  const auto now = std::chrono::steady_clock::now();
  if (now >= deadline) return false;
  wait_fd(socket_->native_handle(), events,
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
              std::chrono::milliseconds(1));
  return true;
}

Result<void> LinkSocket::start_tls(const LinkTls& tls, bool server, const std::string& host,
                                   std::chrono::milliseconds timeout) {
  if (!socket_) return Error(Errc::io_error, "the connection is closed");
  ERR_clear_error();
  ssl_.reset(SSL_new(tls.context()));
  if (!ssl_ || SSL_set_fd(ssl_.get(), socket_->native_handle()) != 1) {
    return Error(Errc::io_error, "TLS: " + tls_errors());
  }
  if (!server) {
    // The receiver's certificate must name the address dialled: an IP address or a host name.
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_.get());
    in_addr v4{};
    const bool ip = ::inet_pton(AF_INET, host.c_str(), &v4) == 1;
    const int named = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                         : X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    if (named != 1) return Error(Errc::io_error, "TLS: " + tls_errors());
    if (!ip) SSL_set_tlsext_host_name(ssl_.get(), host.c_str());
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    ERR_clear_error();
    const int r = server ? SSL_accept(ssl_.get()) : SSL_connect(ssl_.get());
    if (r == 1) return {};
    auto again = tls_wait(r, deadline, "TLS handshake with " + peer_);
    if (!again) {
      ssl_.reset();
      return again.error();
    }
    if (!*again) {
      ssl_.reset();
      return Error(Errc::timed_out, "TLS handshake with " + peer_ + " took more than " +
                                        std::to_string(timeout.count()) + " ms");
    }
  }
}

Result<void> LinkSocket::write_tls(std::span<const ConstBytes> pieces,
                                   std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (ConstBytes piece : pieces) {
    std::size_t done = 0;
    while (done < piece.size()) {
      ERR_clear_error();
      std::size_t n = 0;
      // A retry after WANT_* repeats the same buffer, as OpenSSL requires.
      const int r = SSL_write_ex(ssl_.get(), piece.data() + done, piece.size() - done, &n);
      if (r == 1) {
        done += n;
        continue;
      }
      auto again = tls_wait(r, deadline, "sending to " + peer_);
      if (!again) return again.error();
      if (!*again) {
        return Error(Errc::timed_out, "the peer " + peer_ + " took no bytes for " +
                                          std::to_string(timeout.count()) + " ms");
      }
    }
  }
  return {};
}

Result<std::size_t> LinkSocket::read_tls(LinkDecoder& decoder, std::chrono::milliseconds timeout) {
  const MutableBytes room = decoder.space(std::size_t{64} * 1024);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    ERR_clear_error();
    std::size_t n = 0;
    const int r = SSL_read_ex(ssl_.get(), room.data(), room.size(), &n);
    if (r == 1) {
      decoder.filled(n);
      return n;
    }
    if (timeout.count() == 0 && SSL_get_error(ssl_.get(), r) == SSL_ERROR_WANT_READ) return 0;
    auto again = tls_wait(r, deadline, "receiving from " + peer_);
    if (!again) return again.error();
    if (!*again) return 0;
  }
}

Result<LinkListener> LinkListener::listen(const std::string& address) {
  auto hp = split_host_port(address);
  if (!hp) return hp.error();
  boost::system::error_code ec;
  Tcp::resolver resolver(link_io());
  auto endpoints = resolver.resolve(hp->host, std::to_string(hp->port), Tcp::resolver::passive, ec);
  if (ec || endpoints.empty()) return io_error("cannot resolve " + hp->host, ec);
  auto endpoint = endpoints.begin()->endpoint();
  LinkListener l;
  l.acceptor_ = std::make_unique<Tcp::acceptor>(link_io());
  l.acceptor_->open(endpoint.protocol(), ec);
  if (ec) return io_error("socket", ec);
  l.acceptor_->set_option(Tcp::acceptor::reuse_address(true), ec);
  l.acceptor_->bind(endpoint, ec);
  if (ec) return io_error("cannot listen on " + address, ec);
  l.acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return io_error("cannot listen on " + address, ec);
  l.acceptor_->non_blocking(true, ec);
  return l;
}

std::uint16_t LinkListener::port() const {
  boost::system::error_code ec;
  return acceptor_->local_endpoint(ec).port();
}

Result<std::optional<LinkSocket>> LinkListener::accept(std::chrono::milliseconds timeout) {
  if (!wait_fd(acceptor_->native_handle(), POLLIN, timeout)) return std::optional<LinkSocket>{};
  boost::system::error_code ec;
  Tcp::socket socket(link_io());
  acceptor_->accept(socket, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again ||
      ec == asio::error::connection_aborted) {
    return std::optional<LinkSocket>{};
  }
  if (ec) return io_error("accept", ec);
  socket.set_option(Tcp::no_delay(true), ec);
  return std::optional<LinkSocket>(LinkSocket(std::move(socket)));
}

}  // namespace ringbus::bridge
