// The HTTP endpoint over real loopback sockets, driven by a Beast client.
#include "proxy/obs/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <thread>
#include <vector>

namespace pgs::obs {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// A connected client socket with a receive timeout, so a broken server fails the test instead of
// hanging it.
struct Client {
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;

  explicit Client(uint16_t port) {
    stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    struct timeval tv{5, 0};
    setsockopt(stream.socket().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }

  http::response<http::string_body> request(http::verb verb, std::string target, int version = 11,
                                            bool keep_alive = true) {
    http::request<http::empty_body> req{verb, target, version};
    req.set(http::field::host, "127.0.0.1");
    req.keep_alive(keep_alive);
    http::write(stream, req);
    return read();
  }

  http::response<http::string_body> read() {
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    return res;
  }

  // True once the server has closed the connection (read returns EOF / reset).
  bool closed_by_peer() {
    char c;
    beast::error_code ec;
    stream.socket().read_some(asio::buffer(&c, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }
};

class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpOptions opts = {}) {
    opts.port = 0;
    HttpHandlers h;
    h.metrics = [this](std::string_view) {
      ++metrics_calls;
      return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", "pgsidecar_up 1\n"};
    };
    h.readyz = [](std::string_view) { return HttpResponse{503, "application/json", R"({"primary":"down"})"}; };
    h.digests = [](std::string_view query) {
      if (query == "boom") throw std::runtime_error("handler failed");
      return HttpResponse{200, "application/json", "{\"query\":\"" + std::string(query) + "\"}"};
    };
    server = std::make_unique<HttpServer>(opts, std::move(h));
    ASSERT_EQ(server->start(), "");
    ASSERT_NE(server->port(), 0);
  }

  std::atomic<int> metrics_calls{0};
  std::unique_ptr<HttpServer> server;
};

TEST_F(HttpServerTest, ServesTheFourEndpoints) {
  start();
  Client c(server->port());
  auto r = c.request(http::verb::get, "/metrics");
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(r.body(), "pgsidecar_up 1\n");
  EXPECT_EQ(r[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  r = c.request(http::verb::get, "/healthz");  // default handler
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(r.body(), "ok\n");
  r = c.request(http::verb::get, "/readyz");
  EXPECT_EQ(r.result_int(), 503u);
  EXPECT_EQ(r.body(), R"({"primary":"down"})");
  r = c.request(http::verb::get, "/digests?limit=5");
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(r.body(), R"({"query":"limit=5"})");
  EXPECT_EQ(metrics_calls.load(), 1);
  EXPECT_EQ(server->stats().connections_accepted, 1u);  // all on one keep-alive connection
  EXPECT_EQ(server->stats().requests, 4u);
}

TEST_F(HttpServerTest, UnknownPathIs404AndOtherMethodsAre405) {
  start();
  Client c(server->port());
  auto r = c.request(http::verb::get, "/nope");
  EXPECT_EQ(r.result_int(), 404u);
  r = c.request(http::verb::get, "/metricsx");
  EXPECT_EQ(r.result_int(), 404u);
  r = c.request(http::verb::post, "/metrics");
  EXPECT_EQ(r.result_int(), 405u);
  EXPECT_EQ(r[http::field::allow], "GET");
  r = c.request(http::verb::head, "/metrics");
  EXPECT_EQ(r.result_int(), 405u);
  r = c.request(http::verb::get, "/metrics");  // the connection survived all of that
  EXPECT_EQ(r.result_int(), 200u);
  EXPECT_EQ(metrics_calls.load(), 1);
}

TEST_F(HttpServerTest, HandlerExceptionIs500) {
  start();
  Client c(server->port());
  auto r = c.request(http::verb::get, "/digests?boom");
  EXPECT_EQ(r.result_int(), 500u);
  EXPECT_NE(r.body().find("handler failed"), std::string::npos);
}

TEST_F(HttpServerTest, OversizedHeaderIs431AndCloses) {
  HttpOptions o;
  o.max_header_bytes = 1024;
  start(o);
  Client c(server->port());
  const std::string req = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n";
  asio::write(c.stream.socket(), asio::buffer(req));
  auto r = c.read();
  EXPECT_EQ(r.result_int(), 431u);
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_EQ(metrics_calls.load(), 0);
}

TEST_F(HttpServerTest, OversizedBodyIs413AndGarbageIs400) {
  HttpOptions o;
  o.max_body_bytes = 16;
  start(o);
  {
    Client c(server->port());
    const std::string req = "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'b');
    asio::write(c.stream.socket(), asio::buffer(req));
    EXPECT_EQ(c.read().result_int(), 413u);
    EXPECT_TRUE(c.closed_by_peer());
  }
  {
    Client c(server->port());
    asio::write(c.stream.socket(), asio::buffer(std::string("NOT HTTP AT ALL\r\n\r\n")));
    EXPECT_EQ(c.read().result_int(), 400u);
    EXPECT_TRUE(c.closed_by_peer());
  }
}

TEST_F(HttpServerTest, ConnectionCloseAndHttp10AreHonoured) {
  start();
  {
    Client c(server->port());
    auto r = c.request(http::verb::get, "/healthz", 11, /*keep_alive=*/false);
    EXPECT_EQ(r.result_int(), 200u);
    EXPECT_FALSE(r.keep_alive());
    EXPECT_TRUE(c.closed_by_peer());
  }
  {
    Client c(server->port());
    auto r = c.request(http::verb::get, "/healthz", 10, /*keep_alive=*/true);
    EXPECT_TRUE(r.keep_alive());
    r = c.request(http::verb::get, "/healthz", 10, /*keep_alive=*/true);
    EXPECT_EQ(r.result_int(), 200u);
  }
}

TEST_F(HttpServerTest, IdleConnectionIsClosedAfterReadTimeout) {
  HttpOptions o;
  o.read_timeout = 200ms;
  start(o);
  Client c(server->port());
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.closed_by_peer());  // blocks until the server closes (client timeout: 5 s)
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 150ms);
  EXPECT_LT(waited, 4s);
}

// At the limit, a new connection closes the one that has waited longest for a request and is served.
TEST_F(HttpServerTest, ConnectionsBeyondTheLimitCloseTheLongestWaiting) {
  HttpOptions o;
  o.max_connections = 2;
  start(o);
  Client a(server->port()), b(server->port());
  // Make sure both are accepted and counted (a waits longer than b) before the third arrives.
  EXPECT_EQ(a.request(http::verb::get, "/healthz").result_int(), 200u);
  EXPECT_EQ(b.request(http::verb::get, "/healthz").result_int(), 200u);
  Client c(server->port());
  EXPECT_EQ(c.request(http::verb::get, "/healthz").result_int(), 200u);
  EXPECT_TRUE(a.closed_by_peer());
  EXPECT_EQ(server->stats().connections_evicted, 1u);
  EXPECT_EQ(server->stats().connections_rejected, 0u);
  EXPECT_EQ(b.request(http::verb::get, "/healthz").result_int(), 200u);
}

// Before the fix, 64 connections that sent nothing locked every scrape out for the read timeout:
// further connections were closed at once. Now a scrape behind 100 idle connections is answered.
TEST_F(HttpServerTest, IdleConnectionsDoNotLockOutAScrape) {
  HttpOptions o;
  o.read_timeout = 30s;  // far beyond the test's deadline: only making room can serve the scrape
  start(o);
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 100; ++i) idle.push_back(std::make_unique<Client>(server->port()));
  // Each is accepted before the scrape's connection (the listener accepts in order).
  const auto t0 = std::chrono::steady_clock::now();
  Client scrape(server->port());
  struct timeval tv{2, 0};
  setsockopt(scrape.stream.socket().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  beast::error_code ec;
  http::request<http::empty_body> req{http::verb::get, "/metrics", 11};
  req.set(http::field::host, "127.0.0.1");
  http::write(scrape.stream, req, ec);
  ASSERT_FALSE(ec) << ec.message();
  http::response<http::string_body> res;
  http::read(scrape.stream, scrape.buffer, res, ec);
  ASSERT_FALSE(ec) << "no answer to /metrics behind 100 idle connections: " << ec.message();
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "pgsidecar_up 1\n");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_GE(server->stats().connections_evicted, 37u);  // 101 connections, 64 slots
}

TEST(HttpServerStart, ReportsABusyPort) {
  HttpServer first(HttpOptions{.port = 0}, {});
  ASSERT_EQ(first.start(), "");
  HttpOptions o;
  o.port = first.port();
  HttpServer second(o, {});
  const std::string err = second.start();
  EXPECT_NE(err.find(std::to_string(first.port())), std::string::npos) << err;
  HttpServer bad(HttpOptions{.host = "not-an-ip"}, {});
  EXPECT_NE(bad.start(), "");
}

TEST(HttpServerStart, StopIsIdempotentAndClosesConnections) {
  HttpServer s(HttpOptions{.port = 0}, {});
  ASSERT_EQ(s.start(), "");
  Client c(s.port());
  EXPECT_EQ(c.request(http::verb::get, "/healthz").result_int(), 200u);
  s.stop();
  EXPECT_TRUE(c.closed_by_peer());
  s.stop();
}

}  // namespace
}  // namespace pgs::obs
