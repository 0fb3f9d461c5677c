// The proxy-process fixture of the integration suites: the real pgsidecar binary with a generated
// config (Proxy, ProxyOptions), the ProxyTest fixture, and the direct-mode switch. Everything generic
// (processes, waits, libpq, the raw wire client, /metrics, the dev ports and passwords) is
// tests/support (pgs_test_support); namespace pgs::it sees all of it.
// Test helpers throw std::runtime_error on failure (GoogleTest reports an escaped exception as a
// failure); they never sleep without a condition.
//
// Environment:
//   PGS_IT_TARGET=direct   run against the primary directly (no proxy process); tests that need the
//                          proxy process call PGS_IT_REQUIRE_PROXY() and are skipped.
//   PGSIDECAR_BIN=path     proxy binary (default: the CMake target's file, then build/proxy/pgsidecar)
//   PGS_IT_KEEP=1          keep each proxy's temp dir (config + stderr log) after the test
//   PGS_IT_SERVICES_WAIT=s how long to wait for the dev services (default 120 s)
#pragma once

#include <sys/types.h>

#include <csignal>

#include <memory>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/dev_env.h"
#include "tests/support/metrics.h"
#include "tests/support/net.h"
#include "tests/support/pg.h"
#include "tests/support/process.h"
#include "tests/support/raw_client.h"
#include "tests/support/wait.h"

namespace pgs::it {

using namespace ::pgs::test;  // the support library, unqualified in every integration suite

enum class Target { proxy, direct };
Target target();  // from PGS_IT_TARGET
inline bool is_direct() { return target() == Target::direct; }

// Skips the current test when there is no proxy process to test (direct mode).
#define PGS_IT_REQUIRE_PROXY()                                                   \
  do {                                                                           \
    if (::pgs::it::is_direct()) GTEST_SKIP() << "needs the pgsidecar process"; \
  } while (0)

// ---- the proxy process ----
struct UserSpec {
  std::string name;
  std::string password;
  std::string server_password;  // "" = omitted (derived from password)
  bool admin = false;
};

// A user whose [[users]] password is the SCRAM verifier of kFakePassword: readiness then only pings (no
// server login needed), for proxies whose servers cannot be logged in to (a fake server, a CA that does
// not verify); kFakePassword also serves as its server password.
inline constexpr const char* kFakeUser = "fakeuser";
inline constexpr const char* kFakePassword = "fake-pw";
inline constexpr const char* kFakeVerifier =
    "SCRAM-SHA-256$4096:cGdzaWRlY2FyLWZha2Utc2FsdA==$IUyALMwoT5Celtgw4RFkivGKePBkcXbpdBayPPX2Wtk=:"
    "OOVyZTYzwMtOmlj4AYOusu/duclJzDC0vb8bkw9mNpw=";

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
  std::string node_host = "127.0.0.1";   // [primary] and [[replicas]] host (a name: resolved by the proxy)
  // Keys inside [primary] and each [[replicas]] for TLS to the servers (server_tls = ...). nullopt: the
  // dev default, server_tls = "verify-full" with the dev CA (dev_ca_file()) when the nodes are the dev
  // ones and the CA exists, so the suite runs over TLS to the servers as `./dev up` does.
  std::optional<std::string> server_tls_toml;
  // The whole config file instead of the generated one, given the ports the proxy must use (a test of
  // the shipped conf/pgsidecar.toml). The other fields then only say how readiness logs in.
  std::function<std::string(uint16_t listen_port, uint16_t metrics_port)> config_text;
};

// The dev CA's copy that `./dev services` makes (<repo>/.dev/tls/ca.crt, or env PGS_DEV_CA); "" when
// there is none (an environment made before the dev servers had TLS).
std::string dev_ca_file();

std::string render_config(const ProxyOptions& o, uint16_t listen_port, uint16_t metrics_port);

// The [routing] keys of the health monitor's dev login (monitor_user, monitor_password,
// monitor_dbname), one "key = value" line each.
std::string monitor_toml();

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

// The proxy's /metrics page (body); "" in direct mode or when it cannot be read. (By port:
// pgs::test::scrape_metrics, also visible here.)
std::string scrape_metrics(const Proxy& p);
using ::pgs::test::scrape_metrics;

// `pg_ctl restart -m fast` of the dev primary as the postgres OS user (ulimit raised).
RunResult restart_primary(Millis timeout = Millis(60000));

}  // namespace pgs::it
