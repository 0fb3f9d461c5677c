// A private redis-server for tests that stop, pause or kill Redis (the shared dev Redis is never
// touched): a child process on a free loopback port, with no persistence, its log in a temp file.
// Every wait has a deadline.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/process.h"

namespace pgs::test {

// True when a PING to 127.0.0.1:`port` is answered +PONG within `deadline` (no hiredis: raw RESP).
bool redis_ping(uint16_t port, Millis deadline = Millis(2000));
// Waits (with a deadline) until a PING on 127.0.0.1:`port` answers.
bool wait_for_redis(uint16_t port, Millis within);

// Keys under `prefix` in the Redis at 127.0.0.1:`port` (redis-cli --scan), -1 when it cannot be asked.
long redis_keys(uint16_t port, const std::string& prefix);
// Deletes them (redis-cli DEL); a no-op when there are none or Redis cannot be asked.
void redis_delete_prefix(uint16_t port, const std::string& prefix);

// How a PrivateRedis listens. Default: plaintext, the default user open (no AUTH).
struct RedisServerOptions {
  // PEM files (tests/support/certs.h): when set, Redis serves TLS only (no plaintext port; clients are not
  // asked for a certificate, as ElastiCache does not).
  std::string tls_cert, tls_key, tls_ca;
  // ACL users made at start, each with every key, channel and command; when any is listed the default
  // user is off (every connection must AUTH). The first one is the harness's own (cli(), ping).
  std::vector<std::pair<std::string, std::string>> users;  // {name, password}
};

class PrivateRedis {
 public:
  PrivateRedis() : PrivateRedis(RedisServerOptions{}) {}
  // Picks a free port and starts redis-server on it (check running()).
  explicit PrivateRedis(RedisServerOptions options);
  ~PrivateRedis();  // SIGCONT, SIGKILL, reaps; deletes the log
  PrivateRedis(const PrivateRedis&) = delete;
  PrivateRedis& operator=(const PrivateRedis&) = delete;

  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }  // "host:port"
  // True while the process exists (also when paused by stop_process()).
  bool running() { return child_.running(); }
  // (Re)starts on the same port; true once it answers PING (10 s deadline).
  bool start();
  // SIGTERM, then SIGKILL when it has not exited after `grace`; reaped.
  void stop(Millis grace = Millis(5000));
  void kill_server();       // SIGKILL and reap
  void stop_process();      // SIGSTOP
  void continue_process();  // SIGCONT
  std::string log_tail() const { return read_file_tail(log_path_, 4000); }
  bool tls() const { return !options_.tls_cert.empty(); }
  // redis-cli against this server (over TLS, as the first user, when so configured); 10 s deadline.
  RunResult cli(const std::vector<std::string>& args) const;
  // The number of keys under `prefix` (-1 when Redis cannot be asked).
  long keys(const std::string& prefix) const;

 private:
  bool answers() const;  // PING answered PONG
  RedisServerOptions options_;
  uint16_t port_ = 0;
  std::string dir_, log_path_;
  Child child_;
};

}  // namespace pgs::test
