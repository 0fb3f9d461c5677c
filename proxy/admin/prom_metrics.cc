#include <algorithm>

#include "proxy/admin/prom_metrics.h"

#include <map>

#include "proxy/admin/aggregate.h"
#include "proxy/obs/exposition.h"
#include "proxy/obs/metrics.h"
#include "router/route.h"

namespace pgs::proxy::admin {

namespace {

using obs::MetricId;

// Builds MetricData series by series, interning label values in a scrape-local registry.
class Builder {
 public:
  obs::SeriesRegistry reg;
  obs::MetricData data;

  void counter(MetricId m, std::initializer_list<std::string_view> labels, uint64_t v) {
    auto& u = data.u[idx(m)];
    auto s = series(m, labels, u);
    u[s] += v;
  }
  void gauge(MetricId m, std::initializer_list<std::string_view> labels, double v) {
    auto& d = data.d[idx(m)];
    auto s = series(m, labels, d);
    d[s] += v;
  }
  void histogram(MetricId m, std::initializer_list<std::string_view> labels, const Histogram& h) {
    const auto bounds = obs::metric_def(m).buckets.span();
    const size_t width = bounds.size() + 1;
    auto& u = data.u[idx(m)];
    auto& d = data.d[idx(m)];
    auto s = series(m, labels, d);
    if (u.size() < (s + 1) * width) u.resize((s + 1) * width, 0);
    for (size_t b = 0; b < h.buckets.size(); ++b) {
      size_t target = b < Histogram::kBounds.size() ? obs::bucket_index(bounds, Histogram::kBounds[b]) : bounds.size();
      u[s * width + target] += h.buckets[b];
    }
    d[s] += h.sum;
  }

 private:
  static size_t idx(MetricId m) { return static_cast<size_t>(m); }
  template <typename V>
  obs::SeriesId series(MetricId m, std::initializer_list<std::string_view> labels, std::vector<V>& v) {
    obs::SeriesId s = reg.intern(m, labels);
    if (v.size() <= s) v.resize(s + 1, V{});
    return s;
  }
};

void connections(Builder& b, const WorkerStats& all) {
  std::map<std::string, int> clients;
  for (const char* s : {"active", "waiting", "idle"}) clients[s] = 0;
  for (const ClientRow& c : all.clients) ++clients[c.state];
  for (const auto& [state, n] : clients) b.gauge(MetricId::client_connections, {state}, n);
  std::map<std::tuple<std::string, std::string, std::string>, int> servers;
  for (const ServerRow& s : all.servers) ++servers[{s.database + "/" + s.user, s.role, s.state}];
  for (const auto& [key, n] : servers) {
    b.gauge(MetricId::server_connections, {std::get<0>(key), std::get<1>(key), std::get<2>(key)}, n);
  }
  for (const PoolStats& p : all.pools) {
    std::string pool = p.database + "/" + p.user;
    b.gauge(MetricId::pool_clients, {pool, p.node, "active"}, p.cl_active);
    b.gauge(MetricId::pool_clients, {pool, p.node, "waiting"}, p.cl_waiting);
  }
  for (const PoolStats& p : all.pools) b.histogram(MetricId::pool_wait_seconds, {p.database + "/" + p.user}, p.wait);
}

void traffic(Builder& b, const WorkerStats& all) {
  for (size_t t = 0; t < kTargetCount; ++t) {
    auto name = target_name(static_cast<Target>(t));
    b.histogram(MetricId::query_duration_seconds, {name}, all.metrics.query_duration[t]);
    b.histogram(MetricId::transaction_duration_seconds, {name}, all.metrics.transaction_duration[t]);
    b.counter(MetricId::queries_total, {name}, all.metrics.queries_by_target[t]);
  }
  for (const auto& [cls, n] : all.metrics.errors_by_class) b.counter(MetricId::errors_total, {cls}, n);
  b.counter(MetricId::client_bytes_received_total, {}, all.metrics.bytes_received);
  b.counter(MetricId::client_bytes_sent_total, {}, all.metrics.bytes_sent);
  for (size_t t = 0; t < all.metrics.routing_decisions.size(); ++t) {
    std::string_view target = t == 0 ? "primary" : "replica";
    for (size_t r = 0; r < router::kReasonNames.size() && r < all.metrics.routing_decisions[t].size(); ++r) {
      if (all.metrics.routing_decisions[t][r] == 0) continue;
      b.counter(MetricId::routing_decisions_total, {target, router::kReasonNames[r]}, all.metrics.routing_decisions[t][r]);
    }
  }
  for (size_t r = 0; r < kPinReasonCount; ++r) {
    b.gauge(MetricId::pinned_clients, {pin_reason_name(static_cast<PinReason>(r))},
            static_cast<double>(all.metrics.pinned_clients[r]));
  }
}

void result_cache(Builder& b, const CacheStats& c) {
  if (c.workers_enabled == 0) return;
  for (const auto& [name, k] : c.classes) {
    b.counter(MetricId::cache_requests_total, {name, "hit"}, k.hits);
    b.counter(MetricId::cache_requests_total, {name, "miss"}, k.misses);
    b.counter(MetricId::cache_stores_total, {name, "stored"}, k.stores);
    b.counter(MetricId::cache_stores_total, {name, "skipped"}, k.not_stored);
    b.counter(MetricId::cache_stores_total, {name, "replica_behind"}, k.replica_behind);
    b.counter(MetricId::cache_invalidations_total, {name}, k.invalidations);
    b.counter(MetricId::cache_evictions_total, {name}, k.evictions);
  }
  for (size_t r = 0; r < c.bypass.size(); ++r) {
    if (c.bypass[r] != 0) b.counter(MetricId::cache_bypass_total, {cache::kBypassReasonNames[r]}, c.bypass[r]);
  }
  b.counter(MetricId::cache_waits_total, {"served"}, c.waits - std::min(c.waits, c.wait_fallthroughs));
  b.counter(MetricId::cache_waits_total, {"fell_through"}, c.wait_fallthroughs);
  b.counter(MetricId::cache_corrupt_entries_total, {}, c.corrupt);
  b.counter(MetricId::redis_errors_total, {}, c.redis_errors);
  b.counter(MetricId::redis_commands_total, {}, c.redis_commands);
  b.gauge(MetricId::cache_ready, {}, c.workers_ready == c.workers_enabled ? 1 : 0);
}

void process(Builder& b, const WorkerStats& all, const ProcessFacts& f) {
  for (size_t i = 0; i < kLoginFailureCount; ++i) {
    b.counter(MetricId::login_failures_total, {login_failure_name(static_cast<LoginFailure>(i))},
              all.metrics.login_failures[i]);
  }
  for (size_t i = 0; i < kProtocolErrorNames.size(); ++i) {
    b.counter(MetricId::protocol_errors_total, {kProtocolErrorNames[i]}, all.metrics.protocol_errors[i]);
  }
  const WorkerMetrics& m = all.metrics;
  b.counter(MetricId::clients_accepted_total, {}, m.clients_accepted);
  b.counter(MetricId::server_connects_total, {}, m.server_connects);
  b.counter(MetricId::server_connect_failures_total, {}, m.server_connect_failures);
  b.counter(MetricId::servers_failed_check_total, {}, m.servers_failed_check);
  b.counter(MetricId::cancels_forwarded_total, {}, m.cancels_forwarded);
  b.counter(MetricId::session_probes_total, {}, m.session_probes);
  b.counter(MetricId::auth_query_lookups_total, {"cache_hit"}, m.auth_query.cache_hits);
  b.counter(MetricId::auth_query_lookups_total, {"joined"}, m.auth_query.joined);
  b.counter(MetricId::auth_query_lookups_total, {"refused"}, m.auth_query.refused);
  b.counter(MetricId::auth_query_lookups_total, {"found"}, m.auth_query.found);
  b.counter(MetricId::auth_query_lookups_total, {"unknown"}, m.auth_query.unknown);
  b.counter(MetricId::auth_query_lookups_total, {"failed"}, m.auth_query.failed);
  b.gauge(MetricId::auth_query_cache_entries, {}, m.auth_query_cached);
  b.counter(MetricId::replica_retries_total, {}, m.replica_retries);
  b.counter(MetricId::lsn_probes_total, {"with_request"}, m.lsn_probes[0]);
  b.counter(MetricId::lsn_probes_total, {"at_release"}, m.lsn_probes[1]);
  b.counter(MetricId::classifier_lookups_total, {"hit"}, all.metrics.classified_hits);
  b.counter(MetricId::classifier_lookups_total, {"shape_hit"}, all.metrics.classified_shape_hits);
  b.counter(MetricId::classifier_lookups_total, {"parsed"}, all.metrics.classified_parsed);
  b.counter(MetricId::config_reloads_total, {"ok"}, f.reloads_ok);
  b.counter(MetricId::config_reloads_total, {"error"}, f.reloads_failed);
  b.gauge(MetricId::uptime_seconds, {}, f.uptime_seconds);
  b.counter(MetricId::slow_queries_total, {}, f.slow_queries);
  b.counter(MetricId::slow_log_dropped_total, {}, f.slow_log_dropped);
  b.counter(MetricId::cache_catalog_reads_total, {}, f.catalog_reads);  // the session tracking reads it too
  if (f.stream) {
    b.gauge(MetricId::cache_stream_leader, {}, f.stream->leader ? 1 : 0);
    b.gauge(MetricId::cache_stream_live, {}, f.stream->live ? 1 : 0);
    b.gauge(MetricId::cache_stream_lag_bytes, {}, static_cast<double>(f.stream->lag_bytes));
    b.counter(MetricId::cache_stream_transactions_total, {}, f.stream->transactions);
    b.counter(MetricId::cache_stream_bumped_tables_total, {}, f.stream->bumped_tables);
    b.counter(MetricId::cache_stream_leaderships_total, {}, f.stream->leaderships);
    b.counter(MetricId::cache_stream_errors_total, {}, f.stream->errors);
  }
  if (!f.health) return;
  for (const monitor::NodeHealth& n : f.health->replicas) {
    const std::string& name = n.node.name;
    b.gauge(MetricId::replica_healthy, {name}, n.healthy ? 1 : 0);
    if (n.checked_at == std::chrono::steady_clock::time_point{}) continue;  // never checked: lag unknown
    b.gauge(MetricId::replica_lag_bytes, {name}, static_cast<double>(n.lag_bytes));
    b.gauge(MetricId::replica_lag_seconds, {name}, std::chrono::duration<double>(n.lag).count());
  }
}

}  // namespace

obs::Readiness readiness_from(const monitor::HealthSnapshot* health, bool primary_reachable, bool draining) {
  obs::Readiness r;
  r.primary_reachable = primary_reachable;
  r.draining = draining;
  if (health == nullptr) return r;
  for (const monitor::NodeHealth& n : health->replicas) {
    obs::ReplicaReadiness rr;
    rr.name = n.node.name;
    rr.healthy = n.healthy;
    if (n.checked_at != std::chrono::steady_clock::time_point{}) {
      rr.lag_bytes = static_cast<int64_t>(n.lag_bytes);
      rr.lag_seconds = std::chrono::duration<double>(n.lag).count();
    }
    r.replicas.push_back(std::move(rr));
  }
  return r;
}

std::string render_metrics(const std::vector<WorkerStats>& workers, const ProcessFacts& facts) {
  WorkerStats all = aggregate(workers);
  Builder b;
  connections(b, all);
  traffic(b, all);
  result_cache(b, all.metrics.cache);
  process(b, all, facts);
  b.counter(MetricId::metric_series_overflow_total, {}, b.reg.overflows());
  std::string out;
  obs::render_prometheus(b.data, b.reg.labels(), out);
  return out;
}

}  // namespace pgs::proxy::admin
