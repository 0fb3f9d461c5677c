// Worker: what it publishes about itself for SHOW and /metrics, copied under a mutex at each tick.
#include "proxy/client/client_conn.h"
#include "proxy/core/log.h"
#include "proxy/core/worker.h"
#include "proxy/pool/pool.h"
#include "proxy/server/server_conn.h"

namespace pgs::proxy {

WorkerStats Worker::published_stats() const {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  return published_;
}

void Worker::publish_stats(bool with_rows) {
  auto now = Clock::now();
  auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  WorkerStats st;
  st.worker = index_;
  for (auto& [key, pool] : pools_) st.pools.push_back(pool->stats(now));
  st.metrics = metrics_;  // one copy of everything counted; what follows adds what lives elsewhere
  WorkerMetrics& m = st.metrics;
  for (const auto& [id, c] : clients_) {
    m.bytes_received += c->bytes_read();
    m.bytes_sent += c->bytes_written();
    if (!with_rows) continue;
    ClientRow row;
    row.id = c->id();
    row.worker = index_;
    row.user = c->user();
    row.database = c->database();
    row.state = std::string(state_name(c->state()));
    row.addr = c->peer();
    row.application_name = c->application_name();
    row.connected_seconds = seconds(now - c->created_at());
    row.state_seconds = seconds(now - c->state_since());
    row.server_id = c->server() != nullptr ? c->server()->id() : 0;
    row.pinned = c->pin_reasons();
    st.clients.push_back(std::move(row));
  }
  if (with_rows) {
    for (auto& [key, pool] : pools_) pool->server_rows(now, st.servers);
  }
  st.client_count = static_cast<int>(clients_.size());
  {
    const auto& k = classifier_->stats();
    m.classified_hits = k.hits;
    m.classified_shape_hits = k.shape_hits;
    m.classified_parsed = k.misses - std::min(k.misses, k.shape_hits);
  }
  m.auth_query = auth_query_->counts();
  m.auth_query_cached = auth_query_->cached();
  if (result_cache_ != nullptr) {
    const auto& store = result_cache_->store().stats();
    const auto& sync = result_cache_->sync().stats();
    m.cache.workers_enabled = snapshot_->config->cache.enabled ? 1 : 0;
    m.cache.workers_ready = m.cache.workers_enabled != 0 && result_cache_->ready() ? 1 : 0;
    // A refused AUTH (wrong redis_user / redis_password) or a failed TLS handshake (a certificate that does
    // not verify, no TLS on the port) is an error of each connection that tried.
    uint64_t auth_failures = 0, tls_failures = 0, commands = 0;
    const std::string* last_error = nullptr;
    for (const cache::redis::RedisConn* conn : result_cache_->connections()) {
      auth_failures += conn->stats().auth_failures;
      tls_failures += conn->stats().tls_failures;
      commands += conn->stats().requests;
      if (!conn->last_error().empty()) last_error = &conn->last_error();
    }
    if (auth_failures > logged_auth_failures_ && last_error != nullptr) {
      LOG_WARN("Redis refused AUTH (" + *last_error + "): the cache misses until it is accepted; check [cache] "
               "redis_user and redis_password");
    }
    if (tls_failures > logged_tls_failures_ && last_error != nullptr) {
      LOG_WARN("Redis TLS failed (" + *last_error + "): the cache misses until it succeeds; check [cache] "
               "redis_tls, redis_tls_ca_file and redis_tls_server_name");
    }
    logged_auth_failures_ = auth_failures;
    logged_tls_failures_ = tls_failures;
    m.cache.redis_commands = commands;
    m.cache.redis_errors = store.get_errors + store.store_errors + store.refused + sync.bump_failures +
                            sync.resync_failures + auth_failures + tls_failures;
    for (const auto& [cls, n] : sync.evictions) m.cache.classes[cls].evictions = n;
  }
  std::lock_guard<std::mutex> lock(stats_mutex_);
  if (!with_rows) {  // keep the last rows; they are refreshed once a second
    st.clients = std::move(published_.clients);
    st.servers = std::move(published_.servers);
  }
  published_ = std::move(st);
}

}  // namespace pgs::proxy
