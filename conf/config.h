// The configuration as plain data. Every field: meaning, unit, default, reloadable (SIGHUP) or not.
// conf/pgsidecar.toml documents every key; load_config() fills these structs.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pgs::conf {

using Millis = std::chrono::milliseconds;

enum class PoolMode { transaction, session };
enum class AuthType { scram_sha_256, md5, trust };

// [proxy] — the process.
struct ProxyConfig {
  std::string listen_host = "127.0.0.1";  // client listener host. Not reloadable.
  uint16_t listen_port = 6432;            // client listener port. Not reloadable.
  int workers = 0;                        // worker threads (libuv loops); 0 = number of cores. Not reloadable.
  AuthType auth_type = AuthType::scram_sha_256;  // how clients authenticate. Reloadable.
  int max_client_conn = 10000;            // clients beyond this get 53300. Reloadable.
  uint32_t max_message_bytes = 64u << 20; // largest client message accepted (bytes). Reloadable.
  uint32_t client_buffer_high_water = 1u << 20;  // stop reading the server above this many bytes queued to
                                                  // the client; resume below half of it. Reloadable.
  Millis shutdown_timeout{30000};         // SIGTERM: time given to running transactions. Reloadable.
  Millis client_login_timeout{15000};     // a client must finish startup + auth within this. Reloadable.
  std::string admin_database = "pgsidecar";  // name of the admin console database. Not reloadable.
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
  Millis idle_transaction_timeout{0};    // close a client idle inside a transaction this long (0 = never). Reloadable.
};

// [primary] and [[replicas]] — Postgres servers.
struct ServerEndpoint {
  std::string name;   // label for metrics and SHOW (default "primary" / "replica<N>")
  std::string host = "127.0.0.1";
  uint16_t port = 5432;
  int weight = 1;     // replicas only: load-balancing weight
};

// [[databases]] — a database clients may connect to. An unknown database gets 3D000.
struct DatabaseConfig {
  std::string name;                    // name clients use
  std::string server_dbname;           // name on the server (default: name)
  std::optional<int> pool_size;        // override of [pool].pool_size
  std::optional<PoolMode> pool_mode;   // override of [pool].pool_mode
};

// [[users]] — who may log in, and how the proxy logs in to servers for them.
struct UserConfig {
  std::string name;
  // Client authentication: a cleartext password, or a SCRAM verifier ("SCRAM-SHA-256$...") or an md5
  // hash ("md5..."). At least one unless auth_type = "trust".
  std::string password;
  // Password the proxy uses to log in to servers as this user (default: `password` if cleartext).
  std::string server_password;
  bool admin = false;                  // may use the admin console
  std::optional<int> pool_size;        // override
  std::optional<PoolMode> pool_mode;   // override
};

struct Config {
  ProxyConfig proxy;
  PoolConfig pool;
  ServerEndpoint primary{"primary", "127.0.0.1", 5432, 1};
  std::vector<ServerEndpoint> replicas;
  std::vector<DatabaseConfig> databases;
  std::vector<UserConfig> users;
  std::string source_path;  // file it came from

  const DatabaseConfig* find_database(std::string_view name) const;
  const UserConfig* find_user(std::string_view name) const;
  // The effective pool settings for (database, user): [pool] with the database's then the user's overrides.
  PoolConfig pool_for(const DatabaseConfig& db, const UserConfig& user) const;
};

// One problem with a config file: "line 12: pool.pool_size: must be >= 1".
struct ConfigError {
  std::string key;   // dotted key path, e.g. "pool.pool_size" or "users[1].name"
  int line = 0;      // 1-based line in the file, 0 if unknown
  std::string message;
  std::string to_string() const;
};

struct LoadResult {
  std::shared_ptr<const Config> config;  // null when errors is not empty
  std::vector<ConfigError> errors;       // all errors, not just the first
};

LoadResult load_config_file(const std::string& path);
LoadResult load_config_string(std::string_view toml, std::string source_name = "<string>");

}  // namespace pgs::conf
