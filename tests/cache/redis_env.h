// Test helpers for the Redis integration tests: a libuv loop driven until a condition holds (with a
// deadline, never a fixed sleep) and a blocking hiredis client for setup/cleanup. The private
// redis-server child process (free port, SIGSTOP/SIGCONT, restart) and the dev Redis address are
// tests/support.
#pragma once

#include <hiredis/hiredis.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "cache/redis/redis_conn.h"
#include "tests/support/dev_env.h"
#include "tests/support/redis_server.h"

namespace pgs::cache::testing {

inline constexpr const char* kDevRedisHost = ::pgs::test::kHost;
inline constexpr uint16_t kDevRedisPort = ::pgs::test::kRedisPort;
using ::pgs::test::PrivateRedis;
using ::pgs::test::wait_for_redis;

// "pgsc-test-<pid>-<random>:": a key prefix unique to this test run.
std::string unique_prefix();

// Options for a private redis-server on `port` that a test stops or breaks: short timeouts (50 ms per
// request, 300 ms to connect, stuck after 300 ms) and a fast backoff (20..200 ms).
cache::redis::ConnOptions private_options(uint16_t port);

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

}  // namespace pgs::cache::testing
