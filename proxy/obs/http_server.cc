#include "proxy/obs/http_server.h"

#include <pthread.h>

#include <atomic>
#include <list>
#include <optional>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace pgs::obs {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

class HttpSession;

struct HttpServer::Impl {
  HttpOptions options;
  HttpHandlers handlers;
  std::unique_ptr<asio::io_context> ioc;
  std::optional<tcp::acceptor> acceptor;
  std::thread thread;
  std::atomic<uint16_t> port{0};
  // Touched only on the HTTP thread except through stats(), hence atomics.
  std::atomic<size_t> open_connections{0};
  std::atomic<uint64_t> accepted{0}, rejected{0}, evicted{0}, requests{0};
  // HTTP thread only: connections waiting for (the rest of) a request, longest waiting first.
  std::list<HttpSession*> waiting;

  void do_accept();
  void on_accept(tcp::socket socket);
  bool make_room();  // at max_connections: closes the longest-waiting connection; false if none waits
  HttpResponse dispatch(std::string_view target);
};

namespace {

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

HttpResponse plain(unsigned status, std::string body) {
  return HttpResponse{status, "text/plain; charset=utf-8", std::move(body)};
}

}  // namespace

// One connection. Lives as long as a pending operation holds a shared_ptr to it. It holds one of
// max_connections slots from accept until close() (not until destruction: an evicted session's
// aborted read completes later, and its slot must be free at once).
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, HttpServer::Impl& server)
      : stream_(std::move(socket)),
        server_(server),
        buffer_(server.options.max_header_bytes + server.options.max_body_bytes + 1024) {
    server_.open_connections.fetch_add(1);
  }
  ~HttpSession() { release_slot(); }

  void start() { do_read(); }
  // Closes a connection that waits for a request, so that a new one can be served.
  void evict() {
    server_.evicted.fetch_add(1);
    close();
  }

 private:
  void do_read() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_.options.max_header_bytes));
    parser_->body_limit(server_.options.max_body_bytes);
    stream_.expires_after(server_.options.read_timeout);
    waiting_ = server_.waiting.insert(server_.waiting.end(), this);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void stop_waiting() {
    if (waiting_) server_.waiting.erase(*waiting_);
    waiting_.reset();
  }

  void release_slot() {
    stop_waiting();
    if (holds_slot_) server_.open_connections.fetch_sub(1);
    holds_slot_ = false;
  }

  void on_read(beast::error_code ec) {
    stop_waiting();
    if (!holds_slot_) return;  // evicted or closed meanwhile
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      return close();
    }
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      return reply_error(431, "request header fields too large\n");
    }
    if (ec == http::error::body_limit) return reply_error(413, "payload too large\n");
    if (ec) return reply_error(400, "bad request\n");
    server_.requests.fetch_add(1);
    handle(parser_->get());
  }

  void handle(const Request& req) {
    const bool keep_alive = req.keep_alive();
    if (req.method() != http::verb::get) {
      Response res{http::status::method_not_allowed, req.version()};
      res.set(http::field::allow, "GET");
      fill(res, plain(405, "method not allowed\n"), keep_alive);
      return write(std::move(res));
    }
    HttpResponse out = server_.dispatch(req.target());
    Response res{static_cast<http::status>(out.status), req.version()};
    fill(res, out, keep_alive);
    write(std::move(res));
  }

  void reply_error(unsigned status, std::string body) {
    Response res{static_cast<http::status>(status), 11};
    fill(res, plain(status, std::move(body)), false);
    write(std::move(res));
  }

  static void fill(Response& res, const HttpResponse& out, bool keep_alive) {
    res.set(http::field::server, "pgsidecar");
    res.set(http::field::content_type, out.content_type);
    res.set(http::field::cache_control, "no-store");
    res.body() = out.body;
    res.keep_alive(keep_alive);
    res.prepare_payload();
  }

  void write(Response&& res) {
    response_ = std::move(res);
    stream_.expires_after(server_.options.write_timeout);
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->on_write(ec);
    });
  }

  void on_write(beast::error_code ec) {
    if (ec || !response_.keep_alive()) return close();
    do_read();
  }

  void close() {
    release_slot();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  HttpServer::Impl& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response response_;
  bool holds_slot_ = true;
  std::optional<std::list<HttpSession*>::iterator> waiting_;  // in server_.waiting while reading
};

HttpResponse HttpServer::Impl::dispatch(std::string_view target) {
  const size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  const HttpHandler* h = nullptr;
  if (path == "/metrics") h = &handlers.metrics;
  if (path == "/healthz") h = &handlers.healthz;
  if (path == "/readyz") h = &handlers.readyz;
  if (path == "/digests") h = &handlers.digests;
  if (h == nullptr) return plain(404, "not found\n");
  if (!*h) return path == "/healthz" ? plain(200, "ok\n") : plain(404, "not found\n");
  try {
    return (*h)(query);
  } catch (const std::exception& e) {
    return plain(500, std::string("internal error: ") + e.what() + "\n");
  } catch (...) {
    return plain(500, "internal error\n");
  }
}

void HttpServer::Impl::do_accept() {
  acceptor->async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
    if (!ec) on_accept(std::move(socket));
    do_accept();
  });
}

void HttpServer::Impl::on_accept(tcp::socket socket) {
  if (open_connections.load() >= options.max_connections && !make_room()) {
    rejected.fetch_add(1);
    beast::error_code ignored;
    socket.close(ignored);
    return;
  }
  accepted.fetch_add(1);
  std::make_shared<HttpSession>(std::move(socket), *this)->start();
}

bool HttpServer::Impl::make_room() {
  if (waiting.empty()) return false;
  waiting.front()->evict();  // leaves `waiting` and frees its slot at once
  return true;
}

HttpServer::HttpServer(HttpOptions options, HttpHandlers handlers) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handlers = std::move(handlers);
}

HttpServer::~HttpServer() { stop(); }

std::string HttpServer::start() {
  Impl& s = *impl_;
  if (s.ioc) return "http server already started";
  beast::error_code ec;
  const auto address = asio::ip::make_address(s.options.host, ec);
  const std::string where = s.options.host + ":" + std::to_string(s.options.port);
  if (ec) return "metrics listen address " + where + ": " + ec.message();
  s.ioc = std::make_unique<asio::io_context>(1);
  s.acceptor.emplace(*s.ioc);
  const tcp::endpoint ep{address, s.options.port};
  s.acceptor->open(ep.protocol(), ec);
  if (!ec) s.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor->bind(ep, ec);
  if (!ec) s.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    s.acceptor.reset();
    s.ioc.reset();
    return "metrics listen " + where + ": " + ec.message();
  }
  s.port = s.acceptor->local_endpoint().port();
  s.do_accept();
  s.thread = std::thread([&s] {
    pthread_setname_np(pthread_self(), "pgs-http");  // names in top -H, ps -L, perf: 15 bytes at most
    s.ioc->run();
  });
  return "";
}

void HttpServer::stop() {
  Impl& s = *impl_;
  if (!s.ioc) return;
  s.ioc->stop();
  if (s.thread.joinable()) s.thread.join();
  // Destroying the io_context destroys pending handlers and so every HttpSession (closing its socket)
  // while Impl's counters are still alive.
  s.acceptor.reset();
  s.ioc.reset();
}

uint16_t HttpServer::port() const { return impl_->port.load(); }

HttpServerStats HttpServer::stats() const {
  return HttpServerStats{.connections_accepted = impl_->accepted.load(),
                         .connections_rejected = impl_->rejected.load(),
                         .connections_evicted = impl_->evicted.load(),
                         .requests = impl_->requests.load()};
}

}  // namespace pgs::obs
