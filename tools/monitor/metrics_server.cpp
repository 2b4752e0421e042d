// The /metrics endpoint over Boost.Asio: asynchronous accept and read on one thread, a deadline
// per connection so a client that never sends its request cannot hold a socket forever.
#include "metrics_server.hpp"

#include <chrono>
#include <exception>
#include <istream>
#include <string>
#include <thread>
#include <utility>

#include <boost/asio.hpp>

namespace ringbus::monitor {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr std::size_t kMaxRequest = std::size_t{16} * 1024;  // headers of a scrape are far smaller
constexpr auto kConnectionDeadline = std::chrono::seconds(10);

Error invalid(std::string_view text, std::string_view why) {
  return Error(Errc::invalid_argument, "--prometheus '" + std::string(text) +
                                           "' is invalid: " + std::string(why) +
                                           " (expected HOST:PORT, :PORT or PORT)");
}

std::string response(std::string_view status, std::string_view content_type,
                     const std::string& body) {
  std::string r = "HTTP/1.1 " + std::string(status) + "\r\n";
  r += "Content-Type: " + std::string(content_type) + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r += "Connection: close\r\n\r\n";
  r += body;
  return r;
}

// One accepted connection: read the request head, answer it, close.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const MetricsServer::Render& render)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        request_(kMaxRequest),
        render_(render) {}

  void start() {
    auto self = shared_from_this();
    timer_.expires_after(kConnectionDeadline);
    timer_.async_wait([self](const boost::system::error_code& ec) {
      if (!ec) self->close();  // not cancelled: the client took too long
    });
    asio::async_read_until(
        socket_, request_, "\r\n\r\n",
        [self](const boost::system::error_code& ec, std::size_t) { self->on_request(ec); });
  }

 private:
  void on_request(const boost::system::error_code& ec) {
    if (ec) {
      if (ec == asio::error::not_found) {  // request head larger than kMaxRequest
        reply(response("431 Request Header Fields Too Large", "text/plain", "too large\n"));
      } else {
        close();
      }
      return;
    }
    std::istream in(&request_);
    std::string method;
    std::string target;
    in >> method >> target;
    if (method != "GET" && method != "HEAD") {
      reply(response("405 Method Not Allowed", "text/plain", "only GET\n"));
      return;
    }
    const std::string path = target.substr(0, target.find('?'));
    if (path == "/") {
      reply(response("200 OK", "text/html; charset=utf-8",
                     "<html><body><a href=\"/metrics\">/metrics</a></body></html>\n"),
            method == "HEAD");
      return;
    }
    if (path != "/metrics") {
      reply(response("404 Not Found", "text/plain", "not found: try /metrics\n"));
      return;
    }
    std::string body;
    try {
      body = render_();
    } catch (const std::exception& e) {
      reply(response("500 Internal Server Error", "text/plain", std::string(e.what()) + "\n"));
      return;
    }
    reply(response("200 OK", "text/plain; version=0.0.4; charset=utf-8", body), method == "HEAD");
  }

  void reply(std::string text, bool head_only = false) {
    if (head_only) text.resize(text.find("\r\n\r\n") + 4);
    answer_ = std::move(text);
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(answer_),
                      [self](const boost::system::error_code&, std::size_t) { self->close(); });
  }

  void close() {
    boost::system::error_code ignored;
    timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  asio::streambuf request_;
  std::string answer_;
  const MetricsServer::Render& render_;
};

}  // namespace

struct MetricsServer::Impl {
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  Render render;
  std::thread thread;

  void accept() {
    acceptor.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;  // stopping
      if (!ec) std::make_shared<Session>(std::move(socket), render)->start();
      accept();  // also after a failed accept (e.g. out of file descriptors): keep serving
    });
  }
};

Result<ListenAddress> parse_listen_address(std::string_view text) {
  ListenAddress address{"127.0.0.1", 0};
  std::string_view port = text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return invalid(text, "an IPv6 address needs [ADDRESS]:PORT");
    }
    address.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else if (const auto colon = text.rfind(':'); colon != std::string_view::npos) {
    if (colon > 0) address.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  bool ok = !port.empty() && port.size() <= 5;
  for (char c : port) {
    ok = ok && c >= '0' && c <= '9';
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (!ok || value > 65535) return invalid(text, "the port must be a number from 0 to 65535");
  address.port = static_cast<std::uint16_t>(value);
  boost::system::error_code ec;
  (void)asio::ip::make_address(address.host, ec);
  if (ec) return invalid(text, "'" + address.host + "' is not an IP address");
  return address;
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const ListenAddress& address,
                                                            Render render) {
  auto impl = std::make_unique<Impl>();
  impl->render = std::move(render);
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address.host, ec);
  if (ec) return Error(Errc::invalid_argument, "'" + address.host + "' is not an IP address");
  const tcp::endpoint endpoint(ip, address.port);
  const std::string where = address.host + ":" + std::to_string(address.port);
  auto fail = [&](const char* what) {
    return Error(Errc::io_error, std::string("cannot ") + what + " " + where + ": " + ec.message());
  };
  if (impl->acceptor.open(endpoint.protocol(), ec)) return fail("open a socket for");
  if (impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec)) return fail("configure");
  if (impl->acceptor.bind(endpoint, ec)) return fail("listen on");
  if (impl->acceptor.listen(asio::socket_base::max_listen_connections, ec))
    return fail("listen on");
  const tcp::endpoint local = impl->acceptor.local_endpoint(ec);
  if (ec) return fail("listen on");
  std::string bound = local.address().is_v6() ? "[" + local.address().to_string() + "]"
                                              : local.address().to_string();
  bound += ":" + std::to_string(local.port());
  impl->accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] {
    for (;;) {
      try {
        raw->io.run();
        return;  // stopped
      } catch (const std::exception&) {
        // A handler threw (bad_alloc): drop that connection and keep serving.
      }
    }
  });
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl), std::move(bound)));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl, std::string bound)
    : impl_(std::move(impl)), bound_(std::move(bound)) {}

MetricsServer::~MetricsServer() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace ringbus::monitor
