// Rate limiting shared by every app instance through Redis: a sliding log per key (a sorted set of
// request times, trimmed to the window) updated atomically by one Lua script that reads the clock
// of Redis itself, so instances with skewed clocks agree. If Redis is unreachable the limiter fails
// open: requests are allowed, the outage is logged once, and Redis is retried after a back-off.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

struct redisContext;

namespace pgs::app {

struct RateLimitOptions {
  std::string host = "127.0.0.1";
  int port = 16379;
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

 private:
  redisContext* take();
  void give(redisContext* c, bool healthy);
  void mark_down(const std::string& why);
  void mark_up();

  RateLimitOptions options_;
  std::mutex mutex_;
  std::vector<redisContext*> idle_;
  std::atomic<std::int64_t> down_until_ms_{0};  // steady-clock ms; 0 = not in back-off
  std::atomic<bool> down_{false};
};

}  // namespace pgs::app
