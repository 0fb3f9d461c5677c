// Issue 6: /readyz turns unready when the primary stops and ready again when it returns. The shared
// primary is never stopped: this proxy's [primary] is the private server (a hot standby answers logins
// and pings like any primary), which the test may stop and start.
#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/routing/private_env.h"

namespace pgs::it::routing {
namespace {

// The HTTP status of /readyz; -1 when there is no answer within 5 s.
int readyz_status(uint16_t metrics_port) {
  int status = http_get(metrics_port, "/readyz", Millis(5000)).status;
  return status == 0 ? -1 : status;
}

class ReadyzTest : public ProxyTest {
 protected:
  void TearDown() override {
    if (!is_direct() && !private_replica().streaming()) private_replica().start();
    ProxyTest::TearDown();
  }
};

TEST_F(ReadyzTest, UnreadyWhilePrimaryIsDownReadyWhenItReturns) {
  PGS_IT_REQUIRE_PROXY();
  PrivateReplica& server = private_replica();
  ProxyOptions o;
  o.primary_port = server.port();
  Proxy& p = start_proxy(o);
  EXPECT_TRUE(wait_until([&] { return readyz_status(p.metrics_port()) == 200; }, Millis(10000)));
  server.stop("fast");
  EXPECT_TRUE(wait_until([&] { return readyz_status(p.metrics_port()) == 503; }, Millis(10000)))
      << "still ready with the primary down";
  server.start();
  EXPECT_TRUE(wait_until([&] { return readyz_status(p.metrics_port()) == 200; }, Millis(20000)))
      << "not ready again after the primary returned";
}

}  // namespace
}  // namespace pgs::it::routing
