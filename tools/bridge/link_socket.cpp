// Non-blocking Asio sockets with poll(2) timeouts.
#include "link_socket.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>

#include "host_port.hpp"

namespace ringbus::bridge {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

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
  tcp::resolver resolver(link_io());
  auto endpoints = resolver.resolve(hp->host, std::to_string(hp->port), ec);
  if (ec) return io_error("cannot resolve " + hp->host, ec);
  Error last(Errc::io_error, "no address for " + address);
  for (const auto& entry : endpoints) {
    tcp::socket socket(link_io());
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
    socket.set_option(tcp::no_delay(true), ec);
    return LinkSocket(std::move(socket));
  }
  return last;
}

LinkSocket::LinkSocket(tcp::socket socket)
    : socket_(std::make_unique<tcp::socket>(std::move(socket))) {
  boost::system::error_code ec;
  socket_->non_blocking(true, ec);
  auto remote = socket_->remote_endpoint(ec);
  peer_ =
      ec ? std::string("?") : remote.address().to_string() + ":" + std::to_string(remote.port());
}

LinkSocket::LinkSocket(LinkSocket&&) noexcept = default;
LinkSocket& LinkSocket::operator=(LinkSocket&&) noexcept = default;
LinkSocket::~LinkSocket() { close(); }

void LinkSocket::close() noexcept {
  if (!socket_) return;
  boost::system::error_code ec;
  socket_->shutdown(tcp::socket::shutdown_both, ec);
  socket_->close(ec);
  socket_.reset();
}

std::string LinkSocket::peer() const { return peer_; }

Result<void> LinkSocket::write_all(std::span<const ConstBytes> pieces,
                                   std::chrono::milliseconds timeout) {
  if (!socket_) return Error(Errc::io_error, "the connection is closed");
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
  pollfd p{socket_->native_handle(), POLLIN, 0};
  timespec ts{static_cast<time_t>(timeout.count() / 1'000'000),
              static_cast<long>(timeout.count() % 1'000'000 * 1000)};
  return ::ppoll(&p, 1, &ts, nullptr) > 0;
}

Result<std::size_t> LinkSocket::read_into(LinkDecoder& decoder, std::chrono::milliseconds timeout) {
  if (!socket_) return Error(Errc::io_error, "the connection is closed");
  // Straight into the decoder's buffer, as much as the socket holds (no copy through the stack).
  const MutableBytes room = decoder.space(64 * 1024);
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

Result<LinkListener> LinkListener::listen(const std::string& address) {
  auto hp = split_host_port(address);
  if (!hp) return hp.error();
  boost::system::error_code ec;
  tcp::resolver resolver(link_io());
  auto endpoints = resolver.resolve(hp->host, std::to_string(hp->port), tcp::resolver::passive, ec);
  if (ec || endpoints.empty()) return io_error("cannot resolve " + hp->host, ec);
  auto endpoint = endpoints.begin()->endpoint();
  LinkListener l;
  l.acceptor_ = std::make_unique<tcp::acceptor>(link_io());
  l.acceptor_->open(endpoint.protocol(), ec);
  if (ec) return io_error("socket", ec);
  l.acceptor_->set_option(tcp::acceptor::reuse_address(true), ec);
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
  tcp::socket socket(link_io());
  acceptor_->accept(socket, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again ||
      ec == asio::error::connection_aborted) {
    return std::optional<LinkSocket>{};
  }
  if (ec) return io_error("accept", ec);
  socket.set_option(tcp::no_delay(true), ec);
  return std::optional<LinkSocket>(LinkSocket(std::move(socket)));
}

}  // namespace ringbus::bridge
