// The admin console and the metrics/health endpoints of the real pgsidecar binary, with psql,
// pgbench, libpq, promtool and the Python prometheus_client parser against the dev Postgres.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <memory>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdlib.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "tests/admin/test_util.h"
#include "tests/integration/harness.h"
#include "tests/support/raw_client.h"

namespace pgs::it {
namespace {

constexpr const char* kAdminDb = kAdminDatabase;
constexpr const char* kBenchDb = "it_pgbench";

class AdminTest : public ProxyTest {
 protected:
  std::string admin_conninfo() { return proxy_->conninfo(kAdminUser, kAdminPassword, kAdminDb); }
  Pg admin() {
    Pg pg(admin_conninfo());
    if (!pg.ok()) throw std::runtime_error("admin login failed: " + pg.error());
    return pg;
  }
};

// Sum of every pgsidecar_queries_total sample; -1 when absent.
long queries_total(const std::string& body) {
  return static_cast<long>(metric_sum(body, "pgsidecar_queries_total"));
}

TEST_F(AdminTest, EveryShowCommandThroughPsql) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.with_replica = true;
  Proxy& p = start_proxy(o);
  Pg client(p.spec());
  ASSERT_TRUE(client.ok()) << client.error();
  client.must("SELECT 1");
  struct Case {
    const char* command;
    const char* header;  // a column name psql must print
    bool rows;           // at least one row expected
  };
  const Case cases[] = {{"POOLS", "cl_waiting", true},     {"STATS", "total_xact_count", true},
                        {"CLIENTS", "connect_time", true}, {"SERVERS", "remote_pid", true},
                        {"CONFIG", "key", true},           {"VERSION", "version", true},
                        {"HELP", "description", true},     {"REPLICAS", "lag_bytes", true},
                        {"CACHE", "hits", false},          {"DIGESTS", "fingerprint", false}};
  for (const Case& c : cases) {
    // Client and server rows are published once a second: wait for them.
    RunResult last;
    bool ok = wait_until(
        [&] {
          last = run_psql(admin_conninfo(), std::string("SHOW ") + c.command + ";\n", {"-v", "ON_ERROR_STOP=1"});
          if (last.exit_code != 0 || last.out.find(c.header) == std::string::npos) return false;
          return !c.rows || last.out.find("(0 rows)") == std::string::npos;
        },
        Millis(10000), Millis(200));
    EXPECT_TRUE(ok) << c.command << "\n" << last.describe();
  }
  RunResult bad = run_psql(admin_conninfo(), "SHOW NONSENSE;\n", {"-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("42601"), std::string::npos) << bad.describe();
  EXPECT_NE(bad.err.find("SHOW POOLS"), std::string::npos) << bad.describe();  // the hint
}

TEST_F(AdminTest, NonAdminUserIsRefused) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start_proxy();
  RawConn c(p.host(), p.port());
  LoginOutcome out = login(c, kUser, kPassword, kAdminDb);
  EXPECT_FALSE(out.ok);
  ASSERT_TRUE(out.error.has_value()) << out.describe();
  EXPECT_EQ(out.error->sqlstate(), "28000") << out.describe();
  RawConn a(p.host(), p.port());
  EXPECT_TRUE(login(a, kAdminUser, kAdminPassword, kAdminDb).ok);
}

// Refused logins are counted by reason: a wrong password, an unknown database, a non-admin user at
// the console.
TEST_F(AdminTest, LoginFailuresAreCountedByReason) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start_proxy();
  auto count = [&](const std::string& reason) {
    return static_cast<long>(
        metric_value(scrape_metrics(p.metrics_port()), "pgsidecar_login_failures_total", "reason=\"" + reason + "\""));
  };
  {
    RawConn c(p.host(), p.port());
    EXPECT_EQ(login(c, kUser, "wrong", kDatabase).error.value_or(ErrorFields{}).sqlstate(), "28P01");
  }
  {
    RawConn c(p.host(), p.port());
    EXPECT_EQ(login(c, kUser, kPassword, "no_such_db").error.value_or(ErrorFields{}).sqlstate(), "3D000");
  }
  {
    RawConn c(p.host(), p.port());
    EXPECT_EQ(login(c, kUser, kPassword, kAdminDb).error.value_or(ErrorFields{}).sqlstate(), "28000");
  }
  EXPECT_TRUE(wait_until([&] {
    return count("password") == 1 && count("unknown_database") == 1 && count("not_allowed") == 1;
  }, Millis(5000), Millis(50))) << "password " << count("password") << ", unknown_database "
                                << count("unknown_database") << ", not_allowed " << count("not_allowed");
}

// What the workers count is exported: a login refused at max_client_conn is a login failure of its
// own reason (it was counted apart and never exported), and the connection, server and probe counters
// move with the traffic that drives them.
TEST_F(AdminTest, EveryWorkerCounterIsExported) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.workers = 1;
  o.max_client_conn = 1;
  Proxy& p = start_proxy(o);
  auto value = [&](const std::string& name, const std::string& labels = "") {
    return static_cast<long>(metric_value(scrape_metrics(p.metrics_port()), name, labels));
  };
  std::unique_ptr<Pg> c;  // the one slot may still be held by the start-up readiness check for a moment
  ASSERT_TRUE(wait_until([&] { return (c = std::make_unique<Pg>(p.spec()))->ok(); }, Millis(5000), Millis(20)))
      << c->error();
  c->must("DO $$BEGIN PERFORM 1; END$$");  // code the proxy cannot see: the session is probed after it
  {
    RawConn refused(p.host(), p.port());
    EXPECT_EQ(login(refused, kUser, kPassword, kDatabase).error.value_or(ErrorFields{}).sqlstate(), "53300");
  }
  EXPECT_TRUE(wait_until([&] {
    return value("pgsidecar_login_failures_total", "reason=\"too_many_clients\"") >= 1 &&
           value("pgsidecar_clients_accepted_total") >= 2 && value("pgsidecar_server_connects_total") >= 1 &&
           value("pgsidecar_session_probes_total") >= 1;
  }, Millis(5000), Millis(50))) << scrape_metrics(p.metrics_port());
  EXPECT_EQ(value("pgsidecar_server_connect_failures_total"), 0);
  EXPECT_EQ(value("pgsidecar_cancels_forwarded_total"), 0);
  EXPECT_EQ(value("pgsidecar_replica_retries_total"), 0);
}

// A random source that fails (rand_fail_shim.c makes 4-byte RAND_bytes requests fail): before the
// fix the result was ignored and the client logged in with a predictable cancel key. Now the login
// ends with FATAL XX000, counted as login_failures_total{reason="other"} and logged.
TEST_F(AdminTest, LoginFailsClosedWhenTheRandomSourceFails) {
  PGS_IT_REQUIRE_PROXY();
  require_dev_services();
  char tmpl[] = "/tmp/pgs_admin_itXXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  uint16_t listen = free_port(), metrics = free_port();
  { std::ofstream(dir + "/pgsidecar.toml") << render_config(ProxyOptions{}, listen, metrics); }
  Child proxy = Child::spawn({proxy_binary(), "--config", dir + "/pgsidecar.toml"},
                             {{"LD_PRELOAD", PGS_RAND_FAIL_SHIM}}, dir + "/stderr.log");
  ASSERT_TRUE(wait_until([&] { return http_get(metrics, "/healthz").status == 200; }, Millis(15000)))
      << read_file_tail(dir + "/stderr.log");
  for (const char* database : {kDatabase, kAdminDb}) {
    RawConn c("127.0.0.1", listen);
    const std::string user = database == std::string(kAdminDb) ? kAdminUser : kUser;
    LoginOutcome l = login(c, user, user == kUser ? kPassword : kAdminPassword, database);
    EXPECT_FALSE(l.ok) << database << ": logged in with a cancel key from a failed random source";
    ASSERT_TRUE(l.error) << l.describe();
    EXPECT_EQ(l.error->sqlstate(), "XX000") << l.error->describe();
    EXPECT_EQ(l.error->get('S'), "FATAL");
    EXPECT_EQ(l.error->message(), "could not generate a random cancel key");
  }
  auto other = [&] {
    return static_cast<long>(
        metric_value(scrape_metrics(metrics), "pgsidecar_login_failures_total", "reason=\"other\""));
  };
  EXPECT_TRUE(wait_until([&] { return other() == 2; }, Millis(5000), Millis(50))) << other();
  EXPECT_NE(read_file_tail(dir + "/stderr.log").find("no random cancel key"), std::string::npos);
  proxy.stop(Millis(5000));
  std::system(("rm -rf '" + dir + "'").c_str());
}

TEST_F(AdminTest, ReloadAppliesAndABrokenFileIsAnErrorThatKeepsServing) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start_proxy();
  Pg a = admin();
  PgResult ok = a.exec("RELOAD");
  EXPECT_TRUE(ok.ok()) << ok.error();
  std::string good = read_file_tail(p.config_path());
  { std::ofstream(p.config_path(), std::ios::app) << "\n[pool]\npool_size = \"many\"\n"; }
  PgResult bad = a.exec("RELOAD");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.sqlstate(), "F0000") << bad.error();
  Pg client(p.spec());
  ASSERT_TRUE(client.ok()) << client.error();
  EXPECT_EQ(client.scalar("SELECT 41 + 1"), "42");
  { std::ofstream(p.config_path(), std::ios::trunc) << good; }
  EXPECT_TRUE(a.exec("RELOAD").ok());
  // Both reload outcomes are counted on /metrics.
  auto m = http_get(p.metrics_port(), "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("pgsidecar_config_reloads_total{result=\"ok\"} 2\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("pgsidecar_config_reloads_total{result=\"error\"} 1\n"), std::string::npos);
}

TEST_F(AdminTest, PauseHoldsANewTransactionUntilResume) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start_proxy();
  Pg client(p.spec());
  ASSERT_TRUE(client.ok()) << client.error();
  client.must("SELECT 1");
  Pg a = admin();
  ASSERT_TRUE(a.exec("PAUSE").ok());
  ASSERT_EQ(PQsendQuery(client.get(), "SELECT 7"), 1);
  auto answered = [&] {
    PQconsumeInput(client.get());
    return PQisBusy(client.get()) == 0;
  };
  // Must still be waiting after a while (the condition is expected NOT to become true).
  EXPECT_FALSE(wait_until(answered, Millis(800))) << "a paused proxy answered a new transaction";
  ASSERT_TRUE(a.exec("RESUME").ok());
  ASSERT_TRUE(wait_until(answered, Millis(10000))) << "RESUME did not release the waiting client";
  PgResult r(PQgetResult(client.get()));
  EXPECT_EQ(r.value(0, 0), "7") << r.error();
  while (PGresult* extra = PQgetResult(client.get())) PQclear(extra);
}

void init_bench_tables() {
  ensure_database(kBenchDb);
  ConnSpec s;
  s.dbname = kBenchDb;
  Pg pg(s);
  if (!pg.ok()) throw std::runtime_error(pg.error());
  PgResult r = pg.exec("SELECT count(*) FROM pgbench_branches");
  if (r.ok() && r.value(0, 0) == "1") return;
  RunResult init = run_program({"pgbench", "-i", "-s", "1", "-q", "-h", kHost, "-p", std::to_string(kPrimaryPort),
                                "-U", kUser, kBenchDb},
                               {{"PGPASSWORD", kPassword}, {"PGSSLMODE", "disable"}}, Millis(60000));
  if (init.exit_code != 0) throw std::runtime_error("pgbench -i failed: " + init.describe());
}

TEST_F(AdminTest, MetricsDuringPgbenchPassPromtoolAndCountEveryTransaction) {
  PGS_IT_REQUIRE_PROXY();
  init_bench_tables();
  ProxyOptions o;
  o.databases = {kDatabase, kBenchDb};
  Proxy& p = start_proxy(o);
  auto before = http_get(p.metrics_port(), "/metrics");
  ASSERT_EQ(before.status, 200) << "no /metrics on port " << p.metrics_port();
  long start_count = std::max(0L, queries_total(before.body));
  std::string log = p.dir() + "/pgbench.log";
  Child bench = Child::spawn({"pgbench", "-n", "-h", p.host(), "-p", std::to_string(p.port()), "-U", kUser, "-c",
                              "64", "-j", "2", "-T", "3", "-b", "select-only", kBenchDb},
                             {{"PGPASSWORD", kPassword}, {"PGSSLMODE", "disable"}}, log);
  // Scrape while pgbench runs, until the counter moves.
  HttpReply during;
  EXPECT_TRUE(wait_until(
      [&] {
        during = http_get(p.metrics_port(), "/metrics");
        return during.status == 200 && queries_total(during.body) > start_count;
      },
      Millis(10000), Millis(100)));
  ASSERT_TRUE(bench.wait_exit(Millis(60000)));
  std::string out = read_file_tail(log);
  ASSERT_EQ(bench.exit_code().value_or(-1), 0) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(transactions actually processed: (\d+))"))) << out;
  long processed = std::stol(m[1]);
  EXPECT_GT(processed, 64);
  // select-only is one statement per transaction; stats are published every tick.
  HttpReply after;
  bool counted = wait_until(
      [&] {
        after = http_get(p.metrics_port(), "/metrics");
        return queries_total(after.body) - start_count >= processed;
      },
      Millis(10000), Millis(100));
  EXPECT_TRUE(counted) << "queries_total grew by " << queries_total(after.body) - start_count << ", pgbench: "
                       << processed;
  for (const auto* scrape : {&during, &after}) {
    if (std::string(PGS_PROMTOOL).empty()) break;
    auto lint = admin_test::run_with_stdin(std::string(PGS_PROMTOOL) + " check metrics", scrape->body);
    EXPECT_EQ(lint.status, 0) << lint.output;
    EXPECT_EQ(lint.output, "") << "promtool findings";
  }
  auto py = admin_test::python_sum(PGS_SYSTEM_PYTHON, "pgsidecar_queries_total", after.body);
  ASSERT_EQ(py.status, 0) << py.output;
  EXPECT_EQ(std::stol(py.output), queries_total(after.body));
  for (const char* family : {"pgsidecar_client_connections{", "pgsidecar_server_connections{",
                             "pgsidecar_pool_wait_seconds_bucket{", "pgsidecar_query_duration_seconds_count{",
                             "pgsidecar_transaction_duration_seconds_count{", "pgsidecar_client_bytes_sent_total ",
                             "pgsidecar_uptime_seconds "}) {
    EXPECT_NE(after.body.find(family), std::string::npos) << family;
  }
}

TEST_F(AdminTest, HealthzAndReadyzWithThePrimaryUp) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start_proxy();
  EXPECT_EQ(http_get(p.metrics_port(), "/healthz").status, 200);
  auto r = http_get(p.metrics_port(), "/readyz");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"primary\":\"up\""), std::string::npos) << r.body;
  // Digests are on by default: a statement run through the proxy shows up, without its literal.
  Pg c(p.spec());
  ASSERT_TRUE(c.ok()) << c.error();
  c.must("SELECT 'pgs-digest-literal' AS marker");
  bool seen = wait_until(
      [&] {
        auto d = http_get(p.metrics_port(), "/digests");
        return d.status == 200 && d.body.find("as marker") != std::string::npos;
      },
      Millis(5000));
  EXPECT_TRUE(seen);
  auto d = http_get(p.metrics_port(), "/digests");
  EXPECT_EQ(d.body.find("pgs-digest-literal"), std::string::npos) << d.body;
}

// Issue 6: a slow statement is logged as one JSON line with its fingerprint and normalized text, never
// its literal values; parameters only with log_parameters = true.
TEST_F(AdminTest, SlowQueryLogHasFingerprintAndNoLiterals) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  std::string log_path = "/tmp/pgs-slow-" + std::to_string(::getpid()) + ".jsonl";
  std::remove(log_path.c_str());
  o.observability_toml = "slow_query_ms = 500\nslow_query_log = \"" + log_path + "\"\nlog_parameters = true\n";
  Proxy& p = start_proxy(o);
  Pg c(p.spec());
  ASSERT_TRUE(c.ok()) << c.error();
  c.must("SELECT pg_sleep(1.2), 'pgs-secret-literal' AS marker");
  c.must("SELECT 1");  // fast: not logged
  auto r = c.exec_params("SELECT pg_sleep($1::float8), $2::text AS bound", {"0.6", "pgs-bound-value"});
  ASSERT_TRUE(r.ok()) << r.error();
  std::string text;
  bool two_lines = wait_until(
      [&] {
        std::ifstream in(log_path);
        text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        return std::count(text.begin(), text.end(), '\n') >= 2;
      },
      Millis(5000));
  ASSERT_TRUE(two_lines) << text;
  EXPECT_EQ(text.find("pgs-secret-literal"), std::string::npos) << text;  // normalized: no literal
  EXPECT_NE(text.find("\"query\":\"SELECT pg_sleep($1), $2 AS marker\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"fingerprint\":\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"database\":\"flopods\""), std::string::npos) << text;
  EXPECT_EQ(text.find("SELECT 1\""), std::string::npos) << text;
  EXPECT_NE(text.find("pgs-bound-value"), std::string::npos) << text;  // log_parameters = true
  std::remove(log_path.c_str());
}

// The shared primary is never stopped: a proxy whose primary port has no listener is unready.
TEST_F(AdminTest, ReadyzIs503WhenThePrimaryIsUnreachable) {
  PGS_IT_REQUIRE_PROXY();
  require_dev_services();
  char tmpl[] = "/tmp/pgs_admin_itXXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  uint16_t dead = free_port(), listen = free_port(), metrics = free_port();
  std::string config = render_config(ProxyOptions{}, listen, metrics);
  std::string from = "port = " + std::to_string(kPrimaryPort);
  ASSERT_NE(config.find(from), std::string::npos);
  config.replace(config.find(from), from.size(), "port = " + std::to_string(dead));
  { std::ofstream(dir + "/pgsidecar.toml") << config; }
  Child proxy = Child::spawn({proxy_binary(), "--config", dir + "/pgsidecar.toml"}, {}, dir + "/stderr.log");
  EXPECT_TRUE(wait_until([&] { return http_get(metrics, "/healthz").status == 200; }, Millis(15000)))
      << read_file_tail(dir + "/stderr.log");
  auto r = http_get(metrics, "/readyz");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("\"primary\":\"down\""), std::string::npos) << r.body;
  proxy.stop(Millis(5000));
  std::system(("rm -rf '" + dir + "'").c_str());
}

// A primary that accepts connections and never answers (a hung host): before the fix /readyz pinged
// it on the HTTP thread and took libpq's whole connect timeout (>= 2 s) per request, holding /metrics
// behind it. Now /readyz reads the latest background ping and both answer at once.
TEST_F(AdminTest, ReadyzAnswersPromptlyWhileThePrimaryHangs) {
  PGS_IT_REQUIRE_PROXY();
  require_dev_services();
  int hung = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(hung, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(hung, 128), 0);  // the kernel completes connections; nobody reads them
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(hung, reinterpret_cast<sockaddr*>(&a), &len), 0);
  char tmpl[] = "/tmp/pgs_admin_itXXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  uint16_t listen = free_port(), metrics = free_port();
  std::string config = render_config(ProxyOptions{}, listen, metrics);
  std::string from = "port = " + std::to_string(kPrimaryPort);
  ASSERT_NE(config.find(from), std::string::npos);
  config.replace(config.find(from), from.size(), "port = " + std::to_string(ntohs(a.sin_port)));
  { std::ofstream(dir + "/pgsidecar.toml") << config; }
  Child proxy = Child::spawn({proxy_binary(), "--config", dir + "/pgsidecar.toml"}, {}, dir + "/stderr.log");
  EXPECT_TRUE(wait_until([&] { return http_get(metrics, "/healthz").status == 200; }, Millis(15000)))
      << read_file_tail(dir + "/stderr.log");
  using Clock = std::chrono::steady_clock;
  for (int i = 0; i < 5; ++i) {
    auto t0 = Clock::now();
    auto r = http_get(metrics, "/readyz", Millis(5000));
    auto took = Clock::now() - t0;
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_NE(r.body.find("\"primary\":\"down\""), std::string::npos) << r.body;
    EXPECT_LT(took, Millis(1000)) << "/readyz took "
                                  << std::chrono::duration_cast<Millis>(took).count() << " ms";
    t0 = Clock::now();
    EXPECT_EQ(http_get(metrics, "/metrics", Millis(5000)).status, 200);
    EXPECT_LT(Clock::now() - t0, Millis(1000));
  }
  proxy.stop(Millis(5000));
  ::close(hung);
  std::system(("rm -rf '" + dir + "'").c_str());
}

// A busy metrics_listen port is a start-up error: the proxy exits 1 and says why.
TEST_F(AdminTest, BusyMetricsPortStopsTheProxyWithExitCode1) {
  PGS_IT_REQUIRE_PROXY();
  require_dev_services();
  int holder = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(holder, 1), 0);
  socklen_t len = sizeof a;
  ::getsockname(holder, reinterpret_cast<sockaddr*>(&a), &len);
  char tmpl[] = "/tmp/pgs_admin_itXXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  { std::ofstream(dir + "/pgsidecar.toml") << render_config(ProxyOptions{}, free_port(), ntohs(a.sin_port)); }
  Child proxy = Child::spawn({proxy_binary(), "--config", dir + "/pgsidecar.toml"}, {}, dir + "/stderr.log");
  ASSERT_TRUE(proxy.wait_exit(Millis(15000))) << read_file_tail(dir + "/stderr.log");
  EXPECT_EQ(proxy.exit_code().value_or(-1), 1);
  EXPECT_NE(read_file_tail(dir + "/stderr.log").find("metrics_listen"), std::string::npos)
      << read_file_tail(dir + "/stderr.log");
  ::close(holder);
  std::system(("rm -rf '" + dir + "'").c_str());
}

}  // namespace
}  // namespace pgs::it
