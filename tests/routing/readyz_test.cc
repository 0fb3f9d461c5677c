// Issue 6: /readyz turns unready when the primary stops and ready again when it returns. The shared
// primary is never stopped: this proxy's [primary] is the private server (a hot standby answers logins
// and pings like any primary), which the test may stop and start.
#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/support/process.h"
#include "tests/routing/private_env.h"

namespace pgs::it::routing {
namespace {

int readyz_status(uint16_t metrics_port) {
  RunResult r = run_program({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                             "http://127.0.0.1:" + std::to_string(metrics_port) + "/readyz"},
                            {}, Millis(10000));
  return r.exit_code == 0 ? std::atoi(r.out.c_str()) : -1;
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
