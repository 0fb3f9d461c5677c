// The monitor's pure rules: probe row parsing, lag, verdicts, hysteresis, folding a round into a
// snapshot, change detection and the adapters to the router and config.
#include <gtest/gtest.h>

#include "proxy/monitor/adapters.h"
#include "proxy/monitor/health_eval.h"

namespace pgs::monitor {
namespace {

using std::chrono::steady_clock;

ProbeResult replica(Lsn receive, Lsn replay, std::optional<double> age_ms = std::nullopt) {
  ProbeResult p;
  p.reached = true;
  p.failure = Reason::ok;
  p.in_recovery = true;
  p.receive_lsn = receive;
  p.replay_lsn = replay;
  p.replay_age_ms = age_ms;
  return p;
}

ProbeResult primary(Lsn current) {
  ProbeResult p;
  p.reached = true;
  p.failure = Reason::ok;
  p.current_lsn = current;
  return p;
}

ProbeResult down(Reason why, std::string error = "boom") {
  ProbeResult p;
  p.failure = why;
  p.error = std::move(error);
  return p;
}

TEST(ProbeRow, PrimaryRow) {
  auto r = probe_from_row({"f", "0/10A037A0", std::nullopt, std::nullopt, std::nullopt, "f"});
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->reached);
  EXPECT_FALSE(r->in_recovery);
  EXPECT_EQ(r->current_lsn, 0x10A037A0u);
  EXPECT_FALSE(r->replay_lsn);
  EXPECT_FALSE(r->replay_age_ms);
}

TEST(ProbeRow, StandbyRow) {
  auto r = probe_from_row({"t", std::nullopt, "0/10A05AD0", "0/10A05AD8", "6.402", "t"});
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->in_recovery);
  EXPECT_TRUE(r->replay_paused);
  EXPECT_FALSE(r->current_lsn);
  EXPECT_EQ(r->replay_lsn, 0x10A05AD0u);
  EXPECT_EQ(r->receive_lsn, 0x10A05AD8u);
  EXPECT_DOUBLE_EQ(*r->replay_age_ms, 6.402);
  EXPECT_TRUE(probe_from_row({"t", std::nullopt, "0/1", "0/1", "-3.5e2", "f"}));  // clock skew is data
}

TEST(ProbeRow, RejectsMalformedValues) {
  const ProbeRow bad[] = {
      {std::nullopt, "0/1", std::nullopt, std::nullopt, std::nullopt, "f"},  // recovery unknown
      {"yes", "0/1", std::nullopt, std::nullopt, std::nullopt, "f"},
      {"f", "zz", std::nullopt, std::nullopt, std::nullopt, "f"},
      {"t", std::nullopt, "0/1x", "0/1", std::nullopt, "f"},
      {"t", std::nullopt, "0/1", "", std::nullopt, "f"},
      {"t", std::nullopt, "0/1", "0/1", "1.5ms", "f"},
      {"t", std::nullopt, "0/1", "0/1", "nan", "f"},
      {"t", std::nullopt, "0/1", "0/1", "1", "maybe"},
  };
  for (const auto& row : bad) EXPECT_FALSE(probe_from_row(row));
}

TEST(Lag, BytesAgainstPrimaryLsn) {
  EXPECT_EQ(compute_lag(replica(1000, 1000), 1000).bytes, 0u);
  EXPECT_EQ(compute_lag(replica(1000, 400), 1000).bytes, 600u);
  EXPECT_EQ(compute_lag(replica(1000, 1000), 5000).bytes, 4000u);  // receiver behind the primary
  EXPECT_EQ(compute_lag(replica(2000, 2000), 1000).bytes, 0u);     // primary read a moment earlier
  EXPECT_EQ(compute_lag(replica(3000, 1000), 0).bytes, 2000u);     // primary LSN unknown: receive bounds it
  EXPECT_EQ(compute_lag(replica(3000, 1000), 2000).bytes, 2000u);  // stale primary LSN: receive is newer
}

TEST(Lag, TimeIsZeroWhenAllReceivedIsReplayed) {
  // Idle primary: the last replayed commit is an hour old, but nothing is waiting to be replayed.
  EXPECT_EQ(compute_lag(replica(1000, 1000, 3.6e6), 1000).time, Millis{0});
  // A restarted WAL receiver reports the start of its segment: receive < replay.
  EXPECT_EQ(compute_lag(replica(500, 1000, 3.6e6), 1000).time, Millis{0});
  // Replay reached the primary even though the receive LSN is unknown (no WAL receiver).
  ProbeResult no_receiver = replica(0, 1000, 3.6e6);
  no_receiver.receive_lsn.reset();
  EXPECT_EQ(compute_lag(no_receiver, 1000).time, Millis{0});
  EXPECT_EQ(compute_lag(no_receiver, 2000).time, Millis{3600000});
}

TEST(Lag, TimeIsReplayAgeWhileBehind) {
  EXPECT_EQ(compute_lag(replica(2000, 1000, 1234.9), 2000).time, Millis{1234});
  EXPECT_EQ(compute_lag(replica(2000, 1000, -50.0), 2000).time, Millis{0});  // clock skew
  EXPECT_EQ(compute_lag(replica(2000, 1000, std::nullopt), 2000).time, Millis{0});  // nothing replayed yet
}

TEST(Judge, Primary) {
  EXPECT_EQ(judge_primary(primary(1)), Reason::ok);
  ProbeResult standby = primary(1);
  standby.in_recovery = true;
  EXPECT_EQ(judge_primary(standby), Reason::in_recovery);
  EXPECT_EQ(judge_primary(down(Reason::timeout)), Reason::timeout);
}

TEST(Judge, Replica) {
  LagLimits limits{1000, Millis{500}};
  EXPECT_EQ(judge_replica(replica(1, 1), {1000, Millis{500}}, limits), Reason::ok);  // limits inclusive
  EXPECT_EQ(judge_replica(replica(1, 1), {1001, Millis{0}}, limits), Reason::lagging_bytes);
  EXPECT_EQ(judge_replica(replica(1, 1), {0, Millis{501}}, limits), Reason::lagging_time);
  EXPECT_EQ(judge_replica(replica(1, 1), {1u << 30, Millis{1 << 30}}, LagLimits{0, Millis{0}}), Reason::ok);
  ProbeResult promoted = replica(1, 1);
  promoted.in_recovery = false;
  EXPECT_EQ(judge_replica(promoted, {}, limits), Reason::not_in_recovery);
  EXPECT_EQ(judge_replica(down(Reason::unreachable), {}, limits), Reason::unreachable);
  EXPECT_EQ(judge_replica(down(Reason::backoff), {}, limits), Reason::backoff);
}

// Runs a sequence of check outcomes ('+' good, '-' bad) and returns the health after each ('U'/'D').
std::string run_checks(std::string_view checks, int rise, int fall) {
  HealthState s;
  std::string out;
  for (char c : checks) {
    s = step_health(s, c == '+', rise, fall);
    out += s.healthy ? 'U' : 'D';
  }
  return out;
}

TEST(Hysteresis, Table) {
  struct Case {
    std::string_view checks;
    int rise, fall;
    std::string_view health;
  } cases[] = {
      {"+", 2, 1, "U"},               // the first verdict counts at once
      {"-", 2, 1, "D"},
      {"+-", 2, 1, "UD"},             // out after one failure
      {"+-+", 2, 1, "UDD"},           // one good check is not enough to come back
      {"+-++", 2, 1, "UDDU"},         // two in a row are
      {"+-+-++", 2, 1, "UDDDDU"},     // a failure resets the count
      {"--+++", 3, 1, "DDDDU"},
      {"+-+-", 2, 2, "UUUU"},         // fall 2: isolated failures keep it in
      {"+--", 2, 2, "UUD"},
      {"-+", 1, 1, "DU"},             // rise 1: no hysteresis
      {"-+", 0, 0, "DU"},             // nonsense limits act as 1
  };
  for (const auto& c : cases) {
    EXPECT_EQ(run_checks(c.checks, c.rise, c.fall), c.health) << c.checks << " rise " << c.rise << " fall " << c.fall;
  }
}

TEST(Hysteresis, Streaks) {
  HealthState s = step_health(HealthState{}, false, 2, 1);
  s = step_health(s, false, 2, 1);
  EXPECT_EQ(s.fail_streak, 2u);
  EXPECT_EQ(s.ok_streak, 0u);
  s = step_health(s, true, 2, 1);
  EXPECT_EQ(s.fail_streak, 0u);
  EXPECT_EQ(s.ok_streak, 1u);
}

MonitorOptions limits(uint64_t bytes, Millis time) {
  MonitorOptions o;
  o.max_lag_bytes = bytes;
  o.max_lag = time;
  return o;
}

HealthSnapshot start_snapshot(size_t replicas) {
  std::vector<MonitorNode> nodes(replicas);
  for (size_t i = 0; i < replicas; ++i) nodes[i].name = "replica" + std::to_string(i + 1);
  return initial_snapshot({"primary"}, nodes);
}

TEST(ApplyRound, FirstRound) {
  HealthSnapshot s0 = start_snapshot(2);
  EXPECT_EQ(s0.generation, 0u);
  EXPECT_TRUE(s0.primary.is_primary);
  EXPECT_FALSE(s0.replicas[0].healthy);
  auto now = steady_clock::now();
  std::vector<ProbeResult> r = {replica(5000, 4000, 10.0), down(Reason::unreachable, "refused")};
  HealthSnapshot s1 = apply_round(s0, primary(5000), r, limits(16u << 20, Millis{10000}), now);
  EXPECT_EQ(s1.generation, 1u);
  EXPECT_EQ(s1.taken_at, now);
  EXPECT_TRUE(s1.primary_reachable);
  EXPECT_TRUE(s1.primary.healthy);
  EXPECT_EQ(s1.primary.current_lsn, 5000u);
  EXPECT_EQ(s1.primary_lsn, 5000u);
  EXPECT_TRUE(s1.replicas[0].healthy);
  EXPECT_EQ(s1.replicas[0].lag_bytes, 1000u);
  EXPECT_EQ(s1.replicas[0].lag, Millis{10});
  EXPECT_EQ(s1.replicas[0].replay_lsn, 4000u);
  EXPECT_EQ(s1.replicas[0].reason, Reason::ok);
  EXPECT_FALSE(s1.replicas[1].healthy);
  EXPECT_FALSE(s1.replicas[1].reachable);
  EXPECT_EQ(s1.replicas[1].reason, Reason::unreachable);
  EXPECT_EQ(s1.replicas[1].error, "refused");
  EXPECT_EQ(s1.replicas[1].consecutive_failures, 1u);
}

TEST(ApplyRound, LaggingReplicaGoesOutAndComesBackAfterTwoGoodRounds) {
  MonitorOptions o = limits(100, Millis{0});
  auto now = steady_clock::now();
  std::vector<ProbeResult> good = {replica(1000, 1000)};
  std::vector<ProbeResult> behind = {replica(5000, 1000, 50.0)};
  HealthSnapshot s = apply_round(start_snapshot(1), primary(1000), good, o, now);
  EXPECT_TRUE(s.replicas[0].healthy);
  s = apply_round(s, primary(5000), behind, o, now);
  EXPECT_FALSE(s.replicas[0].healthy);
  EXPECT_EQ(s.replicas[0].reason, Reason::lagging_bytes);
  EXPECT_EQ(s.replicas[0].lag_bytes, 4000u);
  std::vector<ProbeResult> caught_up = {replica(5000, 5000)};
  s = apply_round(s, primary(5000), caught_up, o, now);
  EXPECT_FALSE(s.replicas[0].healthy);  // one good check
  EXPECT_EQ(s.replicas[0].reason, Reason::ok);
  s = apply_round(s, primary(5000), caught_up, o, now);
  EXPECT_TRUE(s.replicas[0].healthy);
  EXPECT_EQ(s.generation, 4u);
}

// After an idle primary, the last replayed commit is old: a replica that has just received the next
// write and not yet replayed it is not lagging by that age. Seen caught up a round ago, its delay is at
// most the time since then (plus the probe's own bound); never seen caught up, the age stands.
TEST(ApplyRound, ReplayAgeAfterAnIdlePrimaryIsBoundedByTheLastCatchUp) {
  MonitorOptions o = limits(16u << 20, Millis{10000});
  o.check_timeout = Millis{1000};
  auto t0 = steady_clock::now();
  std::vector<ProbeResult> caught_up = {replica(1000, 1000, 60000.0)};  // an hour idle: old last commit
  std::vector<ProbeResult> just_written = {replica(1200, 1000, 60000.0)};
  HealthSnapshot s = apply_round(start_snapshot(1), primary(1000), caught_up, o, t0);
  ASSERT_TRUE(s.replicas[0].healthy);
  s = apply_round(s, primary(1200), just_written, o, t0 + Millis{200});
  EXPECT_TRUE(s.replicas[0].healthy);
  EXPECT_EQ(s.replicas[0].reason, Reason::ok);
  EXPECT_EQ(s.replicas[0].lag, Millis{1200});  // 200 ms since the catch-up, plus the probe bound
  // Still not replayed 20 s later: lagging by the bound.
  s = apply_round(s, primary(1200), just_written, o, t0 + Millis{20000});
  EXPECT_EQ(s.replicas[0].reason, Reason::lagging_time);
  // Never seen caught up: the replay age is all there is.
  HealthSnapshot fresh = apply_round(start_snapshot(1), primary(1200), just_written, o, t0);
  EXPECT_EQ(fresh.replicas[0].reason, Reason::lagging_time);
}

TEST(ApplyRound, PrimaryDownKeepsLastLsnAndReplicasServe) {
  auto now = steady_clock::now();
  MonitorOptions o = limits(100, Millis{0});
  std::vector<ProbeResult> r = {replica(9000, 9000)};
  HealthSnapshot s = apply_round(start_snapshot(1), primary(9000), r, o, now);
  s = apply_round(s, down(Reason::timeout, "slow"), r, o, now);
  EXPECT_FALSE(s.primary_reachable);
  EXPECT_FALSE(s.primary.healthy);
  EXPECT_EQ(s.primary.reason, Reason::timeout);
  EXPECT_EQ(s.primary_lsn, 9000u);
  EXPECT_EQ(s.primary.current_lsn, 9000u);  // last known value kept
  EXPECT_TRUE(s.replicas[0].healthy);
  std::vector<ProbeResult> behind = {replica(9000, 8000)};
  s = apply_round(s, down(Reason::timeout, "slow"), behind, o, now);
  EXPECT_EQ(s.replicas[0].lag_bytes, 1000u);  // measured against the last known primary LSN
  EXPECT_FALSE(s.replicas[0].healthy);
}

TEST(ApplyRound, PrimaryLsnFollowsTheServerEvenBackwards) {
  auto now = steady_clock::now();
  MonitorOptions o = limits(100, Millis{0});
  std::vector<ProbeResult> r = {replica(500, 500)};
  HealthSnapshot s = apply_round(start_snapshot(1), primary(9000), r, o, now);
  EXPECT_FALSE(s.replicas[0].healthy);
  s = apply_round(s, primary(500), r, o, now);  // the dev cluster was re-created: LSNs start over
  EXPECT_EQ(s.primary_lsn, 500u);
  EXPECT_EQ(s.replicas[0].lag_bytes, 0u);
}

TEST(ApplyRound, BackoffKeepsTheLastError) {
  auto now = steady_clock::now();
  MonitorOptions o;
  std::vector<ProbeResult> r = {down(Reason::unreachable, "connection refused")};
  HealthSnapshot s = apply_round(start_snapshot(1), primary(1), r, o, now);
  std::vector<ProbeResult> skipped = {down(Reason::backoff, "")};
  s = apply_round(s, primary(1), skipped, o, now);
  EXPECT_EQ(s.replicas[0].reason, Reason::backoff);
  EXPECT_EQ(s.replicas[0].error, "connection refused");
  EXPECT_EQ(s.replicas[0].consecutive_failures, 2u);
}

TEST(ChangedNodes, FirstVerdictsAndFlips) {
  auto now = steady_clock::now();
  MonitorOptions o = limits(100, Millis{0});
  HealthSnapshot s0 = start_snapshot(2);
  std::vector<ProbeResult> r1 = {replica(1, 1), down(Reason::unreachable)};
  HealthSnapshot s1 = apply_round(s0, primary(1), r1, o, now);
  EXPECT_EQ(changed_nodes(s0, s1), (std::vector<int>{-1, 0, 1}));  // first verdicts, even "down"
  HealthSnapshot s2 = apply_round(s1, primary(1), r1, o, now);
  EXPECT_TRUE(changed_nodes(s1, s2).empty());
  std::vector<ProbeResult> r3 = {down(Reason::timeout), down(Reason::unreachable)};
  HealthSnapshot s3 = apply_round(s2, primary(1), r3, o, now);
  EXPECT_EQ(changed_nodes(s2, s3), (std::vector<int>{0}));
}

TEST(Adapters, ToRouteReplicas) {
  HealthSnapshot s = start_snapshot(2);
  s.replicas[0].healthy = true;
  s.replicas[0].replay_lsn = 77;
  s.replicas[0].lag_bytes = 5;
  s.replicas[0].lag = Millis{9};
  s.replicas[0].node.weight = 3;
  s.replicas[1].node.weight = 0;
  std::vector<router::ReplicaSnapshot> out(5);
  out[0].outstanding = 42;
  to_route_replicas(s, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].healthy);
  EXPECT_EQ(out[0].replay_lsn, 77u);
  EXPECT_EQ(out[0].lag_bytes, 5u);
  EXPECT_EQ(out[0].lag, Millis{9});
  EXPECT_EQ(out[0].weight, 3u);
  EXPECT_EQ(out[0].outstanding, 0u);
  EXPECT_FALSE(out[1].healthy);
  EXPECT_EQ(out[1].weight, 0u);
  EXPECT_EQ(to_route_replicas(s).size(), 2u);
}

// A standby the monitor took out for lag is "lagging" to the router (reason replica_lagging), one that
// is unreachable is just down (no_replica).
TEST(Adapters, LaggingReplicaIsFlagged) {
  MonitorOptions o;
  o.max_lag_bytes = 1000;
  auto now = std::chrono::steady_clock::now();
  HealthSnapshot s0 = start_snapshot(2);
  std::vector<ProbeResult> r = {replica(100, 100), down(Reason::unreachable)};
  HealthSnapshot s1 = apply_round(s0, primary(100000), r, o, now);
  ASSERT_EQ(s1.replicas[0].reason, Reason::lagging_bytes);
  std::vector<router::ReplicaSnapshot> out = to_route_replicas(s1);
  EXPECT_FALSE(out[0].healthy);
  EXPECT_TRUE(out[0].lagging);
  EXPECT_FALSE(out[1].healthy);
  EXPECT_FALSE(out[1].lagging);
  HealthSnapshot s2 = apply_round(s1, primary(100), r, o, now);
  EXPECT_FALSE(to_route_replicas(s2)[0].lagging) << "caught up";
}

TEST(Adapters, FromConfig) {
  conf::RoutingConfig routing;
  routing.health_check_interval = Millis{250};
  routing.max_replica_lag = Millis{3000};
  routing.max_replica_lag_bytes = 4096;
  MonitorOptions o = options_from_routing(routing, "pgsidecar", "pgsidecar-dev", "flopods");
  EXPECT_EQ(o.user, "pgsidecar");
  EXPECT_EQ(o.password, "pgsidecar-dev");
  EXPECT_EQ(o.dbname, "flopods");
  EXPECT_EQ(o.interval, Millis{250});
  EXPECT_EQ(o.check_timeout, Millis{250});
  EXPECT_EQ(o.max_lag, Millis{3000});
  EXPECT_EQ(o.max_lag_bytes, 4096u);
  EXPECT_EQ(options_from_routing(conf::RoutingConfig{}, "u", "p", "d").check_timeout, kMinCheckTimeout)
      << "the default 100 ms interval";
  routing.health_check_interval = Millis{5000};
  EXPECT_EQ(options_from_routing(routing, "u", "p", "d").check_timeout, Millis{1000}) << "at most 1 s";
  routing.health_check_interval = Millis{10};
  EXPECT_EQ(options_from_routing(routing, "u", "p", "d").check_timeout, kMinCheckTimeout)
      << "a 10 ms interval still gives a check time to log in";
  MonitorNode n = node_from_endpoint({"replica1", "10.0.0.2", 5433, -4});
  EXPECT_EQ(n.name, "replica1");
  EXPECT_EQ(n.host, "10.0.0.2");
  EXPECT_EQ(n.port, 5433);
  EXPECT_EQ(n.weight, 0u);
}

}  // namespace
}  // namespace pgs::monitor
