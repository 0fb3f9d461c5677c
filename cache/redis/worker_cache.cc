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

ClusterOptions cluster_options(const conf::CacheConfig& config) {
  ClusterOptions o;
  o.conn = conn_options(config);
  for (const std::string& node : config.redis_nodes) {
    if (std::optional<NodeAddress> a = parse_node_address(node)) o.seeds.push_back(std::move(*a));
  }
  return o;
}

namespace {

std::unique_ptr<ClusterClient> make_cluster(uv_loop_t* loop, const conf::CacheConfig& config) {
  if (!config.redis_cluster) return nullptr;
  return std::make_unique<ClusterClient>(loop, cluster_options(config));
}

GenerationSync make_sync(uv_loop_t* loop, const conf::CacheConfig& config, const RedisNames& names,
                         GenerationMap& map, ClusterClient* cluster, bool count_evictions) {
  if (cluster == nullptr) return GenerationSync(loop, conn_options(config), names, map, count_evictions);
  return GenerationSync(loop, conn_options(config), names, map, cluster, config.redis_cluster_wait_replicas);
}

}  // namespace

WorkerCache::WorkerCache(uv_loop_t* loop, const conf::CacheConfig& config, Inflight::Options inflight,
                         bool count_evictions)
    : names_(config.key_prefix, config.redis_cluster ? static_cast<size_t>(config.redis_cluster_partitions) : 0),
      cluster_(make_cluster(loop, config)),
      sync_cluster_(make_cluster(loop, config)),
      inflight_(inflight),
      store_(loop, conn_options(config), cluster_.get()),
      sync_(make_sync(loop, config, names_, generations_, sync_cluster_.get(), count_evictions)) {}

void WorkerCache::start() {
  if (cluster_ != nullptr) cluster_->start();
  if (sync_cluster_ != nullptr) sync_cluster_->start();
  store_.start();
  sync_.start();
}

std::vector<const RedisConn*> WorkerCache::connections() const {
  if (cluster_ != nullptr) {
    std::vector<const RedisConn*> all = cluster_->connections();
    for (const RedisConn* c : sync_cluster_->connections()) all.push_back(c);
    return all;
  }
  return {&store_.conn(), &sync_.subscription(), &sync_.commands()};
}

}  // namespace pgs::cache::redis
