#include "cache/redis/worker_cache.h"

#include "cache/redis/redis_tls.h"

namespace pgs::cache::redis {

ConnOptions conn_options(const conf::CacheConfig& config) {
  ConnOptions o;
  o.host = config.redis_host;
  o.port = config.redis_port;
  o.timeout = config.redis_timeout;
  o.user = config.redis_user;
  o.password = config.redis_password;
  o.tls = transport_tls(config);
  return o;
}

WorkerCache::WorkerCache(uv_loop_t* loop, const conf::CacheConfig& config, Inflight::Options inflight,
                         bool count_evictions)
    : names_(config.key_prefix),
      inflight_(inflight),
      store_(loop, conn_options(config)),
      sync_(loop, conn_options(config), names_, generations_, count_evictions) {}

void WorkerCache::start() {
  store_.start();
  sync_.start();
}

}  // namespace pgs::cache::redis
