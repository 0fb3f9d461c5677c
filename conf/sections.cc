#include "conf/sections.h"

#include "conf/table_reader.h"

namespace pgs::conf::detail {
namespace {

using namespace std::chrono_literals;

constexpr Millis kDay = 24h;
constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = kKiB * kKiB;
constexpr uint64_t kGiB = kMiB * kKiB;
constexpr Length kHost{1, 255};
constexpr int kMaxPool = 10000;

void read_proxy(TableReader& r, ProxyConfig& c) {
  r.string("listen_host", c.listen_host, kHost);
  r.port("listen_port", c.listen_port);
  r.integer("workers", c.workers, 0, 256);
  r.enumeration("auth_type", c.auth_type, kAuthTypes);
  r.integer("max_client_conn", c.max_client_conn, 1, 1'000'000);
  r.size("max_message_bytes", c.max_message_bytes, kKiB, kGiB);
  r.size("max_parse_bytes", c.max_parse_bytes, 64 * kKiB, kGiB);
  r.size("client_buffer_high_water", c.client_buffer_high_water, 4 * kKiB, kGiB);
  r.size("buffer_release_bytes", c.buffer_release_bytes, 64 * kKiB, kGiB);
  r.boolean("io_uring", c.io_uring);
  r.duration("shutdown_timeout", c.shutdown_timeout, 0ms, kDay);
  r.duration("client_login_timeout", c.client_login_timeout, 100ms, 1h);
  r.string("admin_database", c.admin_database, kIdentifier);
  r.string("auth_user", c.auth_user, Length{0, 63});
  r.secret("auth_password", c.auth_password, Length{0, 1024});
  r.string("auth_query", c.auth_query, Length{1, 4096});
  r.string("auth_dbname", c.auth_dbname, Length{0, 63});
  r.duration("auth_query_ttl", c.auth_query_ttl, 1ms, kDay);
  r.duration("auth_query_negative_ttl", c.auth_query_negative_ttl, 0ms, kDay);
  r.duration("auth_query_timeout", c.auth_query_timeout, 10ms, 10min);
  r.integer("auth_query_cache_entries", c.auth_query_cache_entries, 1, 10'000'000);
  r.integer("auth_query_max_pending", c.auth_query_max_pending, 1, 1'000'000);
  r.integer("auth_query_connections", c.auth_query_connections, 1, 100);
}

void read_tls(TableReader& r, TlsConfig& c) {
  r.enumeration("client_tls", c.client_tls, kClientTls);
  r.string("cert_file", c.cert_file, Length{0, 4096});
  r.string("key_file", c.key_file, Length{0, 4096});
  r.enumeration("server_tls", c.server_tls, kServerTls);
  r.string("server_tls_ca_file", c.server_tls_ca_file, Length{0, 4096});
}

void read_pool(TableReader& r, PoolConfig& c) {
  r.enumeration("pool_mode", c.pool_mode, kPoolModes);
  r.integer("pool_size", c.pool_size, 1, kMaxPool);
  r.integer("min_pool_size", c.min_pool_size, 0, kMaxPool);
  r.duration("query_wait_timeout", c.query_wait_timeout, 1ms, kDay);
  r.duration("server_idle_timeout", c.server_idle_timeout, 0ms, 30 * kDay);
  r.duration("server_lifetime", c.server_lifetime, 0ms, 30 * kDay);
  r.duration("server_connect_timeout", c.server_connect_timeout, 1ms, 10min);
  r.duration("server_check_delay", c.server_check_delay, 0ms, kDay);
  r.duration("idle_transaction_timeout", c.idle_transaction_timeout, 0ms, kDay);
}

void read_server(TableReader& r, ServerEndpoint& c, bool replica) {
  r.string("name", c.name, kIdentifier);
  r.string("host", c.host, kHost);
  r.port("port", c.port);
  if (replica) r.integer("weight", c.weight, 1, 1000);
  r.enumeration("server_tls", c.server_tls, kServerTls);  // the caller set [tls]'s defaults first
  r.string("server_tls_ca_file", c.server_tls_ca_file, Length{0, 4096});
  r.boolean("server_allow_cleartext", c.server_allow_cleartext);
}

void read_database(TableReader& r, DatabaseConfig& c) {
  r.string("name", c.name, kIdentifier);
  r.string("server_dbname", c.server_dbname, kIdentifier);
  r.optional_integer("pool_size", c.pool_size, 1, kMaxPool);
  r.optional_enumeration("pool_mode", c.pool_mode, kPoolModes);
}

void read_user(TableReader& r, UserConfig& c) {
  r.string("name", c.name, kIdentifier);
  r.secret("password", c.password, Length{0, 1024});
  r.secret("server_password", c.server_password, Length{0, 1024});
  r.boolean("admin", c.admin);
  r.optional_integer("pool_size", c.pool_size, 1, kMaxPool);
  r.optional_enumeration("pool_mode", c.pool_mode, kPoolModes);
}

void read_routing(TableReader& r, RoutingConfig& c) {
  r.enumeration("consistency", c.consistency, kConsistencies);
  r.duration("max_replica_lag", c.max_replica_lag, 0ms, kDay);
  r.size("max_replica_lag_bytes", c.max_replica_lag_bytes, 0, 1024 * kGiB);
  r.enumeration("load_balance", c.load_balance, kLoadBalances);
  r.string_list("replica_safe_functions", c.replica_safe_functions, Length{1, 127});
  r.duration("health_check_interval", c.health_check_interval, 10ms, 10min);
  r.duration("health_check_idle_interval", c.health_check_idle_interval, 0ms, 10min);
  r.size("max_parse_bytes", c.max_parse_bytes, 0, 64 * kMiB);
  r.integer("classifier_cache_entries", c.classifier_cache_entries, 0, 10'000'000);
  r.enumeration("read_your_writes", c.read_your_writes, kReadYourWrites);
  r.string("monitor_user", c.monitor_user, Length{0, 63});
  r.secret("monitor_password", c.monitor_password, Length{0, 1024});
  r.string("monitor_dbname", c.monitor_dbname, Length{0, 63});
}

void read_cache_class(TableReader& r, CacheClass& c) {
  r.string("name", c.name, kIdentifier);
  r.duration("ttl", c.ttl, 1ms, 30 * kDay);
  r.string_list("tables", c.tables, Length{3, 127});
}

void read_cache(TableReader& r, CacheConfig& c) {
  r.boolean("enabled", c.enabled);
  r.string("redis_host", c.redis_host, kHost);
  r.port("redis_port", c.redis_port);
  r.string("redis_user", c.redis_user, Length{0, 256});
  r.secret("redis_password", c.redis_password, Length{0, 1024});
  r.duration("redis_timeout", c.redis_timeout, 1ms, 1min);
  r.enumeration("redis_tls", c.redis_tls, kRedisTls);
  r.string("redis_tls_ca_file", c.redis_tls_ca_file, Length{0, 4096});
  r.string("redis_tls_server_name", c.redis_tls_server_name, Length{0, 253});
  r.boolean("redis_cluster", c.redis_cluster);
  r.string_list("redis_nodes", c.redis_nodes, Length{3, 300});
  r.integer("redis_cluster_partitions", c.redis_cluster_partitions, 1, 1024);
  r.integer("redis_cluster_wait_replicas", c.redis_cluster_wait_replicas, 0, 16);
  r.size("max_result_bytes", c.max_result_bytes, 1, 512 * kMiB);
  r.string("key_prefix", c.key_prefix, Length{0, 64});
  r.boolean("invalidation_stream", c.invalidation_stream);
  r.string("stream_slot", c.stream_slot, Length{1, 40});
  r.string("stream_user", c.stream_user, Length{0, 63});
  r.secret("stream_password", c.stream_password, Length{0, 1024});
  r.duration("stream_max_delay", c.stream_max_delay, 100ms, 1h);
  r.size("stream_max_lag_bytes", c.stream_max_lag_bytes, kMiB, 1024 * kGiB);
  if (const toml::array* classes = r.array_of_tables("classes")) {
    for (size_t i = 0; i < classes->size(); ++i) {
      const toml::table& t = *(*classes)[i].as_table();
      TableReader item(t, r.path_of("classes") + "[" + std::to_string(i) + "]", r.diagnostics());
      r.diagnostics().note_line(item.path(), item.line());
      read_cache_class(item, c.classes.emplace_back());
      item.finish();
    }
  }
}

void read_observability(TableReader& r, ObservabilityConfig& c) {
  r.string("metrics_listen", c.metrics_listen, Length{0, 300});
  r.duration("http_read_timeout", c.http_read_timeout, 100ms, 1h);
  r.millis("slow_query_ms", c.slow_query, 0ms, kDay);
  r.string("slow_query_log", c.slow_query_log, Length{0, 4096});
  r.boolean("log_parameters", c.log_parameters);
  r.integer("digest_top_n", c.digest_top_n, 0, 100'000);
  r.enumeration("log_level", c.log_level, kLogLevels);
}

void read_session(TableReader& r, SessionConfig& c) {
  r.integer("max_prepared_statements", c.max_prepared_statements, 1, 100'000);
  r.enumeration("pinning", c.pinning, kPinnings);
}

template <typename T, typename ReadFn>
void read_table(TableReader& root, std::string_view key, T& out, ReadFn read) {
  if (const toml::table* t = root.table(key)) {
    TableReader r(*t, std::string(key), root.diagnostics());
    read(r, out);
    r.finish();
  }
}

template <typename T, typename ReadFn>
void read_array(TableReader& root, std::string_view key, std::vector<T>& out, ReadFn read) {
  const toml::array* array = root.array_of_tables(key);
  if (array == nullptr) return;
  for (size_t i = 0; i < array->size(); ++i) {
    TableReader r(*(*array)[i].as_table(), std::string(key) + "[" + std::to_string(i) + "]",
                  root.diagnostics());
    root.diagnostics().note_line(r.path(), r.line());
    read(r, out.emplace_back());
    r.finish();
  }
}

}  // namespace

void read_document(const toml::table& root, Config& config, Diagnostics& diag) {
  TableReader r(root, "", diag);
  read_table(r, "proxy", config.proxy, read_proxy);
  read_table(r, "tls", config.tls, read_tls);
  read_table(r, "pool", config.pool, read_pool);
  // [tls] (read above) gives every node its default server_tls and CA file; a node's own keys win.
  auto tls_defaults = [&config](ServerEndpoint& s) {
    s.server_tls = config.tls.server_tls;
    s.server_tls_ca_file = config.tls.server_tls_ca_file;
  };
  tls_defaults(config.primary);
  read_table(r, "primary", config.primary, [](TableReader& t, ServerEndpoint& s) { read_server(t, s, false); });
  read_array(r, "replicas", config.replicas, [&tls_defaults](TableReader& t, ServerEndpoint& s) {
    s.name.clear();  // validate() names it replica<N> unless given
    tls_defaults(s);
    read_server(t, s, true);
  });
  read_array(r, "databases", config.databases, read_database);
  read_array(r, "users", config.users, read_user);
  read_table(r, "routing", config.routing, read_routing);
  read_table(r, "cache", config.cache, read_cache);
  read_table(r, "observability", config.observability, read_observability);
  read_table(r, "session", config.session, read_session);
  r.finish();
}

}  // namespace pgs::conf::detail
