#include "app/rate_limiter.h"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cmath>
#include <cstring>
#include <optional>

#include "app/log.h"
#include "cache/cluster_keys.h"
#include "cache/redis/blocking_cluster.h"
#include "cache/redis/blocking_redis.h"
#include "cache/redis/redis_tls.h"

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

using cache::redis::BlockingCluster;
using cache::redis::BlockingRedis;
using Reply = BlockingRedis::Reply;

// The connection options of every client: the deadline, the login and the TLS context (made once here,
// shared by every connection) that the options ask for.
cache::redis::ConnOptions conn_options(const RateLimitOptions& o) {
  cache::redis::ConnOptions c;
  c.host = o.host;
  c.port = static_cast<uint16_t>(o.port);
  c.timeout = o.timeout;
  c.connect_timeout = o.timeout;
  c.user = o.user;
  c.password = o.password;
  conf::CacheConfig tls;
  tls.redis_host = o.host;
  tls.redis_tls = o.tls;
  tls.redis_tls_ca_file = o.tls_ca_file;
  tls.redis_tls_server_name = o.tls_server_name;
  c.tls = cache::redis::transport_tls(tls);
  return c;
}

std::string_view error_text(const redisReply* r) {
  if (r->type == REDIS_REPLY_ERROR) return {r->str, r->len};
  return "unexpected reply";
}

}  // namespace

// One Redis connection, or one cluster client (a connection per master, the slot map, MOVED/ASK).
// Commands name the key they touch, for the cluster to route them. A failed command (no reply: lost,
// timed out, refused login) leaves the reason in error().
class RateLimiter::Client {
 public:
  explicit Client(const RateLimitOptions& o, const cache::redis::ConnOptions& conn) {
    if (o.cluster_nodes.empty()) {
      single_ = std::make_unique<BlockingRedis>(conn);
      return;
    }
    cache::redis::BlockingClusterOptions co;
    for (const std::string& n : o.cluster_nodes) {
      if (auto at = cache::parse_node_address(n)) co.seeds.push_back(*at);
    }
    co.conn = conn;
    cluster_ = std::make_unique<BlockingCluster>(std::move(co));
  }
  bool connect() {
    if (cluster_) return cluster_->connect();
    return single_->connect();
  }
  std::optional<Reply> command(const std::string& key, const std::vector<std::string>& args) {
    if (cluster_) return cluster_->command(key, args);
    if (!single_->connect()) return std::nullopt;
    std::vector<std::string_view> views(args.begin(), args.end());
    return single_->command(views);
  }
  const std::string& error() const { return cluster_ ? cluster_->last_error() : single_->last_error(); }

 private:
  std::unique_ptr<BlockingRedis> single_;
  std::unique_ptr<BlockingCluster> cluster_;
};

RateLimiter::RateLimiter(RateLimitOptions options)
    : options_(std::move(options)), conn_(conn_options(options_)) {}

RateLimiter::~RateLimiter() = default;

std::unique_ptr<RateLimiter::Client> RateLimiter::take(std::string& why) {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      std::unique_ptr<Client> c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  auto c = std::make_unique<Client>(options_, conn_);
  if (!c->connect()) {
    why = c->error();
    mark_down(why);
    return nullptr;
  }
  return c;
}

void RateLimiter::give(std::unique_ptr<Client> c, bool healthy) {
  std::vector<std::unique_ptr<Client>> stale;
  {
    std::lock_guard lock(mutex_);
    if (healthy) {
      idle_.push_back(std::move(c));
      return;
    }
    stale.swap(idle_);  // one failure (Redis restarted?) makes every idle connection suspect
  }
  // `c` and `stale` close their connections here, outside the lock.
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
  std::string why;
  std::unique_ptr<Client> c = take(why);
  if (c == nullptr) return d;
  const std::string full_key = options_.prefix + "rl:" + key;
  const std::string window = std::to_string(options_.window_seconds), lim = std::to_string(limit), n = nonce();
  // On a cluster both go to the master of full_key's slot; a node that has not seen the script yet
  // (each master has its own script cache) answers NOSCRIPT.
  std::optional<Reply> reply = c->command(full_key, {"EVALSHA", script_sha1(), "1", full_key, window, lim, n});
  if (reply && (*reply)->type == REDIS_REPLY_ERROR && std::strncmp((*reply)->str, "NOSCRIPT", 8) == 0) {
    reply = c->command(full_key, {"EVAL", kScript, "1", full_key, window, lim, n});
  }
  const bool ok = reply && (*reply)->type == REDIS_REPLY_ARRAY && (*reply)->elements == 3;
  if (!ok) {
    mark_down(reply ? std::string(error_text(reply->get())) : c->error());
    give(std::move(c), false);
    return d;
  }
  const redisReply* r = reply->get();
  mark_up();
  d.enforced = true;
  d.allowed = r->element[0]->integer == 1;
  d.remaining = static_cast<int>(std::max<long long>(0, r->element[1]->integer));
  d.reset_seconds = static_cast<int>(std::max<long long>(1, r->element[2]->integer));
  give(std::move(c), true);
  return d;
}

std::string RateLimiter::ping() {
  std::string why;
  std::unique_ptr<Client> c = take(why);
  if (c == nullptr) return "cannot connect to redis: " + why;
  // On a cluster: to the master of slot 0, once the map covers every slot.
  std::optional<Reply> reply = c->command("", {"PING"});
  std::string problem;
  if (!reply) {
    problem = c->error();
  } else if ((*reply)->type == REDIS_REPLY_ERROR) {
    problem = error_text(reply->get());
  }
  give(std::move(c), problem.empty());
  if (problem.empty()) {
    mark_up();
    down_until_ms_ = 0;
  }
  return problem;
}

}  // namespace pgs::app
