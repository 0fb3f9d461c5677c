// Rate limiting shared by every app instance through Redis: a sliding log per key (a sorted set of
// request times, trimmed to the window) updated atomically by one Lua script that reads the clock
// of Redis itself, so instances with skewed clocks agree. If Redis is unreachable (or refuses the
// login, or the cluster has no master for the key) the limiter fails open: requests are allowed, the
// outage is logged once, and Redis is retried after a back-off.
//
// Redis is one server (host:port) or a Redis Cluster (cluster_nodes), plaintext or TLS, with an optional
// ACL login: the proxy's own blocking clients (cache/redis BlockingRedis, BlockingCluster: TLS over
// OpenSSL memory BIOs, AUTH after every connect, a deadline on every wait), since hiredis 0.14 has no TLS.
// The script touches one key only, given as KEYS[1], so a cluster routes it to that key's master; the
// keys of different subjects spread over the masters.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cache/redis/conn_options.h"
#include "conf/config.h"

namespace pgs::app {

struct RateLimitOptions {
  std::string host = "127.0.0.1";
  int port = 16379;
  // Redis Cluster seed nodes ("ip:port", any live node will do); when set, host and port are unused.
  std::vector<std::string> cluster_nodes;
  // AUTH after every connect when `password` is set: with `user`, an ACL login (Redis 6+).
  std::string user;
  std::string password;
  // TLS as the proxy's [cache] redis_tls: disable, require, verify-ca (the chain must lead to tls_ca_file,
  // else the system's CAs), verify-full (and the certificate must name tls_server_name, else host).
  conf::RedisTls tls = conf::RedisTls::disable;
  std::string tls_ca_file;
  std::string tls_server_name;
  std::string prefix = "flopods:";           // key namespace in Redis
  int window_seconds = 60;
  std::chrono::milliseconds timeout{200};    // connect and command timeout
  std::chrono::milliseconds backoff{1000};   // after a failure, fail open without trying this long
};

struct RateDecision {
  bool allowed = true;
  bool enforced = false;   // false: Redis unavailable, the request was let through unchecked
  int limit = 0;
  int remaining = 0;
  int reset_seconds = 0;   // until a slot frees up (Retry-After when refused)
};

class RateLimiter {
 public:
  explicit RateLimiter(RateLimitOptions options);
  ~RateLimiter();
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Counts one request against `key` (e.g. "ip:127.0.0.1"); limit <= 0 means unlimited.
  RateDecision check(const std::string& key, int limit);
  // PING, for the health endpoint; empty string when fine, else the reason.
  std::string ping();
  const RateLimitOptions& options() const { return options_; }
  // Why the options cannot work at all (a TLS CA file that cannot be read); "" when they can. Such a
  // limiter never connects (never in plaintext instead): `serve` refuses to start with it.
  const std::string& setup_error() const { return conn_.tls.error; }

 private:
  class Client;  // one connection, or one cluster client; used by one thread at a time
  std::unique_ptr<Client> take(std::string& why);  // an idle client, else a new one connected; null: `why`
  void give(std::unique_ptr<Client> c, bool healthy);
  void mark_down(const std::string& why);
  void mark_up();

  RateLimitOptions options_;
  cache::redis::ConnOptions conn_;  // from options_: timeouts, AUTH, TLS
  std::mutex mutex_;
  std::vector<std::unique_ptr<Client>> idle_;
  std::atomic<std::int64_t> down_until_ms_{0};  // steady-clock ms; 0 = not in back-off
  std::atomic<bool> down_{false};
};

}  // namespace pgs::app
