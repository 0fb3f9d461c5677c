// The configuration as plain data. Every field: meaning, unit, default, reloadable (SIGHUP) or not.
// conf/pgsidecar.toml documents every key; load_config() fills these structs.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <iosfwd>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgs::conf {

using Millis = std::chrono::milliseconds;

enum class PoolMode { transaction, session };
enum class ClientTls { disable, allow, require };
// TLS from the proxy to a server, as libpq's sslmode (see ServerEndpoint::server_tls).
enum class ServerTls { disable, prefer, require, verify_ca, verify_full };
enum class AuthType { scram_sha_256, md5, trust };
// TLS from the proxy to Redis ([cache] redis_tls): as ServerTls, without "prefer".
enum class RedisTls { disable, require, verify_ca, verify_full };

// [proxy] — the process.
struct ProxyConfig {
  std::string listen_host = "127.0.0.1";  // client listener host. Not reloadable.
  uint16_t listen_port = 6432;            // client listener port. Not reloadable.
  int workers = 1;                        // worker threads (libuv loops); 0 = number of cores. Not reloadable.
  AuthType auth_type = AuthType::scram_sha_256;  // how clients authenticate. Reloadable.
  // Client connections, counted from accept (before the startup packet); beyond this a new connection
  // gets FATAL 53300 and is closed. Reloadable.
  int max_client_conn = 10000;
  // Largest client message accepted (bytes); a larger one gets FATAL 54000. Postgres's own limit is 1 GB.
  // Reloadable.
  uint32_t max_message_bytes = 1u << 30;
  // A client message up to this size is buffered whole and inspected (routing, cache, prepared
  // statements, session tracking); a larger one is streamed to the server (header, then the body in
  // chunks) and routed conservatively: primary, no cache, session state probed. Bytes. Reloadable.
  uint32_t max_parse_bytes = 1u << 20;
  uint32_t client_buffer_high_water = 1u << 20;  // stop reading the server above this many bytes queued to
                                                  // the client (and the client above this many queued to the
                                                  // server or to itself); resume below half of it. Reloadable.
  // A connection's read buffer or outbox that grew beyond this (one large message) is released once it
  // drains. Bytes. Reloadable (connections opened after the reload).
  uint32_t buffer_release_bytes = 256u << 10;
  // Sockets' sends, and plaintext sockets' receives, through one io_uring per worker, submitted once per
  // event-loop turn (true), or one send(2) / read(2) each (false). A kernel that refuses io_uring (a
  // seccomp profile) gets send(2) and read(2), logged at start. Not reloadable.
  bool io_uring = true;
  Millis shutdown_timeout{30000};         // SIGTERM: time given to running transactions. Reloadable.
  Millis client_login_timeout{15000};     // a client must finish startup + auth within this. Reloadable.
  std::string admin_database = "pgsidecar";  // name of the admin console database. Not reloadable.
  // auth_query (as PgBouncer's): a client whose user is not in [[users]] (or has no password there) is
  // looked up on the server: `auth_user` runs `auth_query` with the user name as $1 and gets (name,
  // SCRAM verifier); the login then runs against that verifier and the proxy logs in to servers with the
  // client's own SCRAM keys (pass-through). All reloadable; a change of user, password, query or dbname
  // empties the cache.
  std::string auth_user;  // "" = off
  std::string auth_password;  // auth_user's password (_file / _env too)
  std::string auth_query = "SELECT usename, passwd FROM pgsidecar.user_lookup($1)";
  std::string auth_dbname;  // database the lookup runs in; "" = the one the client asked for
  Millis auth_query_ttl{60000};           // a found verifier is used this long before it is looked up again
  Millis auth_query_negative_ttl{5000};   // an unknown user (or no usable verifier) is remembered this long
  Millis auth_query_timeout{5000};        // connect + query deadline of one lookup
  int auth_query_cache_entries = 10000;   // cached answers per worker (least recently used dropped)
  int auth_query_max_pending = 100;       // lookups queued or running per worker; beyond: FATAL 53300
  int auth_query_connections = 2;         // lookups running at once per worker (each on its own connection)
  bool auth_query_enabled() const { return !auth_user.empty(); }
};

// Pool settings; [pool] holds the defaults, a [[databases]] or [[users]] entry may override some.
struct PoolConfig {
  PoolMode pool_mode = PoolMode::transaction;  // Reloadable (new server assignments).
  int pool_size = 20;             // max server connections per (database, user), whole process. Reloadable.
  int min_pool_size = 0;          // servers kept open even when idle. Reloadable.
  Millis query_wait_timeout{120000};     // max time a client waits for a server; then 57014 error. Reloadable.
  Millis server_idle_timeout{600000};    // close servers idle longer than this (0 = never). Reloadable.
  Millis server_lifetime{3600000};       // close servers older than this when released (0 = never). Reloadable.
  Millis server_connect_timeout{5000};   // connect + login to a server. Reloadable.
  Millis server_check_delay{1000};       // peek at a server idle this long before handing it out (0 = always). Reloadable.
  Millis idle_transaction_timeout{0};    // close a client idle inside a transaction this long (0 = never). Reloadable.
};

// [primary] and [[replicas]] — Postgres servers.
struct ServerEndpoint {
  std::string name;   // label for metrics and SHOW (default "primary" / "replica<N>")
  // An IP address or a DNS name (checked at load: validate.cc valid_host). A name is resolved for each
  // new server connection (proxy/net/resolver.h: kept 5 s per worker), its addresses tried in order.
  std::string host = "127.0.0.1";
  uint16_t port = 5432;
  int weight = 1;     // replicas only: load-balancing weight
  // TLS to this node, as libpq's sslmode: "disable" never asks; "prefer" asks (SSLRequest) and carries on
  // in plaintext if the server answers N or the handshake fails (once, on a new connection); "require" refuses a server without TLS (and checks the chain
  // when a CA file is set, as libpq does); "verify-ca" checks the certificate chain against
  // server_tls_ca_file; "verify-full" also checks that the certificate names `host` (a name or an IP).
  // Default: [tls] server_tls (whose default is "disable"). Reloadable (new server connections; the
  // proxy's own libpq connections - monitor, catalog, stream - take it at restart).
  ServerTls server_tls = ServerTls::disable;
  // PEM file of the CA certificates the server's chain must lead to; required for verify-ca and
  // verify-full. A relative path is resolved against the config file's directory (the loader makes it
  // absolute). Default: [tls] server_tls_ca_file. Read at start and at every reload.
  std::string server_tls_ca_file;
  // Whether this node may ask for the password in cleartext (AuthenticationCleartextPassword). Default
  // false: such a login fails (a server, or whoever sits between, that asks for the cleartext password
  // gets nothing). Reloadable.
  bool server_allow_cleartext = false;
};

// [[databases]] — a database clients may connect to. An unknown database gets 3D000.
struct DatabaseConfig {
  std::string name;                    // name clients use
  std::string server_dbname;           // name on the server (default: name; the loader fills it in)
  std::optional<int> pool_size;        // override of [pool].pool_size
  std::optional<PoolMode> pool_mode;   // override of [pool].pool_mode
};

// [[users]] — who may log in, and how the proxy logs in to servers for them.
struct UserConfig {
  std::string name;
  // Client authentication: a cleartext password, or a SCRAM verifier ("SCRAM-SHA-256$...") or an md5
  // hash ("md5..."). At least one unless auth_type = "trust".
  std::string password;
  // Password the proxy uses to log in to servers as this user (default: `password` if cleartext). The
  // loader fills it in, so the proxy reads only this field; empty only for trust or admin-only users.
  std::string server_password;
  bool admin = false;                  // may use the admin console
  std::optional<int> pool_size;        // override
  std::optional<PoolMode> pool_mode;   // override
};

// [routing] — where statements go (router/). Everything here is reloadable.
enum class Consistency {
  session,   // a client reads its own writes: replicas serve it only once they replayed its last commit LSN
  eventual,  // any healthy replica within max_replica_lag serves reads
  primary,   // everything goes to the primary (replicas unused)
};
enum class LoadBalance { least_outstanding, round_robin, weighted };

enum class ReadYourWrites { client, user };

struct RoutingConfig {
  Consistency consistency = Consistency::session;
  Millis max_replica_lag{10000};           // replicas further behind (replay delay) get no reads; 0 = no limit
  uint64_t max_replica_lag_bytes = 16u << 20;  // same, in WAL bytes behind the primary; 0 = no limit
  LoadBalance load_balance = LoadBalance::least_outstanding;
  // Functions (lowercase, optionally schema-qualified "schema.fn") that the classifier may treat as
  // read-only in addition to its built-in list of immutable/stable catalog functions.
  std::vector<std::string> replica_safe_functions;
  Millis health_check_interval{100};       // replica health + lag probe period (> 0)
  // The period while no read waits for replica positions (a read sent to the primary by its LSN floor,
  // or a replica that just failed, asks for health_check_interval again); 0 = health_check_interval.
  Millis health_check_idle_interval{0};
  uint32_t max_parse_bytes = 64u << 10;    // statements longer than this skip parsing and go to the primary
  int classifier_cache_entries = 10000;    // memoised classifications per worker; 0 = no memo
  // Read-your-writes floor scope (consistency = "session"): "client" — each client connection's own
  // writes (DESIGN.md; reads of other connections still use replicas); "user" — every connection of the
  // same (database, user) on this sidecar shares one floor, so an app's pool of connections reads its
  // own writes whichever connection it uses, at the price of fewer replica reads under write load.
  ReadYourWrites read_your_writes = ReadYourWrites::client;
  // Login of the replica health monitor (needs pg_monitor or superuser-free read of the recovery
  // functions). Empty user: the first [[users]] entry with a server password, on the first database.
  std::string monitor_user;
  std::string monitor_password;
  std::string monitor_dbname;
};

// [[cache.classes]] — a TTL class: results that read only tables of one class are cached for `ttl`.
struct CacheClass {
  std::string name;                 // label for metrics ("workspace")
  Millis ttl{0};                    // > 0
  std::vector<std::string> tables;  // schema-qualified, lowercase: "core.workspaces"; each table in one class
};

// [cache] — result cache in Redis (cache/). Reloadable except redis_host/redis_port/redis_user/redis_password
// and redis_tls*.
struct CacheConfig {
  bool enabled = false;
  std::string redis_host = "127.0.0.1";  // Not reloadable.
  uint16_t redis_port = 6379;            // Not reloadable.
  std::string redis_user;                // ACL user for AUTH ("" = the default user). Not reloadable.
  std::string redis_password;            // AUTH after connect when set (_file / _env too). Not reloadable.
  Millis redis_timeout{50};              // per Redis command; past it the lookup is a miss (> 0)
  // TLS to Redis (ElastiCache in-transit encryption): "disable"; "require" (encrypted, the server not
  // authenticated unless redis_tls_ca_file is set); "verify-ca" (the chain must lead to
  // redis_tls_ca_file, or to the system's trusted CAs when it is unset); "verify-full" (and the
  // certificate must name redis_tls_server_name, else redis_host). Nothing is sent before the handshake
  // succeeded; a failure is a miss, logged and counted. Not reloadable.
  RedisTls redis_tls = RedisTls::disable;
  // PEM file of the CA certificates; relative to the config file's directory. Not reloadable.
  std::string redis_tls_ca_file;
  // The name sent as SNI and checked by verify-full ("" = redis_host; set it when redis_host is an IP
  // address and the certificate names a host). Not reloadable.
  std::string redis_tls_server_name;
  // Redis Cluster (cache/README.md "Redis Cluster"): redis_host/redis_port are then unused. Not reloadable.
  bool redis_cluster = false;
  std::vector<std::string> redis_nodes;         // seed nodes "ip:port" (IP literals), at least one
  int redis_cluster_partitions = 3;             // key-layout partitions; the same on every sidecar (1..1024)
  int redis_cluster_wait_replicas = 1;          // WAIT after each partition's bump (0 = off; 0..16)
  uint32_t max_result_bytes = 1u << 20;  // results larger than this (backend bytes) are not stored
  std::string key_prefix;                // prefix of every Redis key and channel ("" → "pgsc:v1:...")
  // Invalidation from the primary's logical decoding (issue 12): one sidecar at a time (a Redis lease)
  // reads a test_decoding slot per served database and bumps every table a committed transaction wrote,
  // whoever wrote it. All of these: restart.
  bool invalidation_stream = false;
  std::string stream_slot = "pgsidecar_cache";  // slot name prefix; one slot per database: <prefix>_<db>
  std::string stream_user;      // a role with REPLICATION; "" = [routing] monitor_user / monitor_password
  std::string stream_password;  // (_file / _env too)
  // No proof the stream is live for this long (its leader's heartbeat in Redis): every lookup is a miss.
  // Also the leader's lease: another sidecar takes over within about this long after it dies.
  Millis stream_max_delay{1000};
  // The leader is this far behind the primary's WAL: every lookup is a miss until it caught up.
  uint64_t stream_max_lag_bytes = 1ull << 30;
  std::vector<CacheClass> classes;
  // The class that lists `table` ("schema.name"), or null.
  const CacheClass* class_for_table(std::string_view table) const;
};

// [observability] — metrics, logs, digests. Reloadable except metrics_listen and http_read_timeout.
enum class LogLevel { debug, info, warning, error };

struct ObservabilityConfig {
  std::string metrics_listen = "127.0.0.1:9930";  // "host:port" or "[v6]:port"; "" = no HTTP. Not reloadable.
  std::string metrics_host = "127.0.0.1";         // derived from metrics_listen by the loader
  uint16_t metrics_port = 9930;                   // derived from metrics_listen; 0 when disabled
  // An HTTP connection must deliver each whole request within this long of connecting or of its
  // previous reply, else it is closed (bounds keep-alive idle time too). Not reloadable.
  Millis http_read_timeout{5000};
  Millis slow_query{1000};          // key slow_query_ms: log statements slower than this; 0 = off
  std::string slow_query_log;       // "" = stderr, else a file path (appended to)
  bool log_parameters = false;      // include bind parameter values in the slow log
  int digest_top_n = 500;           // statement digests kept for /digests; 0 = off
  LogLevel log_level = LogLevel::info;
};

// [session] — session state under transaction pooling. Reloadable.
enum class Pinning {
  pin,     // LISTEN, session advisory locks, temp tables, WITH HOLD cursors pin the client to its server
  refuse,  // such statements get an error (0A000) instead
};

struct SessionConfig {
  int max_prepared_statements = 1000;  // named prepared statements kept per server connection (LRU), >= 1
  Pinning pinning = Pinning::pin;
};

// [tls] — TLS to clients (proxy/net/tls.h). Reloadable: SIGHUP reads the files again (new sessions use them).
struct TlsConfig {
  // "disable": SSLRequest answered N (plaintext only). "allow": TLS when the client asks (sslmode=prefer,
  // require, verify-*). "require": a client that does not ask gets FATAL 28000 (CancelRequest excepted).
  ClientTls client_tls = ClientTls::disable;
  std::string cert_file;  // PEM certificate chain (server certificate first); required unless disable
  std::string key_file;   // PEM private key of that certificate
  // Defaults of [primary] and every [[replicas]] for server_tls and server_tls_ca_file (ServerEndpoint).
  ServerTls server_tls = ServerTls::disable;
  std::string server_tls_ca_file;
};

struct Config {
  ProxyConfig proxy;
  TlsConfig tls;
  PoolConfig pool;
  ServerEndpoint primary{"primary", "127.0.0.1", 5432, 1};
  std::vector<ServerEndpoint> replicas;
  std::vector<DatabaseConfig> databases;
  std::vector<UserConfig> users;
  RoutingConfig routing;
  CacheConfig cache;
  ObservabilityConfig observability;
  SessionConfig session;
  std::string source_path;  // file it came from

  const DatabaseConfig* find_database(std::string_view name) const;
  const UserConfig* find_user(std::string_view name) const;
  // The effective pool settings for (database, user): [pool] with the database's then the user's overrides.
  PoolConfig pool_for(const DatabaseConfig& db, const UserConfig& user) const;
};

// One problem with a config file: "line 12: pool.pool_size: must be >= 1".
struct ConfigError {
  std::string key;   // dotted key path, e.g. "pool.pool_size" or "users[1].name" (0-based index)
  int line = 0;      // 1-based line in the file, 0 if unknown
  std::string message;
  int column = 0;    // 1-based column, set for TOML syntax errors only (key is then empty)
  // "line 12: pool.pool_size: must be >= 1"; "line 3, column 7: <syntax message>".
  std::string to_string() const;
};

struct LoadResult {
  std::shared_ptr<const Config> config;  // null when errors is not empty
  std::vector<ConfigError> errors;       // all errors, not just the first
};

LoadResult load_config_file(const std::string& path);
LoadResult load_config_string(std::string_view toml, std::string source_name = "<string>");

// `pgsidecar --check FILE`: prints "OK" or every error, one per line, as "file:line: key: message".
// Returns true when the file is valid.
bool check_config_file(const std::string& path, std::ostream& out);

// SHOW CONFIG: one (key, value) row per setting, in file order, passwords masked as "********".
std::vector<std::pair<std::string, std::string>> config_rows(const Config& config);
// The same rows as text, "key = value" one per line.
std::string describe(const Config& config);

// SIGHUP: the keys (as in config_rows) whose value differs between `running` and `next` but only take
// effect after a restart. The proxy logs them and keeps running with the old values of those keys.
std::vector<std::string> non_reloadable_changes(const Config& running, const Config& next);

// Names as written in the file ("transaction", "scram-sha-256", ...).
std::string_view to_string(PoolMode mode);
std::string_view to_string(ClientTls mode);
std::string_view to_string(ServerTls mode);
std::string_view to_string(RedisTls mode);
// The mode a name spells ("disable", "require", "verify-ca", "verify-full"), as [cache] redis_tls reads it;
// nullopt for any other text. For programs that take the same setting elsewhere (the app's --redis-tls).
std::optional<RedisTls> redis_tls_from_string(std::string_view name);
// A secret kept in a file (the *_file keys; the app's --redis-password-file): the file's contents less
// one trailing newline ("\n" or "\r\n"), reading at most max_bytes + 2 bytes (the caller checks the
// length); nullopt when the file cannot be read.
std::optional<std::string> read_secret_file(const std::string& path, size_t max_bytes);
// The libpq keywords of a node's TLS for the proxy's own libpq connections (health monitor, catalog,
// invalidation stream): sslmode (the same names as server_tls) and sslrootcert (its CA file, "" when
// unset: libpq ignores an empty value).
struct LibpqTls {
  std::string sslmode;
  std::string sslrootcert;
};
LibpqTls libpq_tls(const ServerEndpoint& node);
std::string_view to_string(AuthType type);
std::string_view to_string(Consistency consistency);
std::string_view to_string(LoadBalance balance);
std::string_view to_string(LogLevel level);
std::string_view to_string(Pinning pinning);

// A stored client password: cleartext, a SCRAM-SHA-256 verifier, or an md5 hash ("md5" + 32 hex),
// classified as Postgres does.
enum class SecretKind { cleartext, scram_verifier, md5_hash };
SecretKind secret_kind(std::string_view password);

}  // namespace pgs::conf
