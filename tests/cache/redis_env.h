// Test helpers for the Redis integration tests: a libuv loop driven until a condition holds (with a
// deadline, never a fixed sleep), a blocking hiredis client for setup/cleanup, and a private
// redis-server child process (free port, SIGSTOP/SIGCONT, restart).
#pragma once

#include <hiredis/hiredis.h>
#include <sys/types.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace pgs::cache::testing {

inline constexpr const char* kDevRedisHost = "127.0.0.1";
inline constexpr uint16_t kDevRedisPort = 16379;

// "pgsc-test-<pid>-<random>:": a key prefix unique to this test run.
std::string unique_prefix();

class TestLoop {
 public:
  TestLoop();
  ~TestLoop();  // runs the loop until every handle is closed, then closes it
  uv_loop_t* get() { return &loop_; }
  // Runs the loop until pred() is true (checked at least every 5 ms) or `within` passes.
  bool run_until(const std::function<bool()>& pred, std::chrono::milliseconds within);
  // Runs pending callbacks (closing handles) without blocking.
  void drain();

 private:
  uv_loop_t loop_;
};

// Blocking client (dev Redis or a private server): setup, assertions and cleanup only.
class SyncRedis {
 public:
  SyncRedis(const char* host, uint16_t port);
  ~SyncRedis();
  bool ok() const { return ctx_ != nullptr && ctx_->err == 0; }
  // Runs a command; returns the reply as text ("" for nil; "(error) ..." for errors; integers as digits).
  std::string run(std::initializer_list<std::string> args);
  void delete_prefix(const std::string& prefix);  // SCAN MATCH prefix* + DEL

 private:
  redisContext* ctx_ = nullptr;
};

// Waits (with a deadline) until a PING on host:port answers.
bool wait_for_redis(uint16_t port, std::chrono::milliseconds within);

class PrivateRedis {
 public:
  PrivateRedis();   // picks a free port and starts redis-server on it
  ~PrivateRedis();  // SIGCONT, SIGTERM, reaps
  uint16_t port() const { return port_; }
  bool running() const { return pid_ > 0; }
  void stop_process();      // SIGSTOP
  void continue_process();  // SIGCONT
  void kill_server();       // SIGKILL and reap
  bool start();             // (re)starts on the same port; true once it answers PING

 private:
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  bool stopped_ = false;
};

}  // namespace pgs::cache::testing
