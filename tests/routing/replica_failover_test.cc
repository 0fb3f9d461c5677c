// Stopping the private replica during a select-only pgbench run through the proxy (-M extended, 16
// clients, 8 s) costs no failed transaction: reads in flight are re-run on the primary and new ones go
// there. Once the replica is started again, reads return to it. Two ways to stop: "fast" (each backend
// sends FATAL 57P01 before closing) and "immediate" (connections just drop).
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/integration/harness.h"
#include "tests/routing/private_env.h"
#include "tests/routing/routing_support.h"

namespace pgs::it::routing {
namespace {

constexpr const char* kBenchDb = "it_routing_bench";

// pgbench -i -s 1 directly on the primary, skipped when the tables are already there.
void ensure_bench_tables() {
  ensure_database(kBenchDb);
  ConnSpec s;
  s.dbname = kBenchDb;
  Pg pg(s);
  if (!pg.ok()) throw std::runtime_error("login to " + std::string(kBenchDb) + ": " + pg.error());
  if (pg.scalar("SELECT to_regclass('pgbench_accounts') IS NOT NULL") == "t") return;
  RunResult init = run_program({"pgbench", "-i", "-s", "1", "-q", "-h", kHost, "-p", std::to_string(kPrimaryPort),
                                "-U", kUser, kBenchDb},
                               {{"PGPASSWORD", kPassword}, {"PGSSLMODE", "disable"}}, Millis(60000));
  if (init.exit_code != 0) throw std::runtime_error("pgbench -i failed: " + init.describe());
}

class ReplicaFailoverTest : public ProxyTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "needs the pgsidecar process";
    ensure_bench_tables();
    PrivateReplica& replica = private_replica();
    replica.set_apply_delay(0);
    replica.wait_caught_up(Millis(30000));
    ProxyOptions o = routing_options({{"private1", replica.port()}});
    o.databases.push_back(kBenchDb);
    start_proxy(o);
  }

  void TearDown() override {
    if (!is_direct() && !private_replica().streaming()) private_replica().start();
    ProxyTest::TearDown();
  }
};

class ReplicaDownAtStartTest : public ProxyTest {
 protected:
  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "needs the pgsidecar process";
  }
  void TearDown() override {
    if (!is_direct() && !private_replica().streaming()) private_replica().start();
    ProxyTest::TearDown();
  }
};

TEST_P(ReplicaFailoverTest, StoppedReplicaCostsNoTransactionAndReadsReturn) {
  Pg pg(proxy_->spec(kUser, kPassword, kBenchDb));
  ASSERT_TRUE(pg.ok()) << pg.error();
  PrivateReplica& replica = private_replica();
  ASSERT_TRUE(wait_node(pg, "replica", Millis(15000)))
      << node_of(pg) << "\n" << show_replicas(*proxy_) << replica.positions();
  long replica_before = statement_calls(replica.port(), "pgbench_accounts");
  long primary_before = statement_calls(kPrimaryPort, "pgbench_accounts");

  std::string log = proxy_->dir() + "/pgbench.log";
  Child bench = Child::spawn({"pgbench", "-n", "-S", "-M", "extended", "-c", "16", "-j", "2", "-T", "8", "-h",
                              proxy_->host(), "-p", std::to_string(proxy_->port()), "-U", kUser, kBenchDb},
                             {{"PGPASSWORD", kPassword}, {"PGSSLMODE", "disable"}}, log);
  // Stop the replica once it is clearly serving the benchmark's reads.
  bool serving = wait_until([&] { return statement_calls(replica.port(), "pgbench_accounts") - replica_before >= 2000; },
                            Millis(6000), Millis(50));
  EXPECT_TRUE(serving) << "the replica never served 2000 pgbench reads";
  replica.stop(GetParam());
  long primary_at_stop = statement_calls(kPrimaryPort, "pgbench_accounts");

  ASSERT_TRUE(bench.wait_exit(Millis(40000))) << read_file_tail(log, 4000);
  std::string out = read_file_tail(log);
  EXPECT_EQ(bench.exit_code(), 0) << out;
  EXPECT_NE(out.find("number of failed transactions: 0 "), std::string::npos) << out;
  EXPECT_EQ(out.find("aborted"), std::string::npos) << out;
  EXPECT_GT(statement_calls(kPrimaryPort, "pgbench_accounts"), primary_at_stop)
      << "no pgbench read reached the primary after the replica stopped";
  RecordProperty("primary_reads_before_stop", std::to_string(primary_at_stop - primary_before));

  replica.start();
  EXPECT_TRUE(wait_node(pg, "replica", Millis(30000)))
      << "reads did not return to the restarted replica: " << node_of(pg) << "\n"
      << show_replicas(*proxy_) << replica.positions();
}

INSTANTIATE_TEST_SUITE_P(StopMode, ReplicaFailoverTest, ::testing::Values("fast", "immediate"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// The replica is down before the proxy starts: reads are answered by the primary without errors (the
// monitor's first verdict, or a failed replica login, sends them there); they move to the replica once
// it is up.
TEST_F(ReplicaDownAtStartTest, ReadsUsePrimaryUntilReplicaStarts) {
  PrivateReplica& replica = private_replica();
  replica.stop("fast");
  ProxyOptions o = routing_options({{"private1", replica.port()}});
  start_proxy(o);
  Pg pg(proxy_->spec());
  ASSERT_TRUE(pg.ok()) << pg.error();
  for (int i = 0; i < 50; ++i) ASSERT_EQ(node_of(pg), "primary") << "try " << i;
  PgResult r = pg.exec_params("SELECT pg_is_in_recovery(), $1::int", {"1"});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(0, 0), "f");
  replica.start();
  EXPECT_TRUE(wait_node(pg, "replica", Millis(30000))) << node_of(pg);
}

}  // namespace
}  // namespace pgs::it::routing
