// Lag above max_replica_lag_bytes moves reads to the primary: replay is paused on the private replica
// while the primary writes ~1MB of WAL (limit 64kB; the time limit is 1h, so only bytes count); after
// resuming, reads come back to the replica.
#include <gtest/gtest.h>

#include <string>

#include "tests/integration/harness.h"
#include "tests/routing/private_env.h"
#include "tests/routing/routing_support.h"

namespace pgs::it::routing {
namespace {

class ReplicaLagTest : public ProxyTest {
 protected:
  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "needs the pgsidecar process";
    PrivateReplica& replica = private_replica();
    replica.set_apply_delay(0);
    replica.wait_caught_up(Millis(30000));
    start_proxy(routing_options({{"private1", replica.port()}}, routing_keys()));
  }

  // The [routing] keys of this suite's proxy.
  virtual std::string routing_keys() const { return "max_replica_lag_bytes = \"64kB\"\nmax_replica_lag = \"1h\"\n"; }

  void TearDown() override {
    if (!is_direct() && paused_) private_replica().resume_replay();
    ProxyTest::TearDown();
  }

  // Pauses the private replica's replay and waits until it says so (TearDown resumes it).
  void pause_replay() {
    PrivateReplica& replica = private_replica();
    replica.pause_replay();
    paused_ = true;
    ASSERT_TRUE(wait_until(
        [&] { return replica.superuser().scalar("SELECT pg_get_wal_replay_pause_state()") == "paused"; },
        Millis(10000)));
  }

  void expect_reads_back_after_resume(Pg& pg) {
    private_replica().resume_replay();
    paused_ = false;
    EXPECT_TRUE(wait_node(pg, "replica", Millis(15000))) << "reads did not come back after replay resumed: "
                                                         << node_of(pg);
  }

  bool paused_ = false;
};

TEST_F(ReplicaLagTest, ReadsLeaveALaggingReplicaAndReturn) {
  Pg pg(proxy_->spec());
  ASSERT_TRUE(pg.ok()) << pg.error();
  ASSERT_TRUE(wait_node(pg, "replica", Millis(15000))) << node_of(pg);
  // Reads before the monitor's first verdict count as no_replica; once the replica read shows, those are in.
  ASSERT_EQ(wait_decisions(*proxy_, {{"replica", "read_only", 1}}, Millis(10000)), "");
  double no_replica_before = routing_decisions(*proxy_, "primary", "no_replica");

  ASSERT_NO_FATAL_FAILURE(pause_replay());
  Pg su = superuser(kDatabase);
  ASSERT_TRUE(su.ok()) << su.error();
  su.must("SELECT pg_logical_emit_message(false, 'pgs-routing-test', repeat('x', 1048576))");
  EXPECT_TRUE(wait_node(pg, "primary", Millis(10000)))
      << "reads still go to a replica 1MB behind with max_replica_lag_bytes = 64kB: " << node_of(pg);
  // Counted as lagging, not as a replica that is down.
  double lagging = routing_decisions(*proxy_, "primary", "replica_lagging");
  EXPECT_EQ(node_of(pg), "primary");
  EXPECT_EQ(wait_decisions(*proxy_, {{"primary", "replica_lagging", lagging + 1}}, Millis(10000)), "");
  EXPECT_EQ(routing_decisions(*proxy_, "primary", "no_replica"), no_replica_before) << "a lagging replica counted as down";

  expect_reads_back_after_resume(pg);
}

// With an idle probe cadence (30 s) a replica's last measure grows old: replay is paused and the
// primary commits, and reads (eventual consistency, max_replica_lag = 1s) must leave the replica once the
// measure is older than the limit allows, not at the next idle probe. The read that goes to the primary
// for it asks the monitor for a fresh measure, which then finds the replica lagging by itself.
class AgedLagTest : public ReplicaLagTest {
 protected:
  std::string routing_keys() const override {
    return "consistency = \"eventual\"\nmax_replica_lag = \"1s\"\nhealth_check_idle_interval = \"30s\"\n";
  }
};

TEST_F(AgedLagTest, AnOldMeasureDoesNotKeepReadsOnAPausedReplica) {
  Pg pg(proxy_->spec());
  ASSERT_TRUE(pg.ok()) << pg.error();
  ASSERT_TRUE(wait_node(pg, "replica", Millis(15000))) << node_of(pg);
  ASSERT_NO_FATAL_FAILURE(pause_replay());
  Pg su = superuser(kDatabase);
  ASSERT_TRUE(su.ok()) << su.error();
  su.must("SELECT pg_logical_emit_message(true, 'pgs-routing-test', 'a commit the replica will not replay')");
  EXPECT_TRUE(wait_node(pg, "primary", Millis(5000)))
      << "reads still go to a paused replica more than 5 s after its last replayed commit, with "
         "max_replica_lag = 1s: "
      << node_of(pg) << "\n" << show_replicas(*proxy_) << private_replica().positions();
  EXPECT_EQ(wait_decisions(*proxy_, {{"primary", "replica_lagging", 1}}, Millis(10000)), "");

  expect_reads_back_after_resume(pg);
}

}  // namespace
}  // namespace pgs::it::routing
