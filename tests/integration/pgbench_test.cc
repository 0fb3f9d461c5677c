// pgbench through the proxy: 64 clients over a pool of 10, simple and extended protocol,
// select-only and tpcb-like, ~5 s each; every transaction must succeed. The pgbench tables live in
// their own database (it_pgbench) so other tests are not disturbed.
#include <regex>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace pgs::it {
namespace {

constexpr const char* kBenchDb = "it_pgbench";

struct BenchCase {
  const char* protocol;  // -M
  const char* builtin;   // -b
};

struct BenchNumbers {
  long processed = -1;
  long failed = -1;
  double tps = -1;
};

BenchNumbers parse_pgbench(const std::string& out) {
  BenchNumbers n;
  std::smatch m;
  if (std::regex_search(out, m, std::regex(R"(transactions actually processed: (\d+))"))) {
    n.processed = std::stol(m[1]);
  }
  if (std::regex_search(out, m, std::regex(R"(number of failed transactions: (\d+))"))) {
    n.failed = std::stol(m[1]);
  }
  if (std::regex_search(out, m, std::regex(R"(tps = ([0-9.]+))"))) n.tps = std::stod(m[1]);
  return n;
}

EnvVars bench_env() {
  return {{"PGPASSWORD", kPassword}, {"PGSSLMODE", "disable"}, {"PGCONNECT_TIMEOUT", "10"}};
}

// pgbench -i -s 1 directly on the primary, once: skipped when the tables are already there.
void init_bench_tables() {
  ensure_database(kBenchDb);
  ConnSpec s;
  s.dbname = kBenchDb;
  Pg pg(s);
  if (!pg.ok()) throw std::runtime_error(pg.error());
  PgResult r = pg.exec("SELECT count(*) FROM pgbench_branches");
  if (r.ok() && r.value(0, 0) == "1") return;
  RunResult init = run_program({"pgbench", "-i", "-s", "1", "-q", "-h", kHost, "-p",
                                std::to_string(kPrimaryPort), "-U", kUser, kBenchDb},
                               bench_env(), Millis(60000));
  if (init.exit_code != 0) throw std::runtime_error("pgbench -i failed: " + init.describe());
}

// Readable names in ctest's list instead of the struct's bytes.
void PrintTo(const BenchCase& c, std::ostream* os) { *os << c.protocol << "/" << c.builtin; }

class PgbenchTest : public ProxyTest, public ::testing::WithParamInterface<BenchCase> {};

TEST_P(PgbenchTest, SixtyFourClientsPoolOfTenNoFailures) {
  init_bench_tables();
  ProxyOptions o;
  o.pool_size = 10;
  o.databases = {kDatabase, kBenchDb};
  Proxy& p = start_proxy(o);
  const BenchCase& c = GetParam();
  RunResult r = run_program({"pgbench", "-n", "-h", p.host(), "-p", std::to_string(p.port()), "-U",
                             kUser, "-c", "64", "-j", "2", "-T", "5", "-M", c.protocol, "-b",
                             c.builtin, kBenchDb},
                            bench_env(), Millis(60000));
  BenchNumbers n = parse_pgbench(r.out);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_GT(n.processed, 64) << r.describe();
  EXPECT_EQ(n.failed, 0) << r.describe();
  EXPECT_GT(n.tps, 0) << r.describe();
  EXPECT_EQ(r.err.find("aborted"), std::string::npos) << r.describe();
  EXPECT_TRUE(p.alive());
  // Pool of 10: the proxy must not have opened more server connections than that.
  if (!p.direct()) {
    EXPECT_LE(p.server_backends(kBenchDb), 10);
  }
  std::cout << c.protocol << "/" << c.builtin << ": " << n.processed << " transactions, tps "
            << n.tps << "\n";
}

INSTANTIATE_TEST_SUITE_P(Modes, PgbenchTest,
                         ::testing::Values(BenchCase{"simple", "select-only"},
                                           BenchCase{"extended", "select-only"},
                                           BenchCase{"simple", "tpcb-like"},
                                           BenchCase{"extended", "tpcb-like"}),
                         [](const auto& info) {
                           std::string name = std::string(info.param.protocol) + "_" +
                                              info.param.builtin;
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace pgs::it
