// Bad config files: every kind of error names the right key and line, and all errors are reported.
#include <gtest/gtest.h>

#include <fstream>

#include "conf/config.h"

namespace pgs::conf {
namespace {

// Appended after each snippet so that "at least one database" does not add an error; the snippet's own
// lines start at 1.
constexpr std::string_view kDatabase = "\n[[databases]]\nname = \"zz_app\"\n";

struct BadCase {
  const char* toml;
  const char* key;
  int line;
  const char* message_part;
};

std::string dump(const std::vector<ConfigError>& errors) {
  std::string all;
  for (const auto& e : errors) all += "  " + e.to_string() + "\n";
  return all;
}

const BadCase kBadCases[] = {
    // unknown keys and tables
    {"[proxy]\nlisten_prot = 1", "proxy.listen_prot", 2, "unknown key (did you mean \"listen_port\"?)"},
    {"[pool]\n\nfrobnicate = true", "pool.frobnicate", 3, "unknown key"},
    {"[proxies]\nx = 1", "proxies", 1, "unknown table or key"},
    {"[tls]\nclient_tls = \"sometimes\"", "tls.client_tls", 2, "\"disable\""},
    {"[tls]\nclient_tls = \"allow\"\ncert_file = \"a.crt\"", "tls.key_file", 1,
     "required when client_tls is not \"disable\""},
    {"top_level = 1", "top_level", 1, "unknown table or key"},
    {"[primary]\nweight = 2", "primary.weight", 2, "unknown key"},
    {"[[users]]\nname = \"u\"\npassword = \"p\"\nadmn = true", "users[0].admn", 4, "did you mean \"admin\""},
    {"[cache]\n[[cache.classes]]\nname = \"c\"\nttl = \"1s\"\ntables = [\"a.b\"]\nttl_s = 1",
     "cache.classes[0].ttl_s", 6, "unknown key"},
    // wrong types
    {"[proxy]\nlisten_port = \"6432\"", "proxy.listen_port", 2, "expected an integer, got a string"},
    {"[cache]\nenabled = \"yes\"", "cache.enabled", 2, "expected a boolean"},
    {"[proxy]\nlisten_host = 127", "proxy.listen_host", 2, "expected a string, got an integer"},
    {"proxy = 1", "proxy", 1, "expected a table"},
    {"[routing]\nreplica_safe_functions = \"now\"", "routing.replica_safe_functions", 2, "expected an array"},
    {"[routing]\nreplica_safe_functions = [\"a\", 2]", "routing.replica_safe_functions[1]", 2, "expected a string"},
    {"[pool]\npool_size = 2.5", "pool.pool_size", 2, "expected an integer, got a float"},
    {"[primary]\nhost = 1979-05-27", "primary.host", 2, "got a date"},
    {"[users]\nname = \"u\"", "users", 1, "expected an array of tables"},
    // ranges
    {"[proxy]\nlisten_port = 0", "proxy.listen_port", 2, "between 1 and 65535, got 0"},
    {"[proxy]\nlisten_port = 65536", "proxy.listen_port", 2, "between 1 and 65535"},
    {"[proxy]\nworkers = 257", "proxy.workers", 2, "between 0 and 256"},
    {"[proxy]\nworkers = -1", "proxy.workers", 2, "between 0 and 256"},
    {"[pool]\npool_size = 0", "pool.pool_size", 2, "between 1 and 10000, got 0"},
    {"[pool]\npool_size = 5\nmin_pool_size = 6", "pool.min_pool_size", 3, "must be <= pool.pool_size (5)"},
    {"[proxy]\nmax_message_bytes = \"2GB\"", "proxy.max_message_bytes", 2, "between 1kB and 1GB, got 2GB"},
    {"[proxy]\nmax_message_bytes = 10", "proxy.max_message_bytes", 2, "between 1kB and 1GB"},
    {"[proxy]\nclient_login_timeout = \"0\"", "proxy.client_login_timeout", 2, "between 100ms and 1h, got 0"},
    {"[session]\nmax_prepared_statements = 0", "session.max_prepared_statements", 2, "between 1 and 100000"},
    {"[observability]\ndigest_top_n = 100001", "observability.digest_top_n", 2, "between 0 and 100000"},
    {"[observability]\nslow_query_ms = -5", "observability.slow_query_ms", 2, "between 0 and 86400000 (ms)"},
    {"[[replicas]]\nweight = 0", "replicas[0].weight", 2, "between 1 and 1000"},
    // durations and sizes
    {"[pool]\nquery_wait_timeout = 30", "pool.query_wait_timeout", 2, "expected a duration with a unit"},
    {"[pool]\nquery_wait_timeout = \"30 seconds\"", "pool.query_wait_timeout", 2, "expected a duration"},
    {"[pool]\nserver_lifetime = \"-1s\"", "pool.server_lifetime", 2, "expected a duration"},
    {"[routing]\nmax_replica_lag_bytes = \"16 megabytes\"", "routing.max_replica_lag_bytes", 2, "expected a size"},
    {"[routing]\nmax_replica_lag_bytes = -1", "routing.max_replica_lag_bytes", 2, "expected a size"},
    {"[cache]\nmax_result_bytes = \"1TB\"", "cache.max_result_bytes", 2, "between 1B and 512MB"},
    // enums
    {"[pool]\npool_mode = \"statement\"", "pool.pool_mode", 2,
     "must be one of \"transaction\", \"session\"; got \"statement\""},
    {"[proxy]\nauth_type = \"password\"", "proxy.auth_type", 2, "\"scram-sha-256\", \"md5\", \"trust\""},
    {"[routing]\nconsistency = \"strong\"", "routing.consistency", 2, "must be one of"},
    {"[routing]\nload_balance = \"random\"", "routing.load_balance", 2, "must be one of"},
    {"[session]\npinning = \"maybe\"", "session.pinning", 2, "\"pin\", \"refuse\""},
    {"[observability]\nlog_level = \"trace\"", "observability.log_level", 2, "must be one of"},
    {"[[users]]\nname = \"u\"\npassword = \"p\"\npool_mode = \"x\"", "users[0].pool_mode", 4, "must be one of"},
    // identifiers
    {"[[users]]\nname = \"\"\npassword = \"p\"", "users[0].name", 2, "must not be empty"},
    {"[[users]]\nname = \"" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\npassword = \"p\"",
     "users[0].name", 2, "between 1 and 63 bytes, got 64"},
    {"[proxy]\nadmin_database = \"\"", "proxy.admin_database", 2, "must not be empty"},
    {"[[users]]\npassword = \"p\"", "users[0].name", 1, "is required"},
    // duplicates and conflicts
    {"[[databases]]\nname = \"zz_app\"", "databases[1].name", 4, "duplicate database name \"zz_app\" (first at line 2)"},
    {"[[users]]\nname = \"u\"\npassword = \"p\"\n[[users]]\nname = \"u\"\npassword = \"q\"", "users[1].name", 5,
     "duplicate user name \"u\" (first at line 2)"},
    {"[[databases]]\nname = \"pgsidecar\"", "databases[0].name", 2, "is the admin console"},
    {"[[replicas]]\nname = \"primary\"", "replicas[0].name", 2, "duplicate server name \"primary\""},
    {"[[replicas]]\nname = \"replica2\"\n[[replicas]]\nport = 1", "replicas[1].name", 3,
     "duplicate server name \"replica2\""},
    {"[[cache.classes]]\nname = \"a\"\nttl = \"1s\"\ntables = [\"s.t\"]\n[[cache.classes]]\nname = \"a\"\nttl = "
     "\"1s\"\ntables = [\"s.u\"]",
     "cache.classes[1].name", 6, "duplicate cache class \"a\" (first at line 2)"},
    {"[[cache.classes]]\nname = \"a\"\nttl = \"1s\"\ntables = [\"s.t\"]\n[[cache.classes]]\nname = \"b\"\nttl = "
     "\"1s\"\ntables = [\"S.T\"]",
     "cache.classes[1].tables[0]", 8, "table \"s.t\" is already in cache class \"a\""},
    {"[[cache.classes]]\nname = \"a\"\nttl = \"1s\"\ntables = [\"users\"]", "cache.classes[0].tables[0]", 4,
     "must be a schema-qualified table name"},
    {"[[cache.classes]]\nname = \"a\"\nttl = \"1s\"\ntables = []", "cache.classes[0].tables", 4,
     "at least one table"},
    {"[[cache.classes]]\nname = \"a\"\ntables = [\"s.t\"]", "cache.classes[0].ttl", 1, "is required"},
    {"[routing]\nreplica_safe_functions = [\"a.b.c\"]", "routing.replica_safe_functions[0]", 2,
     "must be a function name"},
    // passwords
    {"[[users]]\nname = \"u\"", "users[0].password", 1, "is required unless proxy.auth_type = \"trust\""},
    {"[proxy]\nauth_type = \"md5\"\n[[users]]\nname = \"u\"\npassword = \"md50123456789abcdef0123456789abcdef\"",
     "users[0].server_password", 3, "is required when password is an md5 hash"},
    {"[proxy]\nauth_type = \"trust\"\nauth_user = \"a\"", "proxy.auth_user", 3, "auth_query needs auth_type"},
    {"[proxy]\nauth_user = \"a\"\nauth_query = \"SELECT 1, 2\"", "proxy.auth_query", 3, "must take the user name as $1"},
    {"[proxy]\nauth_user = \"a\"\nauth_query_ttl = \"1s\"\nauth_query_negative_ttl = \"2s\"",
     "proxy.auth_query_negative_ttl", 4, "must not be longer than auth_query_ttl"},
    {"[[users]]\nname = \"u\"\npassword = \"SCRAM-SHA-256$x:salt$a:b\"\nserver_password = \"s\"", "users[0].password",
     3, "malformed SCRAM verifier"},
    {"[[users]]\nname = \"u\"\npassword = \"md50123456789abcdef0123456789abcdef\"\nserver_password = \"s\"",
     "users[0].password", 3, "an md5 hash cannot check scram-sha-256"},
    {"[proxy]\nauth_type = \"md5\"\n[[users]]\nname = \"u\"\npassword = "
     "\"SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy\"\nserver_password = \"s\"",
     "users[0].password", 5, "a SCRAM verifier cannot check md5"},
    {"[[users]]\nname = \"u\"\npassword = \"p\"\nserver_password = \"md50123456789abcdef0123456789abcdef\"",
     "users[0].server_password", 4, "must be the cleartext password"},
    {"[pool]\nmin_pool_size = 4\n[[users]]\nname = \"u\"\npassword = \"p\"\npool_size = 3", "users[0].pool_size", 6,
     "must be >= pool.min_pool_size (4)"},
    // host:port
    {"[observability]\nmetrics_listen = \"9930\"", "observability.metrics_listen", 2, "expected \"host:port\""},
    // Redis Cluster
    {"[cache]\nredis_cluster = true", "cache.redis_nodes", 2, "needs at least one seed node"},
    {"[cache]\nredis_cluster = true\nredis_nodes = [\"redis-1:7000\"]", "cache.redis_nodes[0]", 3,
     "with an IP address"},
    {"[cache]\nredis_cluster = true\nredis_nodes = [\"127.0.0.1\"]", "cache.redis_nodes[0]", 3, "\"ip:port\""},
    {"[cache]\nredis_cluster_partitions = 0", "cache.redis_cluster_partitions", 2, ""},
    {"[cache]\nredis_cluster_wait_replicas = 17", "cache.redis_cluster_wait_replicas", 2, ""},
};

TEST(BadValues, EachNamesItsKeyAndLine) {
  for (const BadCase& c : kBadCases) {
    std::string text = std::string(c.toml) + std::string(kDatabase);
    LoadResult r = load_config_string(text);
    EXPECT_EQ(r.config, nullptr) << c.toml;
    if (r.errors.size() != 1) {
      ADD_FAILURE() << "want exactly one error for:\n" << c.toml << "\ngot:\n" << dump(r.errors);
      continue;
    }
    const ConfigError& e = r.errors[0];
    EXPECT_EQ(e.key, c.key) << c.toml;
    EXPECT_EQ(e.line, c.line) << c.toml << "\n" << e.to_string();
    EXPECT_NE(e.message.find(c.message_part), std::string::npos)
        << c.toml << "\nwant: " << c.message_part << "\ngot:  " << e.message;
  }
}

TEST(BadValues, MissingDatabasesIsAnError) {
  LoadResult r = load_config_string("[proxy]\nworkers = 2\n");
  ASSERT_EQ(r.errors.size(), 1u) << dump(r.errors);
  EXPECT_EQ(r.errors[0].key, "databases");
  EXPECT_EQ(r.errors[0].line, 0);
  EXPECT_EQ(r.errors[0].to_string(), "line 0: databases: at least one [[databases]] entry is required");
}

TEST(AllErrors, AreCollectedInFileOrder) {
  LoadResult r = load_config_string(R"([proxy]
listen_port = 0
workers = "many"
typo = 1
[pool]
pool_size = 0
pool_mode = "statement"
[[users]]
name = "u"
[cache]
redis_timeout = "soon"
)");
  EXPECT_EQ(r.config, nullptr);
  std::vector<std::pair<std::string, int>> got;
  for (const auto& e : r.errors) got.emplace_back(e.key, e.line);
  const std::vector<std::pair<std::string, int>> want{
      {"proxy.listen_port", 2}, {"proxy.workers", 3},     {"proxy.typo", 4},
      {"pool.pool_size", 6},    {"pool.pool_mode", 7},    {"users[0].password", 8},
      {"cache.redis_timeout", 11}, {"databases", 0},
  };
  EXPECT_EQ(got, want) << dump(r.errors);
}

TEST(Syntax, ErrorGivesLineAndColumn) {
  LoadResult r = load_config_string("[proxy]\nlisten_port = 6432\nworkers = = 2\n", "x.toml");
  EXPECT_EQ(r.config, nullptr);
  ASSERT_EQ(r.errors.size(), 1u) << dump(r.errors);
  EXPECT_EQ(r.errors[0].line, 3);
  EXPECT_GT(r.errors[0].column, 0);
  EXPECT_EQ(r.errors[0].key, "");
  EXPECT_NE(r.errors[0].message.find("TOML syntax error"), std::string::npos);
  EXPECT_NE(r.errors[0].to_string().find("line 3, column "), std::string::npos);
}

TEST(Syntax, DuplicateKeyIsASyntaxErrorAtItsLine) {
  LoadResult r = load_config_string("[pool]\npool_size = 1\npool_size = 2\n");
  ASSERT_EQ(r.errors.size(), 1u) << dump(r.errors);
  EXPECT_EQ(r.errors[0].line, 3);
}

TEST(Syntax, DuplicateTableIsASyntaxError) {
  LoadResult r = load_config_string("[pool]\npool_size = 1\n[proxy]\n[pool]\n");
  ASSERT_EQ(r.errors.size(), 1u) << dump(r.errors);
  EXPECT_EQ(r.errors[0].line, 4);
}

TEST(Syntax, EmptyFileOnlyLacksADatabase) {
  LoadResult r = load_config_string("");
  ASSERT_EQ(r.errors.size(), 1u) << dump(r.errors);
  EXPECT_EQ(r.errors[0].key, "databases");
}

// Every line of the shipped file deleted, or its value replaced by each of a few wrong values: the loader
// never throws, and returns either a config or at least one error, each with a message and a line.
TEST(Robustness, MutatedShippedFileNeverThrows) {
  std::ifstream in(PGS_SHIPPED_CONFIG);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_GT(lines.size(), 100u);
  const std::vector<std::string> replacements{"", "x = ", "\"\"", "-1", "0", "\"zz\"", "[]", "{}", "true",
                                              "99999999999999999999", "\"\\u0000\"", "\"\xff\""};
  size_t loads = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    size_t eq = lines[i].find(" = ");
    std::vector<std::string> variants{""};  // deletion
    if (eq != std::string::npos) {
      for (const std::string& r : replacements) variants.push_back(lines[i].substr(0, eq + 3) + r);
    }
    for (const std::string& variant : variants) {
      std::string text;
      for (size_t j = 0; j < lines.size(); ++j) text += (j == i ? variant : lines[j]) + "\n";
      LoadResult r;
      ASSERT_NO_THROW(r = load_config_string(text)) << "line " << i + 1 << ": " << variant;
      ++loads;
      EXPECT_NE(r.config == nullptr, r.errors.empty()) << "line " << i + 1 << ": " << variant;
      for (const ConfigError& e : r.errors) {
        EXPECT_FALSE(e.message.empty());
        EXPECT_TRUE(e.line > 0 || e.key == "databases") << e.to_string();
      }
    }
  }
  EXPECT_GT(loads, 500u);
}

TEST(Files, MissingOrNotRegularFileIsAnError) {
  LoadResult r = load_config_file("/nonexistent/pgsidecar.toml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].message.find("cannot open config file /nonexistent/pgsidecar.toml"), std::string::npos);
  r = load_config_file(::testing::TempDir());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].message.find("regular file"), std::string::npos);
}

}  // namespace
}  // namespace pgs::conf
