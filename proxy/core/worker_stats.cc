// Worker: what it publishes about itself for SHOW and /metrics, copied under a mutex at each tick.
#include "proxy/client/client_conn.h"
#include "proxy/core/log.h"
#include "proxy/core/worker.h"
#include "proxy/pool/pool.h"
#include "proxy/server/server_conn.h"

namespace pgs::proxy {

void WorkerHotStats::count_error(std::string_view sqlstate) {
  std::string cls(sqlstate.substr(0, 2));
  if (cls.size() != 2) cls = "??";
  if (errors_by_class.size() >= 100 && errors_by_class.count(cls) == 0) cls = "other";
  ++errors_by_class[cls];
}

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
  uint64_t in = hot_.closed_bytes_received, out = hot_.closed_bytes_sent;
  for (const auto& [id, c] : clients_) {
    in += c->bytes_read();
    out += c->bytes_written();
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
  auto rd = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  st.clients_accepted = rd(counters_.clients_accepted);
  st.clients_refused = rd(counters_.clients_refused);
  st.login_failures = rd(counters_.login_failures);
  for (size_t i = 0; i < kLoginFailureCount; ++i) st.login_failures_by[i] = rd(counters_.login_failures_by[i]);
  st.protocol_errors = rd(counters_.protocol_errors);
  for (size_t i = 0; i < st.protocol_errors_by.size(); ++i) st.protocol_errors_by[i] = rd(counters_.protocol_errors_by[i]);
  st.transactions = rd(counters_.transactions);
  st.queries = rd(counters_.queries);
  st.server_connects = rd(counters_.server_connects);
  st.server_connect_failures = rd(counters_.server_connect_failures);
  st.cancels_forwarded = rd(counters_.cancels_forwarded);
  st.session_probes = rd(counters_.session_probes);
  st.bytes_received = in;
  st.bytes_sent = out;
  for (size_t r = 0; r < kPinReasonCount; ++r) st.pinned_clients[r] = counters_.pinned_clients[r].load();
  st.query_duration = hot_.query_duration;
  st.transaction_duration = hot_.transaction_duration;
  st.queries_by_target = hot_.queries_by_target;
  st.errors_by_class = hot_.errors_by_class;
  st.routing_decisions = hot_.routing_decisions;
  st.replica_retries = hot_.replica_retries;
  {
    const auto& k = classifier_->stats();
    st.classified_hits = k.hits;
    st.classified_shape_hits = k.shape_hits;
    st.classified_parsed = k.misses - std::min(k.misses, k.shape_hits);
  }
  st.cache = hot_.cache;
  if (result_cache_ != nullptr) {
    const auto& store = result_cache_->store().stats();
    const auto& sync = result_cache_->sync().stats();
    st.cache.workers_enabled = snapshot_->config->cache.enabled ? 1 : 0;
    st.cache.workers_ready = st.cache.workers_enabled != 0 && result_cache_->ready() ? 1 : 0;
    // A refused AUTH (wrong redis_user / redis_password) is an error of each connection that tried.
    uint64_t auth_failures = 0;
    const std::string* auth_error = nullptr;
    for (const cache::redis::RedisConn* conn :
         {&result_cache_->store().conn(), &result_cache_->sync().subscription(), &result_cache_->sync().commands()}) {
      auth_failures += conn->stats().auth_failures;
      if (!conn->last_error().empty()) auth_error = &conn->last_error();
    }
    if (auth_failures > logged_auth_failures_ && auth_error != nullptr) {
      LOG_WARN("Redis refused AUTH (" + *auth_error + "): the cache misses until it is accepted; check [cache] "
               "redis_user and redis_password");
    }
    logged_auth_failures_ = auth_failures;
    st.cache.redis_errors = store.get_errors + store.store_errors + store.refused + sync.bump_failures +
                            sync.resync_failures + auth_failures;
    for (const auto& [cls, n] : sync.evictions) st.cache.classes[cls].evictions = n;
  }
  std::lock_guard<std::mutex> lock(stats_mutex_);
  if (!with_rows) {  // keep the last rows; they are refreshed once a second
    st.clients = std::move(published_.clients);
    st.servers = std::move(published_.servers);
  }
  published_ = std::move(st);
}

}  // namespace pgs::proxy
