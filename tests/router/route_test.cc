// route(): statement class x session x replica snapshot -> target and reason.
#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "router/classify.h"
#include "router/route.h"

namespace pgs::router {
namespace {

using std::chrono::milliseconds;

ReplicaSnapshot up(Lsn replay = 1000, uint32_t outstanding = 0, uint32_t weight = 1) {
  ReplicaSnapshot r;
  r.healthy = true;
  r.replay_lsn = replay;
  r.outstanding = outstanding;
  r.weight = weight;
  return r;
}

ReplicaSnapshot down() { return ReplicaSnapshot{}; }

Decision route_sql(const char* sql, const std::vector<ReplicaSnapshot>& rs, SessionView s = {},
                   RouteOptions o = {}, uint64_t counter = 0) {
  RouteInput in;
  in.statement = summarize(classify(sql));
  in.session = s;
  in.replicas = rs;
  in.counter = counter;
  return route(in, o);
}

struct RouteCase {
  const char* sql;
  bool to_replica;
  Reason reason;
};

class StatementRouteTest : public ::testing::TestWithParam<RouteCase> {};

TEST_P(StatementRouteTest, TwoHealthyReplicas) {
  const RouteCase& r = GetParam();
  Decision d = route_sql(r.sql, {up(), up()});
  EXPECT_EQ(!d.primary(), r.to_replica) << r.sql;
  EXPECT_EQ(reason_name(d.reason), reason_name(r.reason)) << r.sql;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, StatementRouteTest,
    ::testing::Values(
        RouteCase{"SELECT * FROM t", true, Reason::read_only},
        RouteCase{"VALUES (1)", true, Reason::read_only},
        RouteCase{"SHOW work_mem", true, Reason::read_only},
        RouteCase{"EXPLAIN ANALYZE SELECT 1", true, Reason::read_only},
        RouteCase{"BEGIN READ ONLY", true, Reason::read_only},
        RouteCase{"SELECT 1; SELECT 2", true, Reason::read_only},
        RouteCase{"SELECT nextval('s')", false, Reason::not_read_only},
        RouteCase{"WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM x", false, Reason::write},
        RouteCase{"SELECT * FROM t FOR NO KEY UPDATE", false, Reason::not_read_only},
        RouteCase{"SELECT * INTO t2 FROM t", false, Reason::write},
        RouteCase{"SELECT set_config('a.b', 'c', false)", false, Reason::not_read_only},
        RouteCase{"SELECT pg_advisory_lock(1)", false, Reason::not_read_only},
        RouteCase{"SELECT my_func()", false, Reason::not_read_only},
        RouteCase{"EXPLAIN ANALYZE DELETE FROM t", false, Reason::write},
        RouteCase{"INSERT INTO t VALUES (1)", false, Reason::write},
        RouteCase{"SELECT 1; DELETE FROM t", false, Reason::write},
        RouteCase{"CALL p()", false, Reason::write},
        RouteCase{"BEGIN", false, Reason::in_transaction},
        RouteCase{"START TRANSACTION ISOLATION LEVEL REPEATABLE READ", false, Reason::in_transaction},
        RouteCase{"BEGIN; SELECT 1; COMMIT", false, Reason::in_transaction},
        RouteCase{"/* pgsidecar: replica */ BEGIN", false, Reason::in_transaction},
        RouteCase{"BEGIN; SET TRANSACTION READ ONLY", true, Reason::read_only},
        RouteCase{"BEGIN; SET TRANSACTION READ ONLY; SELECT 1; COMMIT", true, Reason::read_only},
        RouteCase{"START TRANSACTION; SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", true,
                  Reason::read_only},
        RouteCase{"BEGIN; SET TRANSACTION READ WRITE", false, Reason::in_transaction},
        RouteCase{"BEGIN ISOLATION LEVEL SERIALIZABLE; SET TRANSACTION READ ONLY", false, Reason::in_transaction},
        RouteCase{"BEGIN; SET TRANSACTION ISOLATION LEVEL SERIALIZABLE READ ONLY", false, Reason::in_transaction},
        RouteCase{"BEGIN; SELECT 1; SET TRANSACTION READ ONLY", false, Reason::in_transaction},
        RouteCase{"SET TRANSACTION READ ONLY", true, Reason::read_only},
        RouteCase{"SET search_path = a", false, Reason::not_read_only},
        RouteCase{"LISTEN ch", false, Reason::not_read_only},
        RouteCase{"SELEC 1", false, Reason::parse_error},
        RouteCase{"/* pgsidecar: primary */ SELECT 1", false, Reason::hint_primary},
        RouteCase{"/* pgsidecar: replica */ SELECT 1", true, Reason::hint_replica},
        RouteCase{"/* pgsidecar: replica */ SELECT my_read_only_func()", true, Reason::hint_replica},
        RouteCase{"/* pgsidecar: replica */ SELECT * FROM t FOR UPDATE", false, Reason::not_read_only},
        RouteCase{"/* pgsidecar: replica */ DELETE FROM t", false, Reason::write},
        RouteCase{"/* pgsidecar: replica */ SELECT set_config('a.b', 'c', false)", false, Reason::not_read_only},
        RouteCase{"/* pgsidecar: replica */ SELECT nextval('s')", true, Reason::hint_replica}));

TEST(Route, OversizedGoesToPrimary) {
  ClassifyOptions co;
  co.max_parse_bytes = 8;
  std::vector<ReplicaSnapshot> rs{up()};
  RouteInput in;
  in.statement = summarize(classify("SELECT 1 FROM t", co));
  in.replicas = rs;
  Decision d = route(in, {});
  EXPECT_TRUE(d.primary());
  EXPECT_EQ(d.reason, Reason::oversized);
}

TEST(Route, NoReplicas) {
  Decision d = route_sql("SELECT 1", {});
  EXPECT_TRUE(d.primary());
  EXPECT_EQ(d.reason, Reason::no_replica);
  d = route_sql("SELECT 1", {down(), down()});
  EXPECT_TRUE(d.primary());
  EXPECT_EQ(d.reason, Reason::no_replica);
}

TEST(Route, DownReplicaIsSkipped) {
  for (uint64_t counter = 0; counter < 10; ++counter) {
    Decision d = route_sql("SELECT 1", {down(), up(), down()}, {}, {}, counter);
    EXPECT_EQ(d.target, 1);
  }
}

TEST(Route, LaggingReplicas) {
  ReplicaSnapshot lag_bytes = up();
  lag_bytes.lag_bytes = 100u << 20;
  ReplicaSnapshot lag_time = up();
  lag_time.lag = milliseconds(60000);
  Decision d = route_sql("SELECT 1", {lag_bytes, lag_time});
  EXPECT_TRUE(d.primary());
  EXPECT_EQ(d.reason, Reason::replica_lagging);
  d = route_sql("SELECT 1", {lag_bytes, up(), lag_time});
  EXPECT_EQ(d.target, 1);
  RouteOptions unlimited;
  unlimited.max_lag_bytes = 0;
  unlimited.max_lag = milliseconds(0);
  d = route_sql("SELECT 1", {lag_bytes, lag_time}, {}, unlimited);
  EXPECT_FALSE(d.primary());
}

// A measure ages: a replica 9 s behind when last probed may be 9 s plus the time since behind now, and is
// held against max_lag (10 s) as such. A caught-up replica (lag 0) not probed for longer than max_lag
// is no proof either. Without a time limit the age does not matter.
TEST(Route, TheLagIsTheMeasuredLagPlusTheAgeOfTheMeasure) {
  ReplicaSnapshot behind = up();
  behind.lag = milliseconds(9000);
  RouteInput in;
  in.statement = summarize(classify("SELECT 1"));
  std::vector<ReplicaSnapshot> rs{behind};
  in.replicas = rs;
  in.replicas_age = milliseconds(500);
  EXPECT_FALSE(route(in, {}).primary());
  in.replicas_age = milliseconds(1500);
  Decision d = route(in, {});
  EXPECT_TRUE(d.primary());
  EXPECT_EQ(d.reason, Reason::replica_lagging);
  rs = {up()};
  in.replicas = rs;
  in.replicas_age = milliseconds(10001);
  EXPECT_EQ(route(in, {}).reason, Reason::replica_lagging);
  in.replicas_age = milliseconds(10000);  // the limit is inclusive
  EXPECT_FALSE(route(in, {}).primary());
  RouteOptions no_time_limit;
  no_time_limit.max_lag = milliseconds(0);
  in.replicas_age = milliseconds(3600000);
  EXPECT_FALSE(route(in, no_time_limit).primary());
}

// The monitor takes a replica beyond max lag out (healthy = false) and says why: the router reports
// replica_lagging for it, no_replica for one that is down.
TEST(Route, MonitorLaggingReplicaIsLaggingNotDown) {
  ReplicaSnapshot lagging = down();
  lagging.lagging = true;
  Decision d = route_sql("SELECT 1", {lagging});
  EXPECT_TRUE(d.primary());
  EXPECT_EQ(reason_name(d.reason), "replica_lagging");
  d = route_sql("SELECT 1", {down(), lagging});
  EXPECT_EQ(reason_name(d.reason), "replica_lagging");
  d = route_sql("SELECT 1", {lagging, up()});
  EXPECT_EQ(d.target, 1);
  ReplicaSnapshot healthy_but_flagged = up();
  healthy_but_flagged.lagging = true;
  d = route_sql("SELECT 1", {healthy_but_flagged});
  EXPECT_TRUE(d.primary()) << "a replica flagged lagging takes no reads";
  EXPECT_EQ(reason_name(d.reason), "replica_lagging");
}

// Extended protocol: the statements of one batch are combined one by one.
TEST(Route, CombineStatementsOfABatch) {
  auto combined = [](std::vector<const char*> sqls) {
    StatementSummary acc = summarize(classify(sqls.front()));
    for (size_t i = 1; i < sqls.size(); ++i) combine_statements(acc, summarize(classify(sqls[i])));
    RouteInput in;
    in.statement = acc;
    std::vector<ReplicaSnapshot> rs{up()};
    in.replicas = rs;
    return route(in, {});
  };
  Decision d = combined({"BEGIN", "SET TRANSACTION READ ONLY"});
  EXPECT_FALSE(d.primary());
  EXPECT_EQ(reason_name(d.reason), "read_only");
  d = combined({"BEGIN", "SET TRANSACTION READ ONLY", "SELECT 1"});
  EXPECT_FALSE(d.primary());
  d = combined({"BEGIN", "SELECT 1", "SET TRANSACTION READ ONLY"});
  EXPECT_EQ(reason_name(d.reason), "in_transaction");
  d = combined({"BEGIN ISOLATION LEVEL SERIALIZABLE", "SET TRANSACTION READ ONLY"});
  EXPECT_EQ(reason_name(d.reason), "in_transaction");
  d = combined({"BEGIN", "SET TRANSACTION READ ONLY", "INSERT INTO t VALUES (1)"});
  EXPECT_TRUE(d.primary());
  d = combined({"SELECT 1", "SELECT 2"});
  EXPECT_EQ(reason_name(d.reason), "read_only");
  d = combined({"SELECT 1", "/* pgsidecar: primary */ SELECT 2"});
  EXPECT_EQ(reason_name(d.reason), "hint_primary");
}

TEST(Route, LsnFloorReadYourWrites) {
  SessionView s;
  s.lsn_floor = 5000;
  Decision d = route_sql("SELECT 1", {up(4999), up(3000)}, s);
  EXPECT_TRUE(d.primary());
  EXPECT_EQ(d.reason, Reason::lsn_floor);
  d = route_sql("SELECT 1", {up(4999), up(5000)}, s);
  EXPECT_EQ(d.target, 1);
  EXPECT_EQ(d.reason, Reason::read_only);
  RouteOptions eventual;
  eventual.consistency = ConsistencyMode::eventual;
  d = route_sql("SELECT 1", {up(10)}, s, eventual);
  EXPECT_EQ(d.target, 0);
}

TEST(Route, MixedReasonsReportTheLastFilter) {
  SessionView s;
  s.lsn_floor = 5000;
  ReplicaSnapshot lagging = up(9000);
  lagging.lag_bytes = 1ull << 40;
  Decision d = route_sql("SELECT 1", {down(), lagging, up(10)}, s);
  EXPECT_TRUE(d.primary());
  EXPECT_EQ(d.reason, Reason::lsn_floor);
}

TEST(Route, ConsistencyPrimary) {
  RouteOptions o;
  o.consistency = ConsistencyMode::primary;
  Decision d = route_sql("SELECT 1", {up()}, {}, o);
  EXPECT_TRUE(d.primary());
  EXPECT_EQ(d.reason, Reason::consistency_primary);
}

TEST(Route, Transactions) {
  SessionView rw;
  rw.in_transaction = true;
  Decision d = route_sql("SELECT 1", {up()}, rw);
  EXPECT_TRUE(d.primary());
  EXPECT_EQ(d.reason, Reason::in_transaction);

  SessionView ro_bound;
  ro_bound.in_transaction = true;
  ro_bound.transaction_read_only = true;
  ro_bound.bound_target = 1;
  d = route_sql("SELECT 1", {up(), up()}, ro_bound);
  EXPECT_EQ(d.target, 1);
  EXPECT_EQ(d.reason, Reason::in_transaction);
  d = route_sql("COMMIT", {up(), up()}, ro_bound);
  EXPECT_EQ(d.target, 1);

  RouteOptions no_ro;
  no_ro.read_only_transactions_on_replicas = false;
  d = route_sql("BEGIN READ ONLY", {up()}, {}, no_ro);
  EXPECT_TRUE(d.primary());
}

TEST(Route, PinnedSessionStaysOnItsServer) {
  SessionView s;
  s.bound_target = kPrimary;
  s.pinned = true;
  Decision d = route_sql("SELECT 1", {up()}, s);
  EXPECT_TRUE(d.primary());
  EXPECT_EQ(d.reason, Reason::pinned);
}

TEST(Route, SessionHint) {
  SessionView s;
  s.route_hint = RouteHint::primary;
  Decision d = route_sql("SELECT 1", {up()}, s);
  EXPECT_TRUE(d.primary());
  EXPECT_EQ(d.reason, Reason::hint_primary);
  // The statement's own comment wins over the session setting.
  d = route_sql("/* pgsidecar: replica */ SELECT 1", {up()}, s);
  EXPECT_FALSE(d.primary());
  s.route_hint = RouteHint::replica;
  d = route_sql("SELECT app_fn()", {up()}, s);
  EXPECT_FALSE(d.primary());
  EXPECT_EQ(d.reason, Reason::hint_replica);
  // A replica hint never overrides read-your-writes or health.
  s.lsn_floor = 100;
  d = route_sql("SELECT 1", {up(50)}, s);
  EXPECT_TRUE(d.primary());
  EXPECT_EQ(d.reason, Reason::lsn_floor);
}

TEST(Route, LeastOutstanding) {
  Decision d = route_sql("SELECT 1", {up(1000, 5), up(1000, 2), up(1000, 9)});
  EXPECT_EQ(d.target, 1);
  // Weighted by capacity: 4 in flight on weight 4 beats 2 on weight 1.
  d = route_sql("SELECT 1", {up(1000, 2, 1), up(1000, 4, 4)});
  EXPECT_EQ(d.target, 1);
  // Ties rotate with the counter.
  std::map<int, int> seen;
  for (uint64_t c = 0; c < 6; ++c) ++seen[route_sql("SELECT 1", {up(), up(), up()}, {}, {}, c).target];
  EXPECT_EQ(seen.size(), 3u);
}

TEST(Route, RoundRobin) {
  RouteOptions o;
  o.policy = LoadBalance::round_robin;
  std::vector<int> targets;
  for (uint64_t c = 0; c < 6; ++c) targets.push_back(route_sql("SELECT 1", {up(), down(), up()}, {}, o, c).target);
  EXPECT_EQ(targets, (std::vector<int>{0, 2, 0, 2, 0, 2}));
}

TEST(Route, Weighted) {
  RouteOptions o;
  o.policy = LoadBalance::weighted;
  std::map<int, int> seen;
  for (uint64_t c = 0; c < 400; ++c) {
    ++seen[route_sql("SELECT 1", {up(1000, 0, 1), up(1000, 0, 3), up(1000, 0, 0)}, {}, o, c).target];
  }
  EXPECT_EQ(seen[0], 100);
  EXPECT_EQ(seen[1], 300);
  EXPECT_EQ(seen.count(2), 0u);
}

TEST(Route, ReasonNames) {
  EXPECT_EQ(kAllReasons.size(), kReasonNames.size());
  for (Reason r : kAllReasons) EXPECT_FALSE(reason_name(r).empty());
  EXPECT_EQ(reason_name(Reason::lsn_floor), "lsn_floor");
  EXPECT_EQ(reason_name(Reason::consistency_primary), "consistency_primary");
}

}  // namespace
}  // namespace pgs::router
