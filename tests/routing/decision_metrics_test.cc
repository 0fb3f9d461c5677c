// Every routing reason the shared dev replica can produce, end to end: the statement runs through the
// real proxy, pg_is_in_recovery() says where it ran, and /metrics'
// pgsidecar_routing_decisions_total{target,reason} moves by exactly the decisions made. Also: statements
// above max_parse_bytes, replica_safe_functions, and a replica that is down. The reasons that need a
// replica the test may delay or pause (lsn_floor, replica_lagging) are in read_your_writes_test.cc and
// replica_lag_test.cc.
#include <gtest/gtest.h>

#include <map>
#include <utility>

#include "tests/integration/harness.h"
#include "tests/routing/routing_support.h"

namespace pgs::it::routing {
namespace {

constexpr Millis kRouteDeadline(15000);
constexpr Millis kMetricsDeadline(10000);

void make_test_objects() {
  Pg owner(ConnSpec{});
  if (!owner.ok()) throw std::runtime_error("flopods login: " + owner.error());
  owner.must("CREATE TABLE IF NOT EXISTS pgs_routing_basic (id int PRIMARY KEY, v int NOT NULL DEFAULT 0)");
  owner.must("INSERT INTO pgs_routing_basic VALUES (1, 0) ON CONFLICT DO NOTHING");
  owner.must("CREATE SEQUENCE IF NOT EXISTS pgs_routing_seq");
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

struct Step {
  std::vector<std::string> sql;  // run in order on one fresh connection
  std::string node;              // where the last statement must run ("" = not checked: it fails)
  std::string target, reason;    // the one decision it adds
};

class RoutingDecisionsTest : public ProxyTest {
 protected:
  static void SetUpTestSuite() {
    require_dev_services();
    make_test_objects();
  }

  void SetUp() override {
    ProxyTest::SetUp();
    PGS_IT_REQUIRE_PROXY();
    start_proxy(routing_options({{"replica1", kReplicaPort}}, "max_parse_bytes = \"1kB\"\n"));
    Pg pg(proxy_->spec());
    ASSERT_TRUE(pg.ok()) << pg.error();
    ASSERT_TRUE(wait_node(pg, "replica", kRouteDeadline)) << node_of(pg);
  }
};

// Each step runs on its own connection (read_your_writes = client: a write raises only that
// connection's floor), so the decisions are known in advance; the counters must reach them and stay
// there (no decision counted twice, none under another reason).
TEST_F(RoutingDecisionsTest, EachReasonIsCountedPerTarget) {
  std::string oversized = "SELECT pg_is_in_recovery() /* " + std::string(1200, 'x') + " */";
  std::vector<Step> steps = {
      {{"SELECT pg_is_in_recovery()"}, "replica", "replica", "read_only"},
      {{"/* pgsidecar: primary */ SELECT pg_is_in_recovery()"}, "primary", "primary", "hint_primary"},
      {{"/* pgsidecar: replica */ SELECT pgs_routing_ro()"}, "replica", "replica", "hint_replica"},
      {{"BEGIN", "SELECT pg_is_in_recovery()"}, "primary", "primary", "in_transaction"},
      {{"UPDATE pgs_routing_basic SET v = v + 1 WHERE id = 1 RETURNING pg_is_in_recovery()"}, "primary",
       "primary", "write"},
      {{"SELECT pg_is_in_recovery(), nextval('pgs_routing_seq')"}, "primary", "primary", "not_read_only"},
      {{"SELECT pgs_routing_ro()"}, "primary", "primary", "not_read_only"},
      {{"SELEC pg_is_in_recovery()"}, "", "primary", "parse_error"},
      {{oversized}, "primary", "primary", "oversized"},
  };
  // SetUp's reads ended with the first one on the replica: once it shows, the baseline is complete.
  ASSERT_EQ(wait_decisions(*proxy_, {{"replica", "read_only", 1}}, kMetricsDeadline), "");
  std::map<std::pair<std::string, std::string>, double> want;
  for (const auto& s : steps) want[{s.target, s.reason}] += 0;
  for (auto& [key, n] : want) n = routing_decisions(*proxy_, key.first, key.second);
  for (const auto& [key, n] : want) ASSERT_GE(n, 0) << "/metrics unreadable";

  for (const auto& s : steps) {
    Pg pg(proxy_->spec());
    ASSERT_TRUE(pg.ok()) << pg.error();
    for (size_t i = 0; i + 1 < s.sql.size(); ++i) pg.must(s.sql[i]);
    std::string got = node_of(pg, s.sql.back());
    if (s.node.empty()) {
      EXPECT_EQ(got.rfind("error: [42601]", 0), 0u) << s.sql.back() << ": " << got;
    } else {
      EXPECT_EQ(got, s.node) << s.sql.back().substr(0, 80) << " (" << s.reason << ")";
    }
    want[{s.target, s.reason}] += 1;
  }
  std::vector<DecisionCount> wanted;
  for (const auto& [key, n] : want) wanted.push_back({key.first, key.second, n});
  std::string missing = wait_decisions(*proxy_, wanted, kMetricsDeadline);
  EXPECT_EQ(missing, "") << "counters that did not move as expected";
  // The BEGIN step's transaction ended with its connection: nothing else may have been counted.
  for (const auto& w : wanted) {
    EXPECT_EQ(routing_decisions(*proxy_, w.target, w.reason), w.want) << w.target << "/" << w.reason;
  }
}

// A transaction bound to the replica is timed under target="replica" in
// pgsidecar_transaction_duration_seconds (every binding was labelled "primary" before).
TEST_F(RoutingDecisionsTest, TransactionsOnTheReplicaAreTimedAsReplica) {
  auto count = [&](const char* target) {
    return metric_value(scrape_metrics(*proxy_), "pgsidecar_transaction_duration_seconds_count",
                        std::string("target=\"") + target + "\"");
  };
  const double replica_before = count("replica");
  Pg pg(proxy_->spec());
  ASSERT_TRUE(pg.ok()) << pg.error();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(node_of(pg), "replica");
  EXPECT_TRUE(wait_until([&] { return count("replica") >= replica_before + 3; }, kMetricsDeadline, Millis(50)))
      << "replica transactions timed: " << count("replica") - replica_before;
}

// The session hint: SET pgsidecar.route is itself a decision (a SET: primary, not_read_only); the reads
// after it count as hint_primary / hint_replica.
TEST_F(RoutingDecisionsTest, SessionHintCountsAsHint) {
  double primary_before = routing_decisions(*proxy_, "primary", "hint_primary");
  double replica_before = routing_decisions(*proxy_, "replica", "hint_replica");
  Pg pg(proxy_->spec());
  ASSERT_TRUE(pg.ok()) << pg.error();
  pg.must("SET pgsidecar.route = 'primary'");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(node_of(pg), "primary");
  pg.must("SET pgsidecar.route = replica");
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(wait_node(pg, "replica", kRouteDeadline, "SELECT pgs_routing_ro()")) << "try " << i;
  }
  EXPECT_EQ(wait_decisions(*proxy_,
                           {{"primary", "hint_primary", primary_before + 3},
                            {"replica", "hint_replica", replica_before + 3}},
                           kMetricsDeadline),
            "");
}

// BEGIN; SET TRANSACTION READ ONLY in the same request starts a read-only transaction: a replica may
// run it. Simple protocol (one Query string) and extended protocol (one pipeline batch up to Sync).
TEST_F(RoutingDecisionsTest, SetTransactionReadOnlyRunsOnReplica) {
  double before = routing_decisions(*proxy_, "replica", "read_only");
  Pg pg(proxy_->spec());
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::vector<PgResult> all =
      pg.exec_all("BEGIN; SET TRANSACTION READ ONLY; SELECT pg_is_in_recovery() FROM pgs_routing_basic; COMMIT");
  ASSERT_EQ(all.size(), 4u);
  ASSERT_TRUE(all[2].ok()) << all[2].error();
  EXPECT_EQ(all[2].value(0, 0), "t") << "simple protocol: BEGIN; SET TRANSACTION READ ONLY ran on the primary";

  // Extended protocol, as a driver sends it: BEGIN and SET TRANSACTION in one batch, then the reads.
  PGconn* c = pg.get();
  ASSERT_EQ(PQenterPipelineMode(c), 1);
  ASSERT_EQ(PQsendQueryParams(c, "BEGIN", 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQsendQueryParams(c, "SET TRANSACTION READ ONLY", 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQpipelineSync(c), 1);
  std::vector<ExecStatusType> statuses;
  while (statuses.size() < 3) {
    PGresult* r = PQgetResult(c);
    if (r == nullptr) continue;  // end of one query's results
    statuses.push_back(PQresultStatus(r));
    PQclear(r);
  }
  EXPECT_EQ(statuses, (std::vector<ExecStatusType>{PGRES_COMMAND_OK, PGRES_COMMAND_OK, PGRES_PIPELINE_SYNC}));
  ASSERT_EQ(PQexitPipelineMode(c), 1);
  EXPECT_EQ(node_of(pg), "replica") << "extended protocol: BEGIN + SET TRANSACTION READ ONLY batch on the primary";
  PgResult w = pg.exec("UPDATE pgs_routing_basic SET v = v WHERE id = 1");
  EXPECT_EQ(w.sqlstate(), "25006") << "a write in the read-only transaction: " << w.error();
  pg.must("ROLLBACK");
  EXPECT_EQ(wait_decisions(*proxy_, {{"replica", "read_only", before + 2}}, kMetricsDeadline), "");
}

// A statement longer than max_parse_bytes (1kB here) is not parsed: primary, even when it is a plain
// SELECT; the same statement below the limit reads from the replica.
TEST_F(RoutingDecisionsTest, OversizedStatementGoesToPrimary) {
  Pg pg(proxy_->spec());
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string pad(600, 'y');
  EXPECT_EQ(node_of(pg, "SELECT pg_is_in_recovery(), '" + pad + "'"), "replica");
  EXPECT_EQ(node_of(pg, "SELECT pg_is_in_recovery(), '" + pad + pad + "'"), "primary");
  PgResult r = pg.exec_params("SELECT pg_is_in_recovery(), $1::text", {pad + pad});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(0, 0), "t") << "parameters do not count towards max_parse_bytes";
}

// Proxies with their own [routing] / [[replicas]] settings.
class RoutingConfigTest : public ProxyTest {
 protected:
  static void SetUpTestSuite() {
    require_dev_services();
    make_test_objects();
  }
};

// [routing] replica_safe_functions: a user function named there reads from the replica without a hint.
TEST_F(RoutingConfigTest, ReplicaSafeFunctionRunsOnReplica) {
  PGS_IT_REQUIRE_PROXY();
  start_proxy(routing_options({{"replica1", kReplicaPort}},
                              "replica_safe_functions = [\"pgs_routing_ro\", \"public.pgs_routing_ro\"]\n"));
  Pg pg(proxy_->spec());
  ASSERT_TRUE(pg.ok()) << pg.error();
  ASSERT_TRUE(wait_node(pg, "replica", kRouteDeadline)) << node_of(pg);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(node_of(pg, "SELECT pgs_routing_ro()"), "replica") << "try " << i;
  EXPECT_EQ(node_of(pg, "SELECT public.pgs_routing_ro()"), "replica");
  EXPECT_EQ(node_of(pg, "SELECT pgs_routing_ro(), nextval('pgs_routing_seq')"), "primary")
      << "only the listed function is trusted";
}

// A configured replica that does not answer: reads go to the primary, counted as no_replica.
TEST_F(RoutingConfigTest, DownReplicaCountsNoReplica) {
  PGS_IT_REQUIRE_PROXY();
  start_proxy(routing_options({{"dead1", free_port()}}));
  Pg pg(proxy_->spec());
  ASSERT_TRUE(pg.ok()) << pg.error();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(node_of(pg), "primary") << "try " << i;
  EXPECT_EQ(wait_decisions(*proxy_, {{"primary", "no_replica", 5}}, kMetricsDeadline), "");
  EXPECT_EQ(routing_decisions(*proxy_, "replica", "read_only"), 0);
}

// Texts that differ only in numeric constants are classified once (the shape cache): the same reads
// with other ids are shape hits, still routed to the replica; /metrics counts them.
TEST_F(RoutingConfigTest, NumericConstantsAreClassifiedOnceAndRoutedAlike) {
  PGS_IT_REQUIRE_PROXY();
  start_proxy(routing_options({{"replica1", kReplicaPort}}));
  Pg pg(proxy_->spec());
  ASSERT_TRUE(pg.ok()) << pg.error();
  ASSERT_TRUE(wait_node(pg, "replica", kRouteDeadline)) << node_of(pg);
  for (int id = 1; id <= 20; ++id) {
    PgResult r = pg.exec("SELECT v FROM pgs_routing_basic WHERE id = 1 OR id = " + std::to_string(10000 + id));
    EXPECT_TRUE(r.ok() && r.rows() == 1) << r.error();  // no function call: shape-safe
  }
  EXPECT_EQ(node_of(pg, "SELECT pg_catalog.pg_is_in_recovery() FROM pgs_routing_basic WHERE id = 12345 OR true"),
            "replica");
  auto shape_hits = [&] {
    std::string page = scrape_metrics(*proxy_);
    const std::string series = "pgsidecar_classifier_lookups_total{result=\"shape_hit\"} ";
    size_t at = page.find(series);
    return at == std::string::npos ? 0.0 : std::atof(page.c_str() + at + series.size());
  };
  EXPECT_TRUE(wait_until([&] { return shape_hits() >= 19; }, kMetricsDeadline)) << shape_hits();
  EXPECT_EQ(wait_decisions(*proxy_, {{"replica", "read_only", 20}}, kMetricsDeadline), "");
}

}  // namespace
}  // namespace pgs::it::routing
