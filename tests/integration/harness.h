// Process-level integration harness: dev services, the real pgsidecar binary with a generated
// config, libpq helpers, waits with deadlines. Test helpers throw std::runtime_error on failure
// (GoogleTest reports an escaped exception as a failure); they never sleep without a condition.
//
// Environment:
//   PGS_IT_TARGET=direct   run against the primary directly (no proxy process); tests that need the
//                          proxy process call PGS_IT_REQUIRE_PROXY() and are skipped.
//   PGSIDECAR_BIN=path     proxy binary (default: the CMake target's file, then build/proxy/pgsidecar)
//   PGS_IT_KEEP=1          keep each proxy's temp dir (config + stderr log) after the test
//   PGS_IT_SERVICES_WAIT=s how long to wait for the dev services (default 120 s)
#pragma once

#include <libpq-fe.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <csignal>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/process.h"

namespace pgs::it {

// ---- dev services (./dev services) ----
inline constexpr const char* kHost = "127.0.0.1";
inline constexpr uint16_t kPrimaryPort = 15432;
inline constexpr uint16_t kReplicaPort = 15433;
inline constexpr uint16_t kRedisPort = 16379;
inline constexpr const char* kDatabase = "flopods";
inline constexpr const char* kUser = "flopods";
inline constexpr const char* kPassword = "flopods-dev";
inline constexpr const char* kSuperUser = "postgres";
inline constexpr const char* kSuperPassword = "postgres-dev";
inline constexpr const char* kAdminUser = "pgsidecar";
inline constexpr const char* kAdminPassword = "pgsidecar-dev";

enum class Target { proxy, direct };
Target target();  // from PGS_IT_TARGET
inline bool is_direct() { return target() == Target::direct; }

// Skips the current test when there is no proxy process to test (direct mode).
#define PGS_IT_REQUIRE_PROXY()                                                   \
  do {                                                                           \
    if (::pgs::it::is_direct()) GTEST_SKIP() << "needs the pgsidecar process"; \
  } while (0)

// Polls `pred` every `interval` until it returns true (-> true) or `deadline` passes (-> false).
bool wait_until(const std::function<bool()>& pred, Millis deadline, Millis interval = Millis(20));
// Waits (deadline) until the superuser sees an active backend, on the node at `port`, whose query
// contains `needle` (a marker comment): a query is running, so a cancel has something to cancel.
bool wait_query_running(const std::string& needle, Millis deadline, uint16_t port = kPrimaryPort);

// Waits (once per process, deadline PGS_IT_SERVICES_WAIT) until the primary accepts the superuser;
// throws with a clear message otherwise.
void require_dev_services();

// A port that was free a moment ago (bind 127.0.0.1:0, read it back, close).
uint16_t free_port();

// Established TCP connections of process `pid` to 127.0.0.1:`remote_port` (IPv4).
int tcp_connections(pid_t pid, uint16_t remote_port);
// Local ports of those connections (to match pg_stat_activity.client_port).
std::vector<uint16_t> tcp_local_ports(pid_t pid, uint16_t remote_port);

// Raises this process's RLIMIT_NOFILE soft limit to min(want, hard).
void raise_nofile_limit(rlim_t want);

// ---- libpq ----
// key=value conninfo; values are quoted. sslmode=disable and connect_timeout=10 unless given.
struct ConnSpec {
  std::string host = kHost;
  uint16_t port = kPrimaryPort;
  std::string dbname = kDatabase;
  std::string user = kUser;
  std::optional<std::string> password = std::string(kPassword);
  std::map<std::string, std::string> extra;  // application_name, options, sslmode ...
  std::string str() const;
};

struct PGresultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResultPtr = std::unique_ptr<PGresult, PGresultDeleter>;

// One result: status, error fields, values.
class PgResult {
 public:
  explicit PgResult(PGresult* r) : r_(r) {}
  bool ok() const;  // COMMAND_OK or TUPLES_OK (or COPY_* states)
  ExecStatusType status() const { return PQresultStatus(r_.get()); }
  std::string sqlstate() const;  // "" when none
  std::string error() const;
  int rows() const { return PQntuples(r_.get()); }
  std::string value(int row, int col) const;
  bool is_null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  PGresult* get() const { return r_.get(); }

 private:
  PgResultPtr r_;
};

// A libpq connection. Construction connects (blocking); check ok().
class Pg {
 public:
  explicit Pg(const std::string& conninfo);
  explicit Pg(const ConnSpec& spec) : Pg(spec.str()) {}
  bool ok() const { return conn_ && PQstatus(conn_.get()) == CONNECTION_OK; }
  std::string error() const { return conn_ ? PQerrorMessage(conn_.get()) : "no connection"; }
  PGconn* get() const { return conn_.get(); }
  PgResult exec(const std::string& sql);
  PgResult exec_params(const std::string& sql, const std::vector<std::string>& params);
  // Every result of one query (PQsendQuery + PQgetResult until NULL). Unlike exec(), which keeps
  // only the last result, this also shows a server's FATAL ErrorResponse that preceded a close.
  std::vector<PgResult> exec_all(const std::string& sql);
  // exec() with a deadline (non-blocking libpq + poll): nullopt when no complete answer arrived
  // in time; the connection is then closed (its state is unknown).
  std::optional<PgResult> exec_within(const std::string& sql, Millis deadline);
  // First column of the first row; throws (with SQLSTATE and message) on error or no rows.
  std::string scalar(const std::string& sql);
  // Throws unless the command succeeds.
  void must(const std::string& sql);
  void close() { conn_.reset(); }

 private:
  struct Deleter {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  std::unique_ptr<PGconn, Deleter> conn_;
};

// Superuser on the primary (to inspect pg_stat_activity / pg_locks, create databases).
Pg superuser(const std::string& dbname = "postgres");

// ---- the proxy process ----
struct UserSpec {
  std::string name;
  std::string password;
  std::string server_password;  // "" = omitted (derived from password)
  bool admin = false;
};

// Parameters of a generated pgsidecar TOML config (conf/pgsidecar.toml documents the keys).
struct ProxyOptions {
  int pool_size = 10;
  std::string pool_mode = "transaction";
  std::string auth_type = "scram-sha-256";
  int workers = 2;
  int max_client_conn = 2000;
  std::string query_wait_timeout = "30s";
  std::string shutdown_timeout = "10s";
  std::string server_connect_timeout = "10s";  // generous: 2 shared cores, other builds running
  std::string client_login_timeout = "10s";
  std::string idle_transaction_timeout = "0";
  std::optional<uint64_t> max_message_bytes;
  std::vector<std::string> databases = {kDatabase};
  std::vector<UserSpec> users = {{kUser, kPassword, "", false},
                                 {kAdminUser, kAdminPassword, "", true}};
  bool with_replica = false;
  std::string extra_toml;  // appended verbatim (tables not covered above)
  std::string observability_toml;  // extra keys inside [observability] (slow_query_ms = ...)
  std::string pool_toml;           // extra keys inside [pool] (min_pool_size = ...)
  std::string proxy_toml;          // extra keys inside [proxy] (client_buffer_high_water = ...)
  std::string cache_toml;          // keys inside [cache]; "" = enabled = false ([[cache.classes]]: extra_toml)
  std::string tls_toml;            // keys inside [tls] (client_tls = ...); when set, readiness uses sslmode=prefer
  std::optional<uint16_t> primary_port;  // [primary] port (default: the dev primary)
};

std::string render_config(const ProxyOptions& o, uint16_t listen_port, uint16_t metrics_port);

// Path of the proxy binary: env PGSIDECAR_BIN, else the CMake-provided path, else
// <repo>/build/proxy/pgsidecar (the first that exists).
std::string proxy_binary();

// A running proxy (or, in direct mode, the primary's address and no process).
class Proxy {
 public:
  // Writes the config, spawns `pgsidecar --config FILE` with stderr captured to a file, and waits
  // (deadline) until it accepts a libpq connection as the first configured user. Throws with the
  // log tail on failure.
  static std::unique_ptr<Proxy> start(const ProxyOptions& options = {});
  ~Proxy();  // SIGTERM, SIGKILL after a deadline; removes the temp dir unless PGS_IT_KEEP

  bool direct() const { return direct_; }
  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }
  uint16_t metrics_port() const { return metrics_port_; }
  pid_t pid() const { return child_.pid(); }
  const std::string& dir() const { return dir_; }
  const std::string& config_path() const { return config_path_; }
  const std::string& log_path() const { return log_path_; }
  std::string log_tail(size_t max_bytes = 8000) const;

  ConnSpec spec(const std::string& user = kUser, const std::string& password = kPassword,
                const std::string& dbname = kDatabase) const;
  std::string conninfo(const std::string& user = kUser, const std::string& password = kPassword,
                       const std::string& dbname = kDatabase) const {
    return spec(user, password, dbname).str();
  }

  // Rewrites the config file (same ports) for a later sighup().
  void rewrite_config(const ProxyOptions& options);
  void sighup() { child_.signal(SIGHUP); }
  void sigterm() { child_.signal(SIGTERM); }
  bool alive() { return direct_ || child_.running(); }
  // Waits for the process to exit; its exit code (128 + signal if killed), nullopt on deadline.
  std::optional<int> wait_exit(Millis deadline);
  long rss_kb() const;  // VmRSS from /proc/<pid>/status; -1 when unknown
  // Established TCP connections from the proxy process to `server_port` (its server connections),
  // from /proc/<pid>/fd and /proc/net/tcp; -1 in direct mode.
  int server_connections(uint16_t server_port = kPrimaryPort) const;
  // The proxy's server connections to the primary that are in database `dbname` (its connections'
  // local ports matched against pg_stat_activity.client_port; the catalog reader's own connection, which
  // is no pool server, is not counted); -1 in direct mode.
  int server_backends(const std::string& dbname) const;

 private:
  Proxy() = default;
  void wait_ready(const ProxyOptions& options, Millis deadline);
  bool direct_ = false;
  std::string host_ = kHost;
  uint16_t port_ = kPrimaryPort;
  uint16_t metrics_port_ = 0;
  std::string dir_, config_path_, log_path_;
  Child child_;
};

// Base fixture: waits for dev services; prints the proxy's log tail when a test fails.
class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  Proxy& start_proxy(const ProxyOptions& options = {});
  std::unique_ptr<Proxy> proxy_;
};

// ---- external programs ----
// psql -X -q (no psqlrc) against `conninfo`, script on stdin; env PGSSLMODE=disable.
RunResult run_psql(const std::string& conninfo, const std::string& script,
                   const std::vector<std::string>& extra_args = {}, Millis timeout = Millis(30000));

// `pg_ctl restart -m fast` of the dev primary as the postgres OS user (ulimit raised).
RunResult restart_primary(Millis timeout = Millis(60000));

// Creates database `name` owned by flopods if missing (as superuser).
void ensure_database(const std::string& name);

}  // namespace pgs::it
