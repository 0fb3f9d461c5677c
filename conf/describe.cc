// SHOW CONFIG rows and the SIGHUP reloadability check.
#include <algorithm>
#include <array>

#include "conf/config.h"
#include "conf/units.h"

namespace pgs::conf {
namespace {

using Rows = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view kMask = "********";

// Keys that only take effect at start-up (see the field comments in conf/config.h).
constexpr std::array<std::string_view, 23> kNotReloadable{
    "proxy.listen_host", "proxy.listen_port", "proxy.workers", "proxy.io_uring", "proxy.admin_database",
    "cache.redis_host", "cache.redis_port", "cache.redis_user", "cache.redis_password",
    "cache.redis_tls", "cache.redis_tls_ca_file", "cache.redis_tls_server_name",
    "cache.redis_cluster", "cache.redis_nodes", "cache.redis_cluster_partitions", "cache.redis_cluster_wait_replicas",
    "cache.invalidation_stream", "cache.stream_slot", "cache.stream_user", "cache.stream_password",
    "cache.stream_max_delay", "cache.stream_max_lag_bytes", "observability.metrics_listen"};

std::string masked(const std::string& secret) { return secret.empty() ? "" : std::string(kMask); }
std::string yes_no(bool b) { return b ? "true" : "false"; }

std::string list(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

template <typename T>
std::string optional_text(const std::optional<T>& v) {
  if (!v) return "";
  if constexpr (std::is_same_v<T, int>) {
    return std::to_string(*v);
  } else {
    return std::string(to_string(*v));
  }
}

void proxy_rows(const Config& c, Rows& rows) {
  const ProxyConfig& p = c.proxy;
  rows.emplace_back("proxy.listen_host", p.listen_host);
  rows.emplace_back("proxy.listen_port", std::to_string(p.listen_port));
  rows.emplace_back("proxy.workers", std::to_string(p.workers));
  rows.emplace_back("proxy.auth_type", std::string(to_string(p.auth_type)));
  rows.emplace_back("proxy.max_client_conn", std::to_string(p.max_client_conn));
  rows.emplace_back("proxy.max_message_bytes", format_size(p.max_message_bytes));
  rows.emplace_back("proxy.max_parse_bytes", format_size(p.max_parse_bytes));
  rows.emplace_back("proxy.client_buffer_high_water", format_size(p.client_buffer_high_water));
  rows.emplace_back("proxy.buffer_release_bytes", format_size(p.buffer_release_bytes));
  rows.emplace_back("proxy.io_uring", yes_no(p.io_uring));
  rows.emplace_back("proxy.shutdown_timeout", format_duration(p.shutdown_timeout));
  rows.emplace_back("proxy.client_login_timeout", format_duration(p.client_login_timeout));
  rows.emplace_back("proxy.admin_database", p.admin_database);
  rows.emplace_back("proxy.auth_user", p.auth_user);
  rows.emplace_back("proxy.auth_password", masked(p.auth_password));
  rows.emplace_back("proxy.auth_query", p.auth_query);
  rows.emplace_back("proxy.auth_dbname", p.auth_dbname);
  rows.emplace_back("proxy.auth_query_ttl", format_duration(p.auth_query_ttl));
  rows.emplace_back("proxy.auth_query_negative_ttl", format_duration(p.auth_query_negative_ttl));
  rows.emplace_back("proxy.auth_query_timeout", format_duration(p.auth_query_timeout));
  rows.emplace_back("proxy.auth_query_cache_entries", std::to_string(p.auth_query_cache_entries));
  rows.emplace_back("proxy.auth_query_max_pending", std::to_string(p.auth_query_max_pending));
  rows.emplace_back("proxy.auth_query_connections", std::to_string(p.auth_query_connections));
  rows.emplace_back("tls.client_tls", std::string(to_string(c.tls.client_tls)));
  rows.emplace_back("tls.cert_file", c.tls.cert_file);
  rows.emplace_back("tls.key_file", c.tls.key_file);
  rows.emplace_back("tls.server_tls", std::string(to_string(c.tls.server_tls)));
  rows.emplace_back("tls.server_tls_ca_file", c.tls.server_tls_ca_file);
  const PoolConfig& pool = c.pool;
  rows.emplace_back("pool.pool_mode", std::string(to_string(pool.pool_mode)));
  rows.emplace_back("pool.pool_size", std::to_string(pool.pool_size));
  rows.emplace_back("pool.min_pool_size", std::to_string(pool.min_pool_size));
  rows.emplace_back("pool.query_wait_timeout", format_duration(pool.query_wait_timeout));
  rows.emplace_back("pool.server_idle_timeout", format_duration(pool.server_idle_timeout));
  rows.emplace_back("pool.server_lifetime", format_duration(pool.server_lifetime));
  rows.emplace_back("pool.server_connect_timeout", format_duration(pool.server_connect_timeout));
  rows.emplace_back("pool.server_check_delay", format_duration(pool.server_check_delay));
  rows.emplace_back("pool.idle_transaction_timeout", format_duration(pool.idle_transaction_timeout));
}

void node_tls_rows(const ServerEndpoint& e, const std::string& prefix, Rows& rows) {
  rows.emplace_back(prefix + "server_tls", std::string(to_string(e.server_tls)));
  rows.emplace_back(prefix + "server_tls_ca_file", e.server_tls_ca_file);
  rows.emplace_back(prefix + "server_allow_cleartext", yes_no(e.server_allow_cleartext));
}

void server_rows(const Config& c, Rows& rows) {
  rows.emplace_back("primary.name", c.primary.name);
  rows.emplace_back("primary.host", c.primary.host);
  rows.emplace_back("primary.port", std::to_string(c.primary.port));
  node_tls_rows(c.primary, "primary.", rows);
  for (size_t i = 0; i < c.replicas.size(); ++i) {
    std::string p = "replicas[" + std::to_string(i) + "].";
    rows.emplace_back(p + "name", c.replicas[i].name);
    rows.emplace_back(p + "host", c.replicas[i].host);
    rows.emplace_back(p + "port", std::to_string(c.replicas[i].port));
    rows.emplace_back(p + "weight", std::to_string(c.replicas[i].weight));
    node_tls_rows(c.replicas[i], p, rows);
  }
  for (size_t i = 0; i < c.databases.size(); ++i) {
    const DatabaseConfig& db = c.databases[i];
    std::string p = "databases[" + std::to_string(i) + "].";
    rows.emplace_back(p + "name", db.name);
    rows.emplace_back(p + "server_dbname", db.server_dbname);
    rows.emplace_back(p + "pool_size", optional_text(db.pool_size));
    rows.emplace_back(p + "pool_mode", optional_text(db.pool_mode));
  }
  for (size_t i = 0; i < c.users.size(); ++i) {
    const UserConfig& u = c.users[i];
    std::string p = "users[" + std::to_string(i) + "].";
    rows.emplace_back(p + "name", u.name);
    rows.emplace_back(p + "password", masked(u.password));
    rows.emplace_back(p + "server_password", masked(u.server_password));
    rows.emplace_back(p + "admin", yes_no(u.admin));
    rows.emplace_back(p + "pool_size", optional_text(u.pool_size));
    rows.emplace_back(p + "pool_mode", optional_text(u.pool_mode));
  }
}

void feature_rows(const Config& c, Rows& rows) {
  const RoutingConfig& r = c.routing;
  rows.emplace_back("routing.consistency", std::string(to_string(r.consistency)));
  rows.emplace_back("routing.max_replica_lag", format_duration(r.max_replica_lag));
  rows.emplace_back("routing.max_replica_lag_bytes", format_size(r.max_replica_lag_bytes));
  rows.emplace_back("routing.load_balance", std::string(to_string(r.load_balance)));
  rows.emplace_back("routing.replica_safe_functions", list(r.replica_safe_functions));
  rows.emplace_back("routing.health_check_interval", format_duration(r.health_check_interval));
  rows.emplace_back("routing.health_check_idle_interval", format_duration(r.health_check_idle_interval));
  rows.emplace_back("routing.max_parse_bytes", format_size(r.max_parse_bytes));
  rows.emplace_back("routing.classifier_cache_entries", std::to_string(r.classifier_cache_entries));
  rows.emplace_back("routing.read_your_writes",
                    r.read_your_writes == ReadYourWrites::user ? "user" : "client");
  rows.emplace_back("routing.monitor_user", r.monitor_user);
  rows.emplace_back("routing.monitor_password", r.monitor_password.empty() ? "" : "********");
  rows.emplace_back("routing.monitor_dbname", r.monitor_dbname);
  const CacheConfig& k = c.cache;
  rows.emplace_back("cache.enabled", yes_no(k.enabled));
  rows.emplace_back("cache.redis_host", k.redis_host);
  rows.emplace_back("cache.redis_port", std::to_string(k.redis_port));
  rows.emplace_back("cache.redis_user", k.redis_user);
  rows.emplace_back("cache.redis_password", masked(k.redis_password));
  rows.emplace_back("cache.redis_timeout", format_duration(k.redis_timeout));
  rows.emplace_back("cache.redis_tls", std::string(to_string(k.redis_tls)));
  rows.emplace_back("cache.redis_tls_ca_file", k.redis_tls_ca_file);
  rows.emplace_back("cache.redis_tls_server_name", k.redis_tls_server_name);
  rows.emplace_back("cache.redis_cluster", yes_no(k.redis_cluster));
  rows.emplace_back("cache.redis_nodes", list(k.redis_nodes));
  rows.emplace_back("cache.redis_cluster_partitions", std::to_string(k.redis_cluster_partitions));
  rows.emplace_back("cache.redis_cluster_wait_replicas", std::to_string(k.redis_cluster_wait_replicas));
  rows.emplace_back("cache.max_result_bytes", format_size(k.max_result_bytes));
  rows.emplace_back("cache.key_prefix", k.key_prefix);
  rows.emplace_back("cache.invalidation_stream", yes_no(k.invalidation_stream));
  rows.emplace_back("cache.stream_slot", k.stream_slot);
  rows.emplace_back("cache.stream_user", k.stream_user);
  rows.emplace_back("cache.stream_password", masked(k.stream_password));
  rows.emplace_back("cache.stream_max_delay", format_duration(k.stream_max_delay));
  rows.emplace_back("cache.stream_max_lag_bytes", format_size(k.stream_max_lag_bytes));
  for (size_t i = 0; i < k.classes.size(); ++i) {
    std::string p = "cache.classes[" + std::to_string(i) + "].";
    rows.emplace_back(p + "name", k.classes[i].name);
    rows.emplace_back(p + "ttl", format_duration(k.classes[i].ttl));
    rows.emplace_back(p + "tables", list(k.classes[i].tables));
  }
  const ObservabilityConfig& o = c.observability;
  rows.emplace_back("observability.metrics_listen", o.metrics_listen);
  rows.emplace_back("observability.http_read_timeout", format_duration(o.http_read_timeout));
  rows.emplace_back("observability.slow_query_ms", std::to_string(o.slow_query.count()));
  rows.emplace_back("observability.slow_query_log", o.slow_query_log);
  rows.emplace_back("observability.log_parameters", yes_no(o.log_parameters));
  rows.emplace_back("observability.digest_top_n", std::to_string(o.digest_top_n));
  rows.emplace_back("observability.log_level", std::string(to_string(o.log_level)));
  rows.emplace_back("session.max_prepared_statements", std::to_string(c.session.max_prepared_statements));
  rows.emplace_back("session.pinning", std::string(to_string(c.session.pinning)));
}

}  // namespace

Rows config_rows(const Config& config) {
  Rows rows;
  proxy_rows(config, rows);
  server_rows(config, rows);
  feature_rows(config, rows);
  return rows;
}

std::string describe(const Config& config) {
  std::string out;
  for (const auto& [key, value] : config_rows(config)) out += key + " = " + value + "\n";
  return out;
}

std::vector<std::string> non_reloadable_changes(const Config& running, const Config& next) {
  Rows a = config_rows(running);
  Rows b = config_rows(next);
  auto value_of = [](const Rows& rows, std::string_view key) -> const std::string* {
    for (const auto& row : rows) {
      if (row.first == key) return &row.second;
    }
    return nullptr;
  };
  std::vector<std::string> changed;
  for (std::string_view key : kNotReloadable) {
    const std::string* old_value = value_of(a, key);
    const std::string* new_value = value_of(b, key);
    if (old_value && new_value && *old_value != *new_value) changed.emplace_back(key);
  }
  return changed;
}

}  // namespace pgs::conf
