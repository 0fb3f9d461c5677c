// Read/write routing through the real proxy with the shared dev replica (:15433), which these tests
// only read from: which node answers is told by pg_is_in_recovery() inside the statement itself, and
// for one statement by pg_stat_statements call counts on each node.
#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/routing/routing_support.h"

namespace pgs::it::routing {
namespace {

constexpr Millis kRouteDeadline(15000);

class BasicRoutingTest : public ProxyTest {
 protected:
  static void SetUpTestSuite() {
    require_dev_services();
    Pg owner(ConnSpec{});
    if (!owner.ok()) throw std::runtime_error("flopods login: " + owner.error());
    owner.must("CREATE TABLE IF NOT EXISTS pgs_routing_basic (id int PRIMARY KEY, v int NOT NULL DEFAULT 0)");
    owner.must("INSERT INTO pgs_routing_basic VALUES (1, 0) ON CONFLICT DO NOTHING");
    owner.must("CREATE SEQUENCE IF NOT EXISTS pgs_routing_seq");
    // Not on the classifier's list of read-only functions: only a replica hint may send it to a replica.
    owner.must("CREATE OR REPLACE FUNCTION pgs_routing_ro() RETURNS boolean LANGUAGE sql STABLE "
               "AS 'SELECT pg_catalog.pg_is_in_recovery()'");
    ConnSpec replica;
    replica.port = kReplicaPort;
    bool replicated = wait_until(
        [&] {
          Pg r(replica);
          return r.ok() && r.scalar("SELECT to_regproc('pgs_routing_ro') IS NOT NULL AND "
                                    "to_regclass('pgs_routing_seq') IS NOT NULL") == "t";
        },
        Millis(30000), Millis(50));
    if (!replicated) throw std::runtime_error("the shared replica did not replay the test objects");
  }

  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "needs the pgsidecar process";
    start_proxy(routing_options({{"replica1", kReplicaPort}}));
    pg_ = std::make_unique<Pg>(proxy_->spec());
    ASSERT_TRUE(pg_->ok()) << pg_->error();
    // The health monitor needs a round or two before the replica is eligible.
    ASSERT_TRUE(wait_node(*pg_, "replica", kRouteDeadline)) << node_of(*pg_);
  }

  // A read after a write waits (deadline) for the replica to pass the read-your-writes floor.
  void expect_reads_return_to_replica() {
    EXPECT_TRUE(wait_node(*pg_, "replica", kRouteDeadline)) << node_of(*pg_);
  }

  std::unique_ptr<Pg> pg_;
};

TEST_F(BasicRoutingTest, PlainSelectRunsOnReplica) {
  for (int i = 0; i < 20; ++i) EXPECT_EQ(node_of(*pg_), "replica") << "try " << i;
  PgResult r = pg_->exec_params("SELECT pg_is_in_recovery(), $1::int", {"7"});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(0, 0), "t") << "extended-protocol read went to the primary";
}

TEST_F(BasicRoutingTest, SelectForUpdateRunsOnPrimary) {
  EXPECT_EQ(node_of(*pg_, "SELECT pg_is_in_recovery() FROM pgs_routing_basic WHERE id = 1 FOR UPDATE"), "primary");
  EXPECT_EQ(node_of(*pg_, "SELECT pg_is_in_recovery() FROM pgs_routing_basic WHERE id = 1 FOR SHARE"), "primary");
  PgResult r = pg_->exec_params("SELECT pg_is_in_recovery() FROM pgs_routing_basic WHERE id = $1 FOR UPDATE", {"1"});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(0, 0), "f");
}

TEST_F(BasicRoutingTest, NextvalRunsOnPrimary) {
  EXPECT_EQ(node_of(*pg_, "SELECT pg_is_in_recovery(), nextval('pgs_routing_seq')"), "primary");
  expect_reads_return_to_replica();
}

TEST_F(BasicRoutingTest, InsertAndUpdateRunOnPrimary) {
  EXPECT_EQ(node_of(*pg_, "INSERT INTO pgs_routing_basic (id) VALUES (2) ON CONFLICT (id) DO UPDATE "
                          "SET v = pgs_routing_basic.v + 1 RETURNING pg_is_in_recovery()"),
            "primary");
  EXPECT_EQ(node_of(*pg_, "UPDATE pgs_routing_basic SET v = v + 1 WHERE id = 1 RETURNING pg_is_in_recovery()"),
            "primary");
  EXPECT_EQ(node_of(*pg_, "WITH u AS (UPDATE pgs_routing_basic SET v = v + 1 WHERE id = 1 RETURNING v) "
                          "SELECT pg_is_in_recovery() FROM u"),
            "primary");
  expect_reads_return_to_replica();
}

TEST_F(BasicRoutingTest, ReadWriteTransactionRunsOnPrimary) {
  pg_->must("BEGIN");
  EXPECT_EQ(node_of(*pg_), "primary") << "a plain SELECT inside BEGIN ... COMMIT";
  EXPECT_EQ(node_of(*pg_), "primary");
  pg_->must("COMMIT");
  std::vector<PgResult> all = pg_->exec_all("BEGIN; SELECT pg_is_in_recovery(); COMMIT");
  ASSERT_EQ(all.size(), 3u);
  ASSERT_TRUE(all[1].ok()) << all[1].error();
  EXPECT_EQ(all[1].value(0, 0), "f") << "one Query message: BEGIN; SELECT; COMMIT";
  EXPECT_EQ(node_of(*pg_, "BEGIN; SELECT pg_is_in_recovery(); SELECT pg_is_in_recovery()"), "primary");
  pg_->must("COMMIT");
  expect_reads_return_to_replica();
}

TEST_F(BasicRoutingTest, ReadOnlyTransactionRunsOnReplica) {
  pg_->must("BEGIN READ ONLY");
  EXPECT_EQ(node_of(*pg_), "replica");
  EXPECT_EQ(node_of(*pg_, "SELECT pg_is_in_recovery() FROM pgs_routing_basic WHERE id = 1"), "replica");
  pg_->must("COMMIT");
  pg_->must("START TRANSACTION READ ONLY, ISOLATION LEVEL REPEATABLE READ");
  EXPECT_EQ(node_of(*pg_), "replica");
  pg_->must("COMMIT");
}

TEST_F(BasicRoutingTest, CommentHintsWinBothWays) {
  EXPECT_EQ(node_of(*pg_, "/* pgsidecar: primary */ SELECT pg_is_in_recovery()"), "primary");
  EXPECT_EQ(node_of(*pg_, "SELECT pgs_routing_ro()"), "primary") << "a function not known read-only";
  // That call may have written on the primary (unknown function): the replica is eligible again once it
  // has replayed the primary's position after it (read-your-writes), hence a wait.
  EXPECT_TRUE(wait_node(*pg_, "replica", kRouteDeadline, "/* pgsidecar: replica */ SELECT pgs_routing_ro()"))
      << node_of(*pg_, "/* pgsidecar: replica */ SELECT pgs_routing_ro()");
  EXPECT_EQ(node_of(*pg_, "/* pgsidecar: replica */ SELECT pg_is_in_recovery() FROM pgs_routing_basic "
                          "WHERE id = 1 FOR UPDATE"),
            "primary")
      << "a replica hint must not send a row-locking statement to a replica";
  PgResult r = pg_->exec_params("/* pgsidecar: primary */ SELECT pg_is_in_recovery(), $1::int", {"1"});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(0, 0), "f") << "extended protocol: primary hint ignored";
}

// PRIMARY is a reserved word in Postgres' grammar, so the value must be quoted there ('primary');
// replica and auto parse either way. The proxy counts a SET batch as one that may have written, so
// each SET raises the read-your-writes floor: reads expected on the replica are waited for, and the
// primary hint is checked only once a second connection of the same user (same floor, no hint) is
// back on the replica.
TEST_F(BasicRoutingTest, SetRouteHintAppliesFromNextTransaction) {
  Pg control(proxy_->spec());
  ASSERT_TRUE(control.ok()) << control.error();
  pg_->must("SET pgsidecar.route = 'primary'");
  ASSERT_TRUE(wait_node(control, "replica", kRouteDeadline)) << node_of(control);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(node_of(*pg_), "primary") << "try " << i;

  pg_->must("SET pgsidecar.route = replica");
  EXPECT_TRUE(wait_node(*pg_, "replica", kRouteDeadline, "SELECT pgs_routing_ro()"))
      << "SET pgsidecar.route = replica did not let a not-provably-read-only SELECT reach the replica";

  pg_->must("SET pgsidecar.route = auto");
  EXPECT_TRUE(wait_node(*pg_, "replica", kRouteDeadline)) << node_of(*pg_);
  EXPECT_EQ(node_of(*pg_, "SELECT pgs_routing_ro()"), "primary") << "route = auto must drop the replica hint";

  pg_->must("SET pgsidecar.route TO 'primary'");
  ASSERT_TRUE(wait_node(control, "replica", kRouteDeadline)) << node_of(control);
  EXPECT_EQ(node_of(*pg_), "primary");
  pg_->must("RESET pgsidecar.route");
  EXPECT_TRUE(wait_node(*pg_, "replica", kRouteDeadline)) << "RESET pgsidecar.route: " << node_of(*pg_);
}

// A statement of a shape no other test uses, run N times, is counted by pg_stat_statements on the
// replica only (pg_stat_statements folds constants and ignores aliases, so the shape is the tag).
TEST_F(BasicRoutingTest, StatementCountsPerNode) {
  std::string tag = "reverse(lower(upper(md5(";
  std::string sql = "SELECT pg_is_in_recovery(), reverse(lower(upper(md5('pgs-routing-probe'))))";
  long primary_before = statement_calls(kPrimaryPort, tag);
  long replica_before = statement_calls(kReplicaPort, tag);
  constexpr int kRuns = 25;
  for (int i = 0; i < kRuns; ++i) ASSERT_EQ(node_of(*pg_, sql), "replica") << "try " << i;
  EXPECT_EQ(statement_calls(kReplicaPort, tag) - replica_before, kRuns);
  EXPECT_EQ(statement_calls(kPrimaryPort, tag) - primary_before, 0);
}

}  // namespace
}  // namespace pgs::it::routing

namespace pgs::it::routing {
namespace {

// Session pooling with a replica configured and a user-wide read-your-writes floor: a write's reply
// reaches the client (the floor's LSN probe runs only in transaction pooling; the reply must not wait
// for one that never comes).
TEST(SessionModeRouting, WriteRepliesArriveWithAUserWideFloor) {
  require_dev_services();
  if (is_direct()) GTEST_SKIP() << "needs the pgsidecar process";
  Pg{ConnSpec{}}.must("CREATE TABLE IF NOT EXISTS pgs_routing_basic (id int PRIMARY KEY, v int NOT NULL DEFAULT 0)");
  ProxyOptions o = routing_options({{"replica1", kReplicaPort}}, "read_your_writes = \"user\"\n");
  o.pool_mode = "session";
  auto proxy = Proxy::start(o);
  Pg c(proxy->spec());
  ASSERT_TRUE(c.ok()) << c.error();
  for (int i = 0; i < 3; ++i) {
    auto r = c.exec_within("UPDATE pgs_routing_basic SET v = v + 1 WHERE id = 1", Millis(5000));
    ASSERT_TRUE(r.has_value()) << "the UPDATE's reply never arrived (round " << i << ")";
    EXPECT_TRUE(r->ok()) << r->error();
  }
}

// Issue 10 item 1: session pooling keeps the session's semantics with a replica configured — a read
// first, then a write on the same connection (psql -c "select" -c "insert", psycopg2, node sql.begin)
// all run on the primary; nothing is sent to the replica, not even the read.
TEST(SessionModeRouting, WritesAfterAReadReachThePrimary) {
  require_dev_services();
  if (is_direct()) GTEST_SKIP() << "needs the pgsidecar process";
  Pg{ConnSpec{}}.must("CREATE TABLE IF NOT EXISTS pgs_routing_session (id int)");
  ProxyOptions o = routing_options({{"replica1", kReplicaPort}});
  o.pool_mode = "session";
  auto proxy = Proxy::start(o);
  // The replica is healthy (the monitor says so) before the session starts: a read could go there.
  ASSERT_TRUE(wait_until(
      [&] {
        std::string page = scrape_metrics(*proxy);
        return page.find("pgsidecar_replica_healthy{replica=\"replica1\"} 1") != std::string::npos;
      },
      Millis(20000)))
      << "the replica never became healthy";
  for (int round = 0; round < 3; ++round) {
    Pg c(proxy->spec());
    ASSERT_TRUE(c.ok()) << c.error();
    EXPECT_EQ(c.scalar("SELECT count(*) >= 0 FROM pgs_routing_session"), "t");
    PgResult w = c.exec("INSERT INTO pgs_routing_session VALUES (1)");
    EXPECT_TRUE(w.ok()) << "round " << round << ": " << w.error();
    EXPECT_EQ(node_of(c), "primary");
    c.must("BEGIN");
    EXPECT_EQ(node_of(c), "primary");
    EXPECT_TRUE(c.exec("UPDATE pgs_routing_session SET id = 2 WHERE id = 3").ok());
    c.must("COMMIT");
  }
  // psql -c "select" -c "insert": one session, a read then a write.
  RunResult r = run_psql(proxy->conninfo(), "",
                         {"-c", "SELECT count(*) FROM pgs_routing_session", "-c", "INSERT INTO pgs_routing_session VALUES (4)"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(routing_decisions(*proxy, "replica", "read_only"), 0) << "a session-mode read went to the replica";
}

// A replica's reply is held back until complete (a retry on the primary stays invisible), but never
// beyond what backpressure allows: with a small client_buffer_high_water a 40 kB row still arrives.
TEST(SmallBuffersRouting, LargeReplicaReplyWithASmallHighWaterMark) {
  require_dev_services();
  if (is_direct()) GTEST_SKIP() << "needs the pgsidecar process";
  ProxyOptions o = routing_options({{"replica1", kReplicaPort}});
  o.proxy_toml = "client_buffer_high_water = \"8KB\"\n";
  auto proxy = Proxy::start(o);
  Pg c(proxy->spec());
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_TRUE(wait_node(c, "replica", Millis(20000))) << "reads reach the replica";
  for (int i = 0; i < 3; ++i) {
    auto r = c.exec_within("SELECT pg_is_in_recovery(), repeat('x', 40000) FROM generate_series(1, 3)", Millis(5000));
    ASSERT_TRUE(r.has_value()) << "the replica's reply never arrived (round " << i << ")";
    ASSERT_EQ(r->rows(), 3) << r->error();
    EXPECT_EQ(r->value(0, 1).size(), 40000u);
  }
}

}  // namespace
}  // namespace pgs::it::routing
