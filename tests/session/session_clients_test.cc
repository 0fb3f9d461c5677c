// Issue 3 with real clients through a pool much smaller than the number of clients: pgbench
// -M prepared (select-only, tpcb-like) with zero failures, psycopg 3 with prepare_threshold=0 from 50
// threads, node-postgres with named statements, and the `postgres` npm client (prepared by default,
// pipelined, sql.begin). The node clients are installed by ./dev (npm ci in tests/clients/).
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <iostream>
#include <regex>
#include <string>

#include "tests/session/session_util.h"

namespace pgs::it::session {
namespace {

using ClientsTest = ProxyTest;

constexpr const char* kBenchDb = "it_session_pgbench";
const std::string kClients = PGS_CLIENTS_DIR;

EnvVars client_env() {
  return {{"PGPASSWORD", kPassword}, {"PGSSLMODE", "disable"}, {"PGCONNECT_TIMEOUT", "10"}};
}

// pgbench -i -s 1 directly on the primary, in a database of this suite; once per database.
void init_bench_tables() {
  ensure_database(kBenchDb);
  ConnSpec s;
  s.dbname = kBenchDb;
  Pg pg = connect(s);
  PgResult r = pg.exec("SELECT count(*) FROM pgbench_branches");
  if (r.ok() && r.value(0, 0) == "1") return;
  RunResult init = run_program({"pgbench", "-i", "-s", "1", "-q", "-h", kHost, "-p",
                                std::to_string(kPrimaryPort), "-U", kUser, kBenchDb},
                               client_env(), Millis(60000));
  if (init.exit_code != 0) throw std::runtime_error("pgbench -i failed: " + init.describe());
}

long field(const std::string& out, const std::string& re) {
  std::smatch m;
  return std::regex_search(out, m, std::regex(re)) ? std::stol(m[1]) : -1;
}

// pgbench -M prepared, `clients` clients on `threads` threads, 4 s.
void pgbench_prepared(Proxy& p, const std::string& builtin, int clients = 32, int threads = 2) {
  RunResult r = run_program({"pgbench", "-n", "-h", p.host(), "-p", std::to_string(p.port()), "-U",
                             kUser, "-c", std::to_string(clients), "-j", std::to_string(threads), "-T",
                             "4", "-M", "prepared", "-b", builtin, kBenchDb},
                            client_env(), Millis(60000));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_GT(field(r.out, R"(transactions actually processed: (\d+))"), clients) << r.describe();
  EXPECT_EQ(field(r.out, R"(number of failed transactions: (\d+))"), 0) << r.describe();
  EXPECT_EQ(r.err.find("aborted"), std::string::npos) << r.describe();
  EXPECT_EQ(r.err.find("ERROR"), std::string::npos) << r.describe();
  if (!p.direct()) {
    EXPECT_LE(p.server_backends(kBenchDb), 4);
  }
  std::cout << "pgbench -M prepared -b " << builtin << ": "
            << field(r.out, R"(transactions actually processed: (\d+))") << " transactions\n";
}

ProxyOptions bench_pool() {
  ProxyOptions o = small_pool(4, "30s");
  o.databases = {kDatabase, kBenchDb};
  return o;
}

TEST_F(ClientsTest, PgbenchPreparedSelectOnly32ClientsPoolOf4) {
  init_bench_tables();
  Proxy& p = start_proxy(bench_pool());
  pgbench_prepared(p, "select-only");
}

// pgbench 15 prepares a script's statements with a blocking PQprepare (Parse + Sync, outside any
// transaction) on the client's first transaction, while other clients of the same pgbench thread
// hold servers inside BEGIN ... END. With 16 clients per thread and 4 servers, the proxy must answer
// that Parse without waiting for a server (e.g. when the statement is already prepared elsewhere),
// or the thread deadlocks until query_wait_timeout and clients abort.
TEST_F(ClientsTest, PgbenchPreparedTpcbLike32ClientsPoolOf4) {
  init_bench_tables();
  Proxy& p = start_proxy(bench_pool());
  pgbench_prepared(p, "tpcb-like");
}

// The same workload with one client per pgbench thread (no thread can block its own clients):
// prepared statements carried across transactions on 2 servers shared by 6 clients.
TEST_F(ClientsTest, PgbenchPreparedTpcbLike6ClientsOwnThreadsPoolOf2) {
  init_bench_tables();
  ProxyOptions o = bench_pool();
  o.pool_size = 2;
  Proxy& p = start_proxy(o);
  pgbench_prepared(p, "tpcb-like", 6, 6);
}

TEST_F(ClientsTest, PsycopgPrepareThresholdZeroFiftyThreadsPoolOf5) {
  Proxy& p = start_proxy(small_pool(5, "30s"));
  RunResult r = run_program({"/usr/bin/python3", kClients + "/psycopg_threads.py", "--dsn",
                             p.conninfo(), "--threads", "50", "--iterations", "30",
                             "--prepare-threshold", "0", "--table", "it_session_psycopg"},
                            client_env(), Millis(90000));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("errors=0"), std::string::npos) << r.describe();
}

std::string node_url(const Proxy& p) {
  return "postgresql://" + std::string(kUser) + ":" + kPassword + "@" + p.host() + ":" +
         std::to_string(p.port()) + "/" + kDatabase + "?sslmode=disable";
}

bool node_modules_installed() {
  struct stat st {};
  return stat((kClients + "/node_modules/pg/package.json").c_str(), &st) == 0 &&
         stat((kClients + "/node_modules/postgres/package.json").c_str(), &st) == 0;
}

#define REQUIRE_NODE_CLIENTS()                                                                \
  do {                                                                                        \
    if (!node_modules_installed())                                                            \
      GTEST_SKIP() << "tests/clients/node_modules is missing: run ./dev test (npm ci there)"; \
  } while (0)

TEST_F(ClientsTest, NodePostgresNamedStatements20ClientsPoolOf3) {
  REQUIRE_NODE_CLIENTS();
  Proxy& p = start_proxy(small_pool(3, "30s"));
  RunResult r = run_program({"node", kClients + "/node_pg_named.js", "--dsn", node_url(p),
                             "--clients", "20", "--iterations", "30", "--table", "it_session_node_pg"},
                            client_env(), Millis(90000));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("errors=0"), std::string::npos) << r.describe();
}

TEST_F(ClientsTest, PostgresJsPreparedPipelinedBegin10InstancesPoolOf3) {
  REQUIRE_NODE_CLIENTS();
  Proxy& p = start_proxy(small_pool(3, "30s"));
  RunResult r = run_program({"node", kClients + "/node_postgres_js.js", "--dsn", node_url(p),
                             "--instances", "10", "--iterations", "30", "--table",
                             "it_session_node_postgres"},
                            client_env(), Millis(90000));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("errors=0"), std::string::npos) << r.describe();
}

}  // namespace
}  // namespace pgs::it::session
