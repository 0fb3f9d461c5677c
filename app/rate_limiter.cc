#include "app/rate_limiter.h"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cmath>
#include <cstring>

#include "app/log.h"

namespace pgs::app {
namespace {

// KEYS[1] the log; ARGV window seconds, limit, nonce. Returns {allowed, remaining, reset seconds}.
constexpr const char* kScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1]) * 1000000
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  count = count + 1
  allowed = 1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local reset = math.ceil((tonumber(oldest[2]) + window - now) / 1000000)
return {allowed, limit - count, reset}
)lua";

std::int64_t steady_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

timeval to_timeval(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

// EVALSHA saves sending the script each time; Redis answers NOSCRIPT until it has seen it once.
const std::string& script_sha1() {
  static const std::string sha = [] {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(kScript, std::strlen(kScript), d, &n, EVP_sha1(), nullptr);
    std::string hex;
    for (unsigned int i = 0; i < n; ++i) {
      static constexpr char kHex[] = "0123456789abcdef";
      hex += kHex[d[i] >> 4];
      hex += kHex[d[i] & 0xf];
    }
    return hex;
  }();
  return sha;
}

std::string nonce() {
  unsigned char b[8];
  (void)RAND_bytes(b, sizeof b);
  std::uint64_t v = 0;
  for (unsigned char x : b) v = (v << 8) | x;
  return std::to_string(v);
}

}  // namespace

RateLimiter::RateLimiter(RateLimitOptions options) : options_(std::move(options)) {}

RateLimiter::~RateLimiter() {
  for (redisContext* c : idle_) redisFree(c);
}

redisContext* RateLimiter::take() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      redisContext* c = idle_.back();
      idle_.pop_back();
      return c;
    }
  }
  redisContext* c = redisConnectWithTimeout(options_.host.c_str(), options_.port, to_timeval(options_.timeout));
  if (c == nullptr || c->err != 0) {
    mark_down(c != nullptr ? c->errstr : "cannot allocate a redis context");
    if (c != nullptr) redisFree(c);
    return nullptr;
  }
  redisSetTimeout(c, to_timeval(options_.timeout));
  return c;
}

void RateLimiter::give(redisContext* c, bool healthy) {
  std::vector<redisContext*> stale;
  {
    std::lock_guard lock(mutex_);
    if (healthy) {
      idle_.push_back(c);
      return;
    }
    stale.swap(idle_);  // one failure (Redis restarted?) makes every idle connection suspect
  }
  redisFree(c);
  for (redisContext* s : stale) redisFree(s);
}

void RateLimiter::mark_down(const std::string& why) {
  down_until_ms_ = steady_ms() + options_.backoff.count();
  if (!down_.exchange(true)) log::warn("redis unavailable, rate limiting fails open: " + why);
}

void RateLimiter::mark_up() {
  if (down_.exchange(false)) log::info("redis reachable again, rate limiting enforced");
}

RateDecision RateLimiter::check(const std::string& key, int limit) {
  RateDecision d;
  d.limit = limit;
  if (limit <= 0) return d;
  if (steady_ms() < down_until_ms_.load()) return d;
  redisContext* c = take();
  if (c == nullptr) return d;
  const std::string full_key = options_.prefix + "rl:" + key;
  const std::string window = std::to_string(options_.window_seconds), lim = std::to_string(limit), n = nonce();
  auto* reply = static_cast<redisReply*>(redisCommand(c, "EVALSHA %s 1 %s %s %s %s", script_sha1().c_str(),
                                                      full_key.c_str(), window.c_str(), lim.c_str(), n.c_str()));
  if (reply != nullptr && reply->type == REDIS_REPLY_ERROR && std::strncmp(reply->str, "NOSCRIPT", 8) == 0) {
    freeReplyObject(reply);
    reply = static_cast<redisReply*>(redisCommand(c, "EVAL %s 1 %s %s %s %s", kScript, full_key.c_str(),
                                                  window.c_str(), lim.c_str(), n.c_str()));
  }
  const bool ok = reply != nullptr && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3;
  if (!ok) {
    mark_down(reply == nullptr ? c->errstr : (reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply"));
    if (reply != nullptr) freeReplyObject(reply);
    give(c, false);
    return d;
  }
  mark_up();
  d.enforced = true;
  d.allowed = reply->element[0]->integer == 1;
  d.remaining = static_cast<int>(std::max<long long>(0, reply->element[1]->integer));
  d.reset_seconds = static_cast<int>(std::max<long long>(1, reply->element[2]->integer));
  freeReplyObject(reply);
  give(c, true);
  return d;
}

std::string RateLimiter::ping() {
  redisContext* c = take();
  if (c == nullptr) return "cannot connect to redis";
  auto* reply = static_cast<redisReply*>(redisCommand(c, "PING"));
  std::string problem;
  if (reply == nullptr) {
    problem = c->errstr;
  } else if (reply->type == REDIS_REPLY_ERROR) {
    problem = reply->str;
  }
  if (reply != nullptr) freeReplyObject(reply);
  give(c, problem.empty());
  if (problem.empty()) {
    mark_up();
    down_until_ms_ = 0;
  }
  return problem;
}

}  // namespace pgs::app
