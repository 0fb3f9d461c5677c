// Load balancing over two replicas: the shared dev replica (:15433, only read here) and the private
// replica of this process. Which one answered is told by inet_server_port() inside the read itself.
// One worker, so every decision shares one counter and one view of outstanding queries.
#include <gtest/gtest.h>

#include <map>

#include "tests/integration/harness.h"
#include "tests/routing/private_env.h"
#include "tests/routing/routing_support.h"

namespace pgs::it::routing {
namespace {

constexpr const char* kWhere = "SELECT pg_is_in_recovery(), inet_server_port()";

class LoadBalanceTest : public ProxyTest {
 protected:
  void start(const std::string& routing_keys, int shared_weight = 1, int private_weight = 1) {
    PrivateReplica& replica = private_replica();
    replica.set_apply_delay(0);
    replica.wait_caught_up(Millis(30000));
    private_port_ = replica.port();
    ProxyOptions o = routing_options(
        {{"shared", kReplicaPort, shared_weight}, {"private", private_port_, private_weight}}, routing_keys);
    o.workers = 1;
    start_proxy(o);
    pg_ = std::make_unique<Pg>(proxy_->spec());
    ASSERT_TRUE(pg_->ok()) << pg_->error();
  }

  // The port of the replica that ran the read, or 0 (primary or error).
  static int replica_port(Pg& pg) {
    PgResult r = pg.exec(kWhere);
    if (!r.ok() || r.rows() != 1 || r.value(0, 0) != "t") return 0;
    return std::stoi(r.value(0, 1));
  }

  // Waits until both replicas have answered a read (the monitor needs a round or two for each).
  bool both_eligible() {
    std::map<int, int> seen;
    return wait_until(
        [&] {
          ++seen[replica_port(*pg_)];
          return seen.count(kReplicaPort) > 0 && seen.count(private_port_) > 0;
        },
        Millis(20000));
  }

  std::map<int, int> reads(int n) {
    std::map<int, int> seen;
    for (int i = 0; i < n; ++i) ++seen[replica_port(*pg_)];
    return seen;
  }

  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "needs the pgsidecar process";
  }

  uint16_t private_port_ = 0;
  std::unique_ptr<Pg> pg_;
};

TEST_F(LoadBalanceTest, RoundRobinAlternates) {
  start("load_balance = \"round_robin\"\n");
  ASSERT_TRUE(both_eligible());
  std::map<int, int> seen = reads(40);
  EXPECT_EQ(seen[0], 0) << "reads that left the replicas";
  EXPECT_NEAR(seen[kReplicaPort], 20, 2);
  EXPECT_NEAR(seen[private_port_], 20, 2);
}

TEST_F(LoadBalanceTest, WeightedFollowsWeights) {
  start("load_balance = \"weighted\"\n", 1, 3);
  ASSERT_TRUE(both_eligible());
  std::map<int, int> seen = reads(80);
  EXPECT_EQ(seen[0], 0) << "reads that left the replicas";
  EXPECT_NEAR(seen[private_port_], 60, 4) << "weight 3 of 4";
  EXPECT_NEAR(seen[kReplicaPort], 20, 4) << "weight 1 of 4";
}

// Default policy: a replica busy with an open read-only transaction gets no reads while the other is
// idle; once it is free again, ties rotate over both.
TEST_F(LoadBalanceTest, LeastOutstandingAvoidsTheBusyReplica) {
  start("");
  ASSERT_TRUE(both_eligible());
  Pg holder(proxy_->spec());
  ASSERT_TRUE(holder.ok()) << holder.error();
  holder.must("BEGIN READ ONLY");
  int busy = replica_port(holder);
  ASSERT_TRUE(busy == kReplicaPort || busy == private_port_) << "the read-only transaction ran on " << busy;
  int idle = busy == kReplicaPort ? private_port_ : kReplicaPort;
  std::map<int, int> seen = reads(20);
  EXPECT_EQ(seen[idle], 20) << "reads sent to the replica holding a transaction: " << seen[busy];
  holder.must("COMMIT");
  seen = reads(20);
  EXPECT_GT(seen[busy], 0) << "ties should rotate once both are idle";
  EXPECT_GT(seen[idle], 0);
}

}  // namespace
}  // namespace pgs::it::routing
