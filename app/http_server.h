// The HTTP/1.1 front: Boost.Beast with keep-alive on `io_threads` Asio threads. Reading and writing
// are asynchronous and bounded (header and body limits, read/write deadlines); each parsed request is
// handed to a separate pool of `handler_threads` that may block on the database and Redis, and the
// response is written back on the connection's strand. One access-log line per request.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "app/api.h"
#include "app/outcome.h"

namespace pgs::app {

struct ServerOptions {
  std::string address = "127.0.0.1";
  unsigned short port = 8080;                        // 0: any free port (see HttpServer::port())
  int io_threads = 2;
  int handler_threads = 8;
  std::size_t body_limit = 1 << 20;                  // bytes; larger bodies get 413
  std::size_t header_limit = 16 << 10;               // bytes; larger headers get 431
  std::chrono::milliseconds read_timeout{30000};     // a request must arrive whole within this
  std::chrono::milliseconds idle_timeout{60000};     // keep-alive connection idle between requests
  std::chrono::milliseconds write_timeout{30000};
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, Api& api);
  ~HttpServer();
  // Binds and listens; returns the bound port. Start-up error: the reason.
  Outcome<unsigned short, std::string> listen();
  // Serves until SIGINT or SIGTERM; then stops accepting, answers the requests already being
  // handled (for up to 5 s) and returns.
  void run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgs::app
