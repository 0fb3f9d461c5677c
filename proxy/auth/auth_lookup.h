// AuthLookup: one auth_query lookup on a worker's libuv loop, without blocking it. libpq in nonblocking
// mode (PQconnectStartParams, PQsendQueryParams) with its socket watched by a uv_poll handle and the
// whole lookup bounded by a uv_timer deadline; its own connection, closed when the lookup ends.
// The answer is handed to `done` once (never after abandon()); the owner destroys the lookup then.
// Thread affinity: the loop's thread. A host name is resolved first by the worker's HostResolver (libpq
// would resolve it synchronously, blocking the loop); libpq then gets `host` (the name, for verify-full's
// certificate check) and `hostaddr` (the addresses found, tried in order), and looks nothing up itself.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <string>

#include "proxy/auth/auth_cache.h"
#include "proxy/net/resolver.h"

typedef struct pg_conn PGconn;

namespace pgs::proxy {

struct AuthLookupTarget {
  std::string host;
  uint16_t port = 0;
  std::string dbname;    // where the query runs (server name)
  std::string user;      // auth_user
  std::string password;  // auth_user's password
  std::string query;     // auth_query; $1 = the user looked up
  std::string sslmode = "disable";  // the node's server_tls, as libpq's sslmode
  std::string sslrootcert;          // its CA file; "" = none
  std::chrono::milliseconds timeout{5000};
};

class AuthLookup {
 public:
  using Done = std::function<void(AuthAnswer)>;
  AuthLookup(uv_loop_t* loop, HostResolver& resolver, AuthLookupTarget target, std::string name, Done done);
  ~AuthLookup();  // abandon()
  AuthLookup(const AuthLookup&) = delete;
  AuthLookup& operator=(const AuthLookup&) = delete;

  void start();
  void abandon() noexcept;  // closes the connection and the handles; `done` is not called

 private:
  static void poll_cb(uv_poll_t* h, int status, int events) noexcept;
  static void timer_cb(uv_timer_t* h) noexcept;
  void on_resolved(const Resolution& r);
  void on_ready();
  void watch(int events);  // (re)arms the poll handle on libpq's current socket
  void send_query();
  void read_results();
  void finish(AuthAnswer answer);
  void fail(const char* sqlstate, const std::string& why);

  enum class Phase : uint8_t { idle, resolving, connecting, querying, done };
  uv_loop_t* loop_;
  HostResolver& resolver_;
  uint64_t resolve_ticket_ = 0;  // a lookup of the host in flight
  AuthLookupTarget target_;
  std::string name_;
  Done done_;
  PGconn* conn_ = nullptr;
  uv_poll_t* poll_ = nullptr;    // heap-allocated: freed by its close callback
  uv_timer_t* timer_ = nullptr;  // idem
  int polled_fd_ = -1;
  Phase phase_ = Phase::idle;
  bool flushing_ = false;
  bool have_row_ = false;
  AuthAnswer answer_;
  std::string query_error_;
};

}  // namespace pgs::proxy
