// Loading valid configs: the shipped example, every default, overrides, SHOW CONFIG rows, --check.
#include "conf/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

namespace pgs::conf {
namespace {

using namespace std::chrono_literals;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::shared_ptr<const Config> load_ok(std::string_view text) {
  LoadResult r = load_config_string(text);
  std::string all;
  for (const auto& e : r.errors) all += e.to_string() + "\n";
  EXPECT_TRUE(r.errors.empty()) << all;
  EXPECT_TRUE(r.config != nullptr);
  return r.config;
}

constexpr std::string_view kMinimal = R"(
[[databases]]
name = "app"
)";

TEST(ShippedConfig, LoadsWithoutErrors) {
  LoadResult r = load_config_file(PGS_SHIPPED_CONFIG);
  for (const auto& e : r.errors) ADD_FAILURE() << e.to_string();
  ASSERT_NE(r.config, nullptr);
  const Config& c = *r.config;
  EXPECT_EQ(c.source_path, PGS_SHIPPED_CONFIG);
  EXPECT_EQ(c.proxy.listen_host, "127.0.0.1");
  EXPECT_EQ(c.proxy.listen_port, 6432);
  EXPECT_EQ(c.primary.port, 15432);
  ASSERT_EQ(c.replicas.size(), 1u);
  EXPECT_EQ(c.replicas[0].name, "replica1");
  EXPECT_EQ(c.replicas[0].port, 15433);
  ASSERT_NE(c.find_database("flopods"), nullptr);
  EXPECT_EQ(c.find_database("flopods")->server_dbname, "flopods");
  const UserConfig* flopods = c.find_user("flopods");
  ASSERT_NE(flopods, nullptr);
  EXPECT_EQ(flopods->password, "flopods-dev");
  EXPECT_EQ(flopods->server_password, "flopods-dev");
  EXPECT_FALSE(flopods->admin);
  const UserConfig* admin = c.find_user("pgsidecar");
  ASSERT_NE(admin, nullptr);
  EXPECT_TRUE(admin->admin);
  EXPECT_EQ(admin->password, "pgsidecar-dev");
  EXPECT_EQ(c.proxy.auth_type, AuthType::scram_sha_256);
  EXPECT_EQ(c.pool.pool_size, 20);
  EXPECT_TRUE(c.cache.enabled);
  EXPECT_EQ(c.cache.redis_port, 16379);
  ASSERT_EQ(c.cache.classes.size(), 4u);
  const std::map<std::string, std::pair<Millis, std::vector<std::string>>> want{
      {"workspace", {5min, {"core.workspaces", "core.workspace_members"}}},
      {"user_profile", {15min, {"core.users"}}},
      {"flow_metadata", {1min, {"canvas.flows", "canvas.pods"}}},
      {"document_list", {30s, {"documents.documents"}}},
  };
  for (const CacheClass& cls : c.cache.classes) {
    auto it = want.find(cls.name);
    ASSERT_NE(it, want.end()) << cls.name;
    EXPECT_EQ(cls.ttl, it->second.first) << cls.name;
    EXPECT_EQ(cls.tables, it->second.second) << cls.name;
  }
  EXPECT_EQ(c.cache.class_for_table("canvas.pods")->name, "flow_metadata");
  EXPECT_EQ(c.cache.class_for_table("core.nothing"), nullptr);
  EXPECT_EQ(c.observability.metrics_host, "127.0.0.1");
  EXPECT_EQ(c.observability.metrics_port, 9930);
}

// The shipped file lists defaults except for the documented dev values: compare its rows with the
// rows of a minimal file, which holds only defaults.
TEST(ShippedConfig, DiffersFromDefaultsOnlyInDevValues) {
  LoadResult shipped = load_config_file(PGS_SHIPPED_CONFIG);
  ASSERT_NE(shipped.config, nullptr);
  auto minimal = load_ok(kMinimal);
  std::map<std::string, std::string> defaults;
  for (const auto& [k, v] : config_rows(*minimal)) defaults[k] = v;
  std::vector<std::string> differing;
  for (const auto& [k, v] : config_rows(*shipped.config)) {
    auto it = defaults.find(k);
    if (it != defaults.end() && it->second != v) differing.push_back(k);
  }
  const std::vector<std::string> dev_values{"proxy.auth_user",        "proxy.auth_password",
                                            "tls.client_tls",         "tls.cert_file",
                                            "tls.key_file",
                                            "primary.port",           "primary.server_tls",
                                            "primary.server_tls_ca_file", "databases[0].name",
                                            "databases[0].server_dbname", "routing.health_check_interval",
                                            "routing.health_check_idle_interval",
                                            "routing.read_your_writes",
                                            "routing.monitor_user",
                                            "routing.monitor_password",   "routing.monitor_dbname",
                                            "cache.enabled",              "cache.redis_port",
                                            "cache.invalidation_stream"};
  EXPECT_EQ(differing, dev_values);
}

// Every key SHOW CONFIG knows is documented in the shipped file (as "key =" or "# key =").
TEST(ShippedConfig, DocumentsEveryKey) {
  const std::string text = read_file(PGS_SHIPPED_CONFIG);
  auto minimal = load_ok(R"(
[[databases]]
name = "d"
pool_size = 3
[[users]]
name = "u"
password = "x"
[[replicas]]
[[cache.classes]]
name = "c"
ttl = "1s"
tables = ["a.b"]
)");
  for (const auto& [key, value] : config_rows(*minimal)) {
    std::string leaf = key.substr(key.rfind('.') + 1);
    bool found = text.find("\n" + leaf + " =") != std::string::npos ||
                 text.find("# " + leaf + " =") != std::string::npos;
    EXPECT_TRUE(found) << key << " is not documented in conf/pgsidecar.toml";
  }
}

TEST(Defaults, EveryField) {
  auto c = load_ok(kMinimal);
  const ProxyConfig& p = c->proxy;
  EXPECT_EQ(p.listen_host, "127.0.0.1");
  EXPECT_EQ(p.listen_port, 6432);
  EXPECT_EQ(p.workers, 1);
  EXPECT_EQ(p.auth_type, AuthType::scram_sha_256);
  EXPECT_EQ(p.max_client_conn, 10000);
  EXPECT_EQ(p.max_message_bytes, 1u << 30);
  EXPECT_EQ(p.max_parse_bytes, 1u << 20);
  EXPECT_EQ(p.buffer_release_bytes, 256u << 10);
  EXPECT_EQ(p.client_buffer_high_water, 1u << 20);
  EXPECT_EQ(p.shutdown_timeout, 30s);
  EXPECT_EQ(p.client_login_timeout, 15s);
  EXPECT_EQ(p.admin_database, "pgsidecar");
  const PoolConfig& pool = c->pool;
  EXPECT_EQ(pool.pool_mode, PoolMode::transaction);
  EXPECT_EQ(pool.pool_size, 20);
  EXPECT_EQ(pool.min_pool_size, 0);
  EXPECT_EQ(pool.query_wait_timeout, 120s);
  EXPECT_EQ(pool.server_idle_timeout, 10min);
  EXPECT_EQ(pool.server_lifetime, 1h);
  EXPECT_EQ(pool.server_connect_timeout, 5s);
  EXPECT_EQ(pool.server_check_delay, 1s);
  EXPECT_EQ(pool.idle_transaction_timeout, 0ms);
  EXPECT_EQ(c->primary.name, "primary");
  EXPECT_EQ(c->primary.host, "127.0.0.1");
  EXPECT_EQ(c->primary.port, 5432);
  EXPECT_TRUE(c->replicas.empty());
  EXPECT_TRUE(c->users.empty());
  ASSERT_EQ(c->databases.size(), 1u);
  EXPECT_EQ(c->databases[0].server_dbname, "app");
  EXPECT_FALSE(c->databases[0].pool_size.has_value());
  EXPECT_FALSE(c->databases[0].pool_mode.has_value());
  const RoutingConfig& r = c->routing;
  EXPECT_EQ(r.consistency, Consistency::session);
  EXPECT_EQ(r.max_replica_lag, 10s);
  EXPECT_EQ(r.max_replica_lag_bytes, 16u << 20);
  EXPECT_EQ(r.load_balance, LoadBalance::least_outstanding);
  EXPECT_TRUE(r.replica_safe_functions.empty());
  EXPECT_EQ(r.health_check_interval, 100ms);
  EXPECT_EQ(r.health_check_idle_interval, 0ms);
  EXPECT_EQ(r.max_parse_bytes, 64u << 10);
  EXPECT_EQ(r.classifier_cache_entries, 10000);
  const CacheConfig& k = c->cache;
  EXPECT_FALSE(k.enabled);
  EXPECT_EQ(k.redis_host, "127.0.0.1");
  EXPECT_EQ(k.redis_port, 6379);
  EXPECT_EQ(k.redis_timeout, 50ms);
  EXPECT_EQ(k.max_result_bytes, 1u << 20);
  EXPECT_EQ(k.key_prefix, "");
  EXPECT_FALSE(k.redis_cluster);
  EXPECT_TRUE(k.redis_nodes.empty());
  EXPECT_EQ(k.redis_cluster_partitions, 3);
  EXPECT_EQ(k.redis_cluster_wait_replicas, 1);
  EXPECT_TRUE(k.classes.empty());
  const ObservabilityConfig& o = c->observability;
  EXPECT_EQ(o.metrics_listen, "127.0.0.1:9930");
  EXPECT_EQ(o.metrics_host, "127.0.0.1");
  EXPECT_EQ(o.metrics_port, 9930);
  EXPECT_EQ(o.http_read_timeout, 5000ms);
  EXPECT_EQ(o.slow_query, 1000ms);
  EXPECT_EQ(o.slow_query_log, "");
  EXPECT_FALSE(o.log_parameters);
  EXPECT_EQ(o.digest_top_n, 500);
  EXPECT_EQ(o.log_level, LogLevel::info);
  EXPECT_EQ(c->session.max_prepared_statements, 1000);
  EXPECT_EQ(c->session.pinning, Pinning::pin);
}

TEST(Values, AllSyntaxesAccepted) {
  auto c = load_ok(R"(
[proxy]
listen_host = "0.0.0.0"
listen_port = 7000
workers = 4
auth_type = "md5"
max_message_bytes = 1048576
client_buffer_high_water = "256kB"
shutdown_timeout = 0
client_login_timeout = "1m30s"
[pool]
pool_mode = "session"
idle_transaction_timeout = "250ms"
[[replicas]]
host = "10.0.0.2"
[[replicas]]
name = "east"
weight = 3
[routing]
consistency = "eventual"
load_balance = "weighted"
replica_safe_functions = ["My_Func", "app.Safe"]
max_replica_lag = "0"
max_replica_lag_bytes = 0
[cache]
[[cache.classes]]
name = "c"
ttl = "1h"
tables = ["Core.Users"]
[observability]
metrics_listen = ""
http_read_timeout = "750ms"
slow_query_ms = "2s"
log_level = "debug"
[session]
pinning = "refuse"
[[databases]]
name = "app"
server_dbname = "app_prod"
)");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->proxy.listen_port, 7000);
  EXPECT_EQ(c->proxy.workers, 4);
  EXPECT_EQ(c->proxy.auth_type, AuthType::md5);
  EXPECT_EQ(c->proxy.max_message_bytes, 1048576u);
  EXPECT_EQ(c->proxy.client_buffer_high_water, 256u * 1024);
  EXPECT_EQ(c->proxy.shutdown_timeout, 0ms);
  EXPECT_EQ(c->proxy.client_login_timeout, 90s);
  EXPECT_EQ(c->pool.pool_mode, PoolMode::session);
  EXPECT_EQ(c->pool.idle_transaction_timeout, 250ms);
  ASSERT_EQ(c->replicas.size(), 2u);
  EXPECT_EQ(c->replicas[0].name, "replica1");
  EXPECT_EQ(c->replicas[0].port, 5432);
  EXPECT_EQ(c->replicas[1].name, "east");
  EXPECT_EQ(c->replicas[1].weight, 3);
  EXPECT_EQ(c->routing.consistency, Consistency::eventual);
  EXPECT_EQ(c->routing.load_balance, LoadBalance::weighted);
  EXPECT_EQ(c->routing.replica_safe_functions, (std::vector<std::string>{"my_func", "app.safe"}));
  EXPECT_EQ(c->routing.max_replica_lag_bytes, 0u);
  EXPECT_EQ(c->cache.classes[0].tables, std::vector<std::string>{"core.users"});
  EXPECT_EQ(c->observability.metrics_port, 0);
  EXPECT_EQ(c->observability.slow_query, 2s);
  EXPECT_EQ(c->observability.http_read_timeout, 750ms);
  EXPECT_EQ(c->observability.log_level, LogLevel::debug);
  EXPECT_EQ(c->session.pinning, Pinning::refuse);
  EXPECT_EQ(c->databases[0].server_dbname, "app_prod");
}

TEST(PoolFor, DatabaseThenUserOverrides) {
  auto c = load_ok(R"(
[pool]
pool_size = 10
pool_mode = "transaction"
min_pool_size = 2
[[databases]]
name = "plain"
[[databases]]
name = "big"
pool_size = 50
pool_mode = "session"
[[users]]
name = "alice"
password = "a"
[[users]]
name = "bob"
password = "b"
pool_size = 5
[[users]]
name = "carol"
password = "c"
pool_mode = "transaction"
)");
  ASSERT_NE(c, nullptr);
  const auto& plain = *c->find_database("plain");
  const auto& big = *c->find_database("big");
  const auto& alice = *c->find_user("alice");
  const auto& bob = *c->find_user("bob");
  const auto& carol = *c->find_user("carol");
  struct Case {
    const DatabaseConfig& db;
    const UserConfig& user;
    int size;
    PoolMode mode;
  };
  const Case cases[] = {
      {plain, alice, 10, PoolMode::transaction}, {big, alice, 50, PoolMode::session},
      {plain, bob, 5, PoolMode::transaction},    {big, bob, 5, PoolMode::session},
      {big, carol, 50, PoolMode::transaction},
  };
  for (const Case& k : cases) {
    PoolConfig p = c->pool_for(k.db, k.user);
    EXPECT_EQ(p.pool_size, k.size) << k.db.name << "/" << k.user.name;
    EXPECT_EQ(p.pool_mode, k.mode) << k.db.name << "/" << k.user.name;
    EXPECT_EQ(p.min_pool_size, 2);
    EXPECT_EQ(p.query_wait_timeout, c->pool.query_wait_timeout);
  }
  EXPECT_EQ(c->find_database("nope"), nullptr);
  EXPECT_EQ(c->find_user("nope"), nullptr);
}

TEST(Secrets, KindsAndServerPasswordDerivation) {
  EXPECT_EQ(secret_kind("hunter2"), SecretKind::cleartext);
  EXPECT_EQ(secret_kind("md5" + std::string(32, 'a')), SecretKind::md5_hash);
  EXPECT_EQ(secret_kind("md5" + std::string(31, 'a')), SecretKind::cleartext);
  EXPECT_EQ(secret_kind("md5" + std::string(32, 'G')), SecretKind::cleartext);
  EXPECT_EQ(secret_kind("SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy"), SecretKind::scram_verifier);
  auto c = load_ok(R"(
[[databases]]
name = "app"
[[users]]
name = "clear"
password = "pw"
[[users]]
name = "verifier"
password = "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy"
server_password = "real"
[[users]]
name = "admin_only"
password = "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy"
admin = true
)");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->find_user("clear")->server_password, "pw");
  EXPECT_EQ(c->find_user("verifier")->server_password, "real");
  EXPECT_EQ(c->find_user("admin_only")->server_password, "");
}

// Issue 13 item 3 (part): secrets from a file or an environment variable instead of the config file.
TEST(Secrets, FromAFileOrAnEnvironmentVariable) {
  std::string path = ::testing::TempDir() + "pgs_secret_test.txt";
  {
    std::ofstream f(path, std::ios::trunc);
    f << "from-file\n";
  }
  ::setenv("PGS_TEST_SECRET", "from-env", 1);
  auto c = load_ok(R"(
[[databases]]
name = "app"
[[users]]
name = "u1"
password = "pw"
server_password_file = ")" + path + R"("
[[users]]
name = "u2"
password_env = "PGS_TEST_SECRET"
[routing]
monitor_user = "u1"
monitor_password_env = "PGS_TEST_SECRET"
)");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->find_user("u1")->server_password, "from-file") << "one trailing newline dropped";
  EXPECT_EQ(c->find_user("u2")->password, "from-env");
  EXPECT_EQ(c->find_user("u2")->server_password, "from-env") << "a cleartext password serves both";
  EXPECT_EQ(c->routing.monitor_password, "from-env");
}

TEST(Secrets, ErrorsNameTheKey) {
  ::unsetenv("PGS_TEST_SECRET_UNSET");
  struct Case {
    std::string users;
    std::string key_and_message;
  } cases[] = {
      {"password = \"pw\"\nserver_password = \"a\"\nserver_password_env = \"HOME\"\n", "set only one of"},
      {"password = \"pw\"\nserver_password_file = \"/nonexistent/pgs-secret\"\n", "cannot read /nonexistent/pgs-secret"},
      {"password = \"pw\"\nserver_password_env = \"PGS_TEST_SECRET_UNSET\"\n", "PGS_TEST_SECRET_UNSET is not set"},
  };
  for (const auto& c : cases) {
    auto r = load_config_string("[[databases]]\nname = \"app\"\n[[users]]\nname = \"u\"\n" + c.users);
    ASSERT_FALSE(r.errors.empty()) << c.users;
    EXPECT_NE(r.errors[0].message.find(c.key_and_message), std::string::npos) << r.errors[0].to_string();
    EXPECT_NE(r.errors[0].key.find("server_password"), std::string::npos) << r.errors[0].to_string();
  }
}

TEST(TrustAuth, UsersWithoutPasswords) {
  auto c = load_ok(R"(
[proxy]
auth_type = "trust"
[[databases]]
name = "app"
[[users]]
name = "anyone"
)");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->find_user("anyone")->password, "");
}

TEST(ConfigRows, MasksPasswordsAndListsKeysInOrder) {
  LoadResult r = load_config_file(PGS_SHIPPED_CONFIG);
  ASSERT_NE(r.config, nullptr);
  auto rows = config_rows(*r.config);
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.front().first, "proxy.listen_host");
  std::map<std::string, std::string> m(rows.begin(), rows.end());
  EXPECT_EQ(m.at("users[0].password"), "********");
  EXPECT_EQ(m.at("users[0].server_password"), "********");
  EXPECT_EQ(m.at("pool.query_wait_timeout"), "2m");
  EXPECT_EQ(m.at("proxy.max_message_bytes"), "1GB");
  EXPECT_EQ(m.at("cache.classes[0].tables"), "core.workspaces,core.workspace_members");
  EXPECT_EQ(m.at("databases[0].pool_size"), "");
  const std::string text = describe(*r.config);
  EXPECT_EQ(text.find("flopods-dev"), std::string::npos);
  EXPECT_EQ(text.find("pgsidecar-dev"), std::string::npos);
  EXPECT_NE(text.find("pool.pool_size = 20\n"), std::string::npos);
}

TEST(Reload, NonReloadableChangesAreNamed) {
  auto a = load_ok(kMinimal);
  auto b = load_ok(R"(
[proxy]
listen_port = 7000
[pool]
pool_size = 99
[cache]
redis_port = 7001
[[databases]]
name = "app"
)");
  EXPECT_EQ(non_reloadable_changes(*a, *b), (std::vector<std::string>{"proxy.listen_port", "cache.redis_port"}));
  EXPECT_TRUE(non_reloadable_changes(*a, *a).empty());
}

TEST(CheckConfigFile, PrintsOkForTheShippedFile) {
  std::ostringstream out;
  EXPECT_TRUE(check_config_file(PGS_SHIPPED_CONFIG, out));
  EXPECT_EQ(out.str(), "OK\n");
}

TEST(CheckConfigFile, PrintsEveryErrorAsFileLineKeyMessage) {
  const std::string path = ::testing::TempDir() + "/pgs_conf_check_test.toml";
  {
    std::ofstream f(path);
    f << "[pool]\npool_size = 0\nbogus = 1\n";
  }
  std::ostringstream out;
  EXPECT_FALSE(check_config_file(path, out));
  EXPECT_EQ(out.str(), path + ":2: pool.pool_size: must be between 1 and 10000, got 0\n" +
                           path + ":3: pool.bogus: unknown key\n" +
                           path + ": databases: at least one [[databases]] entry is required\n");
  std::ostringstream missing;
  EXPECT_FALSE(check_config_file(path + ".does-not-exist", missing));
  EXPECT_NE(missing.str().find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace pgs::conf
