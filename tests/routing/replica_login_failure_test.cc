// A replica that is healthy for the monitor but refuses one user's login (pg_hba reject on the private
// replica only): that user's reads are answered by the primary, without errors, and move back to the
// replica once it accepts the login again. Other users keep reading from the replica meanwhile.
#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/routing/private_env.h"
#include "tests/routing/routing_support.h"

namespace pgs::it::routing {
namespace {

constexpr const char* kRejectedUser = "pgs_routing_rejected";
constexpr const char* kRejectedPassword = "routing-rejected-dev";

class ReplicaLoginFailureTest : public ProxyTest {
 protected:
  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "needs the pgsidecar process";
    Pg su = superuser(kDatabase);
    ASSERT_TRUE(su.ok()) << su.error();
    su.must("DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pgs_routing_rejected') THEN "
            "CREATE ROLE pgs_routing_rejected LOGIN PASSWORD 'routing-rejected-dev'; END IF; END$$");
    PrivateReplica& replica = private_replica();
    replica.set_apply_delay(0);
    replica.wait_caught_up(Millis(30000));
    replica.reject_logins(kRejectedUser, kRejectedPassword, true);
    rejecting_ = true;
    ProxyOptions o = routing_options({{"private1", replica.port()}});
    o.users.push_back({kRejectedUser, kRejectedPassword, "", false});
    o.workers = 1;  // both clients on one worker: a worker-wide "replica down" shows every time
    start_proxy(o);
  }

  void TearDown() override {
    proxy_.reset();
    if (!is_direct()) {
      if (rejecting_) private_replica().reject_logins(kRejectedUser, kRejectedPassword, false);
      Pg su = superuser(kDatabase);
      if (su.ok()) su.exec("DROP ROLE IF EXISTS pgs_routing_rejected");
    }
    ProxyTest::TearDown();
  }

  bool rejecting_ = false;
};

TEST_F(ReplicaLoginFailureTest, RejectedUserReadsFromPrimary) {
  Pg other(proxy_->spec());
  ASSERT_TRUE(other.ok()) << other.error();
  ASSERT_TRUE(wait_node(other, "replica", Millis(15000))) << "the monitor never saw the replica healthy: "
                                                         << node_of(other);
  Pg rejected(proxy_->spec(kRejectedUser, kRejectedPassword));
  ASSERT_TRUE(rejected.ok()) << rejected.error();
  int other_on_primary = 0;
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(node_of(rejected), "primary") << "try " << i;
    PgResult r = rejected.exec_params("SELECT pg_is_in_recovery(), $1::int", {std::to_string(i)});
    ASSERT_TRUE(r.ok()) << "extended, try " << i << ": " << r.error();
    if (node_of(other) != "replica") ++other_on_primary;
  }
  // A login refused for one role (SQLSTATE class 28) says nothing about the node's health.
  EXPECT_EQ(other_on_primary, 0) << "of 30 reads by another user, interleaved with the rejected user's, this "
                                    "many went to the primary: one role's login failures took the replica from "
                                    "everyone";

  private_replica().reject_logins(kRejectedUser, kRejectedPassword, false);
  rejecting_ = false;
  EXPECT_TRUE(wait_node(rejected, "replica", Millis(30000)))
      << "reads did not return to the replica after it accepted the login: " << node_of(rejected);
}

}  // namespace
}  // namespace pgs::it::routing
