// Pool settings that act without any client asking: min_pool_size opens servers ahead of need,
// server_idle_timeout closes idle ones, server_lifetime replaces old ones at release.
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace pgs::it {
namespace {

class PoolKnobsTest : public ProxyTest {};

TEST_F(PoolKnobsTest, MinPoolSizeOpensServersBeforeAnyQuery) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.workers = 1;
  o.pool_size = 4;
  o.pool_toml = "min_pool_size = 3\nserver_idle_timeout = \"10m\"\n";
  Proxy& p = start_proxy(o);
  Pg c(p.spec());  // logs in (the pool exists from the first login on)
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_TRUE(wait_until([&] { return p.server_backends(kDatabase) >= 3; }, Millis(5000)))
      << "servers: " << p.server_backends(kDatabase);
}

TEST_F(PoolKnobsTest, IdleServersCloseAfterServerIdleTimeout) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.workers = 1;
  o.pool_toml = "server_idle_timeout = \"300ms\"\n";
  Proxy& p = start_proxy(o);
  Pg c(p.spec());
  ASSERT_TRUE(c.ok()) << c.error();
  c.must("SELECT 1");
  EXPECT_TRUE(wait_until([&] { return p.server_backends(kDatabase) == 0; }, Millis(5000)))
      << "servers still open: " << p.server_backends(kDatabase);
  EXPECT_EQ(c.scalar("SELECT 2"), "2");  // and a new one opens on demand
}

// The idle timeout closes servers down to min_pool_size, not below it: the servers kept are the ones
// that were open, not fresh logins after the whole pool was closed at once.
TEST_F(PoolKnobsTest, IdleTimeoutKeepsMinPoolSizeOfTheServersItHas) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.workers = 1;
  o.pool_size = 4;
  o.pool_toml = "min_pool_size = 2\nserver_idle_timeout = \"300ms\"\n";
  Proxy& p = start_proxy(o);
  std::vector<std::unique_ptr<Pg>> clients;
  std::set<std::string> opened;
  for (int i = 0; i < 4; ++i) {  // four transactions at once: four servers
    clients.push_back(std::make_unique<Pg>(p.spec()));
    ASSERT_TRUE(clients.back()->ok()) << clients.back()->error();
    clients.back()->must("BEGIN");
    opened.insert(clients.back()->scalar("SELECT pg_backend_pid()"));
  }
  ASSERT_EQ(opened.size(), 4u);
  for (auto& c : clients) c->must("COMMIT");  // all idle at the same moment
  ASSERT_TRUE(wait_until([&] { return p.server_backends(kDatabase) == 2; }, Millis(5000)))
      << "servers: " << p.server_backends(kDatabase);
  clients[0]->must("BEGIN");
  clients[1]->must("BEGIN");
  for (int i = 0; i < 2; ++i) {
    std::string pid = clients[static_cast<size_t>(i)]->scalar("SELECT pg_backend_pid()");
    EXPECT_TRUE(opened.contains(pid)) << "backend " << pid << " was opened after the idle timeout";
  }
  EXPECT_EQ(p.server_backends(kDatabase), 2);
}

TEST_F(PoolKnobsTest, ServersAreReplacedAfterServerLifetime) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.workers = 1;
  o.pool_size = 1;
  o.pool_toml = "server_lifetime = \"300ms\"\n";
  Proxy& p = start_proxy(o);
  Pg c(p.spec());
  ASSERT_TRUE(c.ok()) << c.error();
  std::string first = c.scalar("SELECT pg_backend_pid()");
  ASSERT_FALSE(first.empty());
  EXPECT_TRUE(wait_until([&] { return c.scalar("SELECT pg_backend_pid()") != first; }, Millis(5000)))
      << "still on backend " << first;
}

}  // namespace
}  // namespace pgs::it
