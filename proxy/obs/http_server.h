// The metrics/health HTTP endpoint: GET /metrics, /healthz, /readyz, /digests on its own Asio thread
// (Boost.Beast parser and serializer; no hand-written HTTP).
//
// Contract:
//  - Only GET; any other method gets 405 with "Allow: GET". Unknown paths get 404. A query string is
//    passed to the handler. HTTP/1.1 keep-alive is honoured (and HTTP/1.0 "Connection: keep-alive").
//  - Header block above max_header_bytes gets 431, a body above max_body_bytes gets 413, any other
//    parse error 400; each of those closes the connection after the reply.
//  - A request must arrive completely within read_timeout of the previous reply (or of accept);
//    otherwise the connection is closed silently. This also bounds keep-alive idle time.
//  - At most max_connections at once. A connection beyond that closes the one that has waited longest
//    for a request (idle keep-alive, or a request still arriving) and is served; only when every
//    connection is busy writing a reply is the new one closed at once. So clients that connect and
//    send nothing cannot lock a scraper out, not even for read_timeout.
//  - Handlers run on the HTTP thread, one at a time, and must be thread-safe with respect to the
//    workers (read hubs/snapshots, never worker state). An exception from a handler becomes a 500.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace pgs::obs {

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Called with the request's query string (after '?', possibly empty).
using HttpHandler = std::function<HttpResponse(std::string_view query)>;

// An unset handler: /healthz answers 200 "ok\n"; the others answer 404.
struct HttpHandlers {
  HttpHandler metrics;
  HttpHandler healthz;
  HttpHandler readyz;
  HttpHandler digests;
};

struct HttpOptions {
  std::string host = "127.0.0.1";  // listen address (IPv4 or IPv6 literal)
  uint16_t port = 9930;            // 0 = any free port (see HttpServer::port())
  size_t max_header_bytes = 8192;
  size_t max_body_bytes = 4096;
  std::chrono::milliseconds read_timeout{5000};    // whole request, and keep-alive idle time
  std::chrono::milliseconds write_timeout{10000};  // whole reply
  size_t max_connections = 64;
};

struct HttpServerStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_rejected = 0;  // over max_connections with none waiting for a request
  uint64_t connections_evicted = 0;   // waiting for a request, closed to make room for a new one
  uint64_t requests = 0;
};

class HttpServer {
 public:
  HttpServer(HttpOptions options, HttpHandlers handlers);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the thread. Returns "" on success, else a message naming the address
  // and the reason (start-up error; the proxy refuses to start).
  std::string start();
  // Closes the listener and every connection and joins the thread. Idempotent. Call it from any
  // thread but the HTTP thread (never from a handler).
  void stop();

  uint16_t port() const;  // the bound port (useful with port 0); 0 before start()
  HttpServerStats stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgs::obs
