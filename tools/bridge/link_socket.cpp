// Non-blocking Asio sockets with poll(2) timeouts.
#include "link_socket.hpp"

#include <poll.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>

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

Result<std::pair<std::string, std::uint16_t>> split_host_port(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return Error(Errc::invalid_argument, "'" + address + "' is not HOST:PORT");
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned long port = 0;
  try {
    std::size_t used = 0;
    port = std::stoul(address.substr(colon + 1), &used);
    if (used != address.size() - colon - 1) port = 0;
  } catch (...) {
    port = 0;
  }
  if (port == 0 || port > 65535) {
    return Error(Errc::invalid_argument, "'" + address + "': the port must be 1 to 65535");
  }
  return std::make_pair(host, static_cast<std::uint16_t>(port));
}

Result<LinkSocket> LinkSocket::connect(const std::string& address,
                                       std::chrono::milliseconds timeout) {
  auto hp = split_host_port(address);
  if (!hp) return hp.error();
  boost::system::error_code ec;
  tcp::resolver resolver(link_io());
  auto endpoints = resolver.resolve(hp->first, std::to_string(hp->second), ec);
  if (ec) return io_error("cannot resolve " + hp->first, ec);
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
  for (ConstBytes piece : pieces) {
    std::size_t done = 0;
    while (done < piece.size()) {
      boost::system::error_code ec;
      std::size_t n =
          socket_->write_some(asio::buffer(piece.data() + done, piece.size() - done), ec);
      done += n;
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
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
      if (ec) return io_error("sending to " + peer_, ec);
    }
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
  std::byte buffer[64 * 1024];
  boost::system::error_code ec;
  std::size_t n = socket_->read_some(asio::buffer(buffer), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    if (timeout.count() == 0 || !wait_fd(socket_->native_handle(), POLLIN, timeout)) return 0;
    n = socket_->read_some(asio::buffer(buffer), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) return 0;
  }
  if (ec == asio::error::eof) return Error(Errc::io_error, "closed by " + peer_);
  if (ec) return io_error("receiving from " + peer_, ec);
  decoder.feed(ConstBytes(buffer, n));
  return n;
}

Result<LinkListener> LinkListener::listen(const std::string& address) {
  auto hp = split_host_port(address);
  if (!hp) return hp.error();
  boost::system::error_code ec;
  tcp::resolver resolver(link_io());
  auto endpoints =
      resolver.resolve(hp->first, std::to_string(hp->second), tcp::resolver::passive, ec);
  if (ec || endpoints.empty()) return io_error("cannot resolve " + hp->first, ec);
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
