#include "app/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <array>
#include <atomic>
#include <cstdio>
#include <optional>
#include <thread>
#include <vector>

#include "app/json_util.h"
#include "app/log.h"

namespace pgs::app {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

using BeastRequest = http::request<http::string_body>;
using BeastResponse = http::response<http::string_body>;

// Converts a parsed Beast request into the handlers' Request; nullopt if the target is malformed.
std::optional<Request> to_request(const BeastRequest& in, const std::string& remote_ip) {
  Request r;
  r.method = std::string(in.method_string());
  const std::string_view target = in.target();
  const auto qmark = target.find('?');
  auto path = url_decode(target.substr(0, qmark), false);
  if (!path || path->empty() || path->front() != '/') return std::nullopt;
  r.path = std::move(*path);
  if (qmark != std::string_view::npos) {
    auto query = parse_query(target.substr(qmark + 1));
    if (!query) return std::nullopt;
    r.query = std::move(*query);
  }
  r.authorization = std::string(in[http::field::authorization]);
  r.content_type = std::string(in[http::field::content_type]);
  r.body = in.body();
  r.remote_ip = remote_ip;
  return r;
}

BeastResponse to_beast(Response&& in, unsigned version, bool keep_alive) {
  BeastResponse out{static_cast<http::status>(in.status), version};
  out.set(http::field::server, "flopods-api");
  out.set(http::field::content_type, "application/json");
  for (auto& [name, value] : in.headers) out.set(name, value);
  out.keep_alive(keep_alive);
  out.body() = std::move(in.body);
  out.prepare_payload();
  return out;
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const ServerOptions& options, Api& api, asio::thread_pool& workers,
          std::atomic<int>& in_flight)
      : stream_(std::move(socket)), options_(options), api_(api), workers_(workers), in_flight_(in_flight) {
    beast::error_code ec;
    const auto ep = stream_.socket().remote_endpoint(ec);
    remote_ip_ = ec ? "unknown" : ep.address().to_string();
  }

  void start() { read_request(true); }

 private:
  void read_request(bool first) {
    parser_.emplace();
    parser_->body_limit(options_.body_limit);
    parser_->header_limit(static_cast<std::uint32_t>(options_.header_limit));
    stream_.expires_after(first ? options_.read_timeout : options_.idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::eof) {
      return close();
    }
    t0_ = std::chrono::steady_clock::now();
    if (ec == http::error::body_limit) return reply_error(413, "payload_too_large", "request body too large");
    if (ec == http::error::header_limit) return reply_error(431, "headers_too_large", "request headers too large");
    if (ec) return reply_error(400, "bad_request", "malformed HTTP request");
    BeastRequest req = parser_->release();
    method_ = std::string(req.method_string());
    target_ = std::string(req.target().substr(0, 200));
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    auto request = to_request(req, remote_ip_);
    if (!request) return reply_error(400, "bad_request", "malformed request target");
    // The handler may block on Postgres or Redis: run it off the I/O threads.
    counted_ = true;
    ++in_flight_;
    asio::post(workers_, [self = shared_from_this(), r = std::move(*request)]() mutable {
      Response res = self->api_.handle(r);
      const std::int64_t user = r.user ? r.user->id : 0;
      asio::post(self->stream_.get_executor(), [self, res = std::move(res), user]() mutable {
        self->write(std::move(res), user);
      });
    });
  }

  void reply_error(int status, std::string_view code, std::string_view message) {
    keep_alive_ = false;  // after a framing error the stream position is unknown
    if (method_.empty()) method_ = "-";
    write(error_response(status, code, message), 0);
  }

  void write(Response&& res, std::int64_t user) {
    status_ = res.status;
    user_ = user;
    response_ = to_beast(std::move(res), version_, keep_alive_);
    stream_.expires_after(options_.write_timeout);
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code ec, std::size_t bytes) {
      self->on_write(ec, bytes);
    });
  }

  void on_write(beast::error_code ec, std::size_t bytes) {
    log_access(bytes);
    if (counted_) --in_flight_;
    counted_ = false;
    if (ec) return close();
    if (!keep_alive_) return linger();
    method_.clear();
    read_request(false);
  }

  // Closing a socket with unread input makes the kernel send RST, which can destroy the response
  // still in flight (a client uploading an oversized body gets "connection reset" instead of 413).
  // So: half-close, discard what the client still sends for up to a second, then close.
  void linger() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(1));
    discard();
  }

  void discard() {
    stream_.async_read_some(asio::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->discard();
    });
  }

  void log_access(std::size_t bytes) {
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0_).count();
    char tail[96];
    std::snprintf(tail, sizeof tail, " %d %zu %.3fms user=%lld", status_, bytes, ms, static_cast<long long>(user_));
    log::access(log::utc_timestamp() + " " + remote_ip_ + " \"" + method_ + " " + target_ + "\"" + tail);
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  const ServerOptions& options_;
  Api& api_;
  asio::thread_pool& workers_;
  std::atomic<int>& in_flight_;  // requests handed to a handler and not yet answered, server-wide
  bool counted_ = false;
  beast::flat_buffer buffer_;
  std::array<char, 16384> scratch_;  // sink of linger()
  std::optional<http::request_parser<http::string_body>> parser_;
  BeastResponse response_;
  std::string remote_ip_, method_, target_;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  int status_ = 0;
  std::int64_t user_ = 0;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace

struct HttpServer::Impl {
  Impl(ServerOptions o, Api& a)
      : options(std::move(o)), api(a), ioc(options.io_threads), acceptor(ioc), workers(options.handler_threads) {}

  void accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(socket), options, api, workers, in_flight)->start();
      } else {
        log::warn("accept: " + ec.message());
      }
      accept();
    });
  }

  // Stops accepting, lets the requests in progress be answered (for at most `grace`), then stops
  // the I/O threads; idle keep-alive connections are simply closed.
  void drain(std::chrono::steady_clock::time_point deadline) {
    if (in_flight.load() == 0 || std::chrono::steady_clock::now() >= deadline) {
      ioc.stop();
      return;
    }
    drain_timer.expires_after(std::chrono::milliseconds(10));
    drain_timer.async_wait([this, deadline](beast::error_code) { drain(deadline); });
  }

  ServerOptions options;
  Api& api;
  asio::io_context ioc;
  tcp::acceptor acceptor;
  asio::steady_timer drain_timer{ioc};
  std::atomic<int> in_flight{0};
  asio::thread_pool workers;
};

HttpServer::HttpServer(ServerOptions options, Api& api) : impl_(std::make_unique<Impl>(std::move(options), api)) {}
HttpServer::~HttpServer() = default;

Outcome<unsigned short, std::string> HttpServer::listen() {
  beast::error_code ec;
  const auto address = asio::ip::make_address(impl_->options.address, ec);
  if (ec) return "bad listen address " + impl_->options.address + ": " + ec.message();
  const tcp::endpoint ep{address, impl_->options.port};
  auto& a = impl_->acceptor;
  if (a.open(ep.protocol(), ec); ec) return "socket: " + ec.message();
  if (a.set_option(asio::socket_base::reuse_address(true), ec); ec) return "setsockopt: " + ec.message();
  if (a.bind(ep, ec); ec) return "bind " + impl_->options.address + ": " + ec.message();
  if (a.listen(asio::socket_base::max_listen_connections, ec); ec) return "listen: " + ec.message();
  return a.local_endpoint().port();
}

void HttpServer::run() {
  Impl& s = *impl_;
  asio::signal_set signals(s.ioc, SIGINT, SIGTERM);
  signals.async_wait([&s](beast::error_code, int sig) {
    log::info("signal " + std::to_string(sig) + ", shutting down");
    beast::error_code ec;
    s.acceptor.close(ec);
    s.drain(std::chrono::steady_clock::now() + std::chrono::seconds(5));
  });
  s.accept();
  std::vector<std::thread> threads;
  for (int i = 1; i < s.options.io_threads; ++i) threads.emplace_back([&s] { s.ioc.run(); });
  s.ioc.run();
  for (auto& t : threads) t.join();
  s.workers.stop();
  s.workers.join();
}

}  // namespace pgs::app
