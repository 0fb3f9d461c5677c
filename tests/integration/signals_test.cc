// Signals: SIGHUP reloads the config (a changed password takes effect, a broken file is refused
// and the proxy keeps running); SIGTERM drains: an open transaction may still COMMIT within
// shutdown_timeout, new connections are refused, then the process exits 0.
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/support/raw_client.h"

namespace pgs::it {
namespace {

using Clock = std::chrono::steady_clock;
using SignalsTest = ProxyTest;

bool can_login(Proxy& p, const std::string& password) {
  RawConn c(p.host(), p.port());
  return login(c, kUser, password, kDatabase).ok;
}

TEST_F(SignalsTest, SighupReloadsPasswordAndPoolSize) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.pool_size = 10;
  Proxy& p = start_proxy(o);
  Pg before(p.spec());
  ASSERT_TRUE(before.ok()) << before.error();
  // The client password changes; the proxy keeps logging in to Postgres with the real one.
  o.pool_size = 3;
  o.users[0].password = "it-new-secret";
  o.users[0].server_password = kPassword;
  p.rewrite_config(o);
  p.sighup();
  EXPECT_TRUE(wait_until([&] { return can_login(p, "it-new-secret"); }, Millis(10000)))
      << "the new password is not accepted after SIGHUP";
  RawConn old(p.host(), p.port());
  LoginOutcome l = login(old, kUser, kPassword, kDatabase);
  ASSERT_TRUE(l.error) << "old password still accepted: " << l.describe();
  EXPECT_EQ(l.error->sqlstate(), "28P01");
  Pg after(p.conninfo(kUser, "it-new-secret"));
  ASSERT_TRUE(after.ok()) << after.error();
  EXPECT_EQ(after.scalar("SELECT current_user"), "flopods");
  EXPECT_EQ(before.scalar("SELECT 'kept'"), "kept");  // a reload does not drop clients
  EXPECT_TRUE(p.alive());
}

// pool_size is reloadable: after SIGHUP lowers it to 2, eight concurrent clients of a database
// nobody used before share at most 2 server connections, and all of them are served.
TEST_F(SignalsTest, SighupLowersPoolSizeForNewServers) {
  PGS_IT_REQUIRE_PROXY();
  const std::string db = "it_reload";
  ensure_database(db);
  ProxyOptions o;
  o.pool_size = 10;
  o.databases = {kDatabase, db};
  Proxy& p = start_proxy(o);
  o.pool_size = 2;
  o.users[0].password = "it-reloaded";  // marks the moment the new config is live
  o.users[0].server_password = kPassword;
  p.rewrite_config(o);
  p.sighup();
  ASSERT_TRUE(wait_until([&] { return can_login(p, "it-reloaded"); }, Millis(10000)));
  std::atomic<int> ok{0};
  std::atomic<bool> done{false};
  int max_servers = 0;
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&, i] {
      Pg pg(p.conninfo(kUser, "it-reloaded", db));
      for (int k = 0; pg.ok() && k < 3; ++k) {
        PgResult r = pg.exec_params("SELECT pg_sleep(0.2), $1::int", {std::to_string(i)});
        if (r.ok() && r.value(0, 1) == std::to_string(i)) ++ok;
      }
    });
  }
  std::thread sampler([&] {
    while (!done) {
      max_servers = std::max(max_servers, p.server_backends(db));
      std::this_thread::sleep_for(Millis(50));  // sampling period of a measurement
    }
  });
  for (auto& t : clients) t.join();
  done = true;
  sampler.join();
  EXPECT_EQ(ok.load(), 24);
  EXPECT_GE(max_servers, 1);
  EXPECT_LE(max_servers, 2) << "pool_size 2 after reload";
}

TEST_F(SignalsTest, SighupWithABrokenConfigKeepsTheOldOne) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start_proxy();
  {
    std::ofstream f(p.config_path(), std::ios::trunc);
    f << "[proxy\nthis is = = not toml\n[pool]\npool_size = -1\n";
  }
  size_t log_before = p.log_tail(0).size();
  p.sighup();
  // The reload is refused and logged; the process stays up with the old config.
  EXPECT_TRUE(wait_until([&] { return p.log_tail(0).size() > log_before; }, Millis(5000)))
      << "nothing logged about the refused reload";
  EXPECT_TRUE(p.alive());
  EXPECT_TRUE(can_login(p, kPassword));
  Pg pg(p.spec());
  ASSERT_TRUE(pg.ok()) << pg.error();
  EXPECT_EQ(pg.scalar("SELECT 'still up'"), "still up");
}

TEST_F(SignalsTest, SigtermDrainsOpenTransactionThenExitsZero) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.shutdown_timeout = "5s";
  Proxy& p = start_proxy(o);
  std::string t = "it_drain_" + std::to_string(getpid());
  Pg owner(ConnSpec{});
  ASSERT_TRUE(owner.ok()) << owner.error();
  owner.must("DROP TABLE IF EXISTS " + t + "; CREATE TABLE " + t + " (n int)");
  Pg in_tx(p.spec());
  ASSERT_TRUE(in_tx.ok()) << in_tx.error();
  in_tx.must("BEGIN");
  in_tx.must("INSERT INTO " + t + " VALUES (42)");
  auto t0 = Clock::now();
  p.sigterm();
  ConnSpec s = p.spec();
  s.extra["connect_timeout"] = "2";
  EXPECT_TRUE(wait_until([&] { return !Pg(s).ok(); }, Millis(5000)))
      << "new connections still accepted after SIGTERM";
  PgResult commit = in_tx.exec("COMMIT");
  EXPECT_TRUE(commit.ok()) << "[" << commit.sqlstate() << "] " << commit.error();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(owner.scalar("SELECT count(*) FROM " + t + " WHERE n = 42"), "1");
  std::optional<int> code = p.wait_exit(Millis(15000));  // shutdown_timeout 5 s + slack
  ASSERT_TRUE(code.has_value()) << "proxy still running 15 s after SIGTERM";
  EXPECT_EQ(*code, 0);
  owner.must("DROP TABLE " + t);
}

// A transaction still open when shutdown_timeout expires is cut off: the process exits 0 and the
// server is left with no lock and no open transaction.
TEST_F(SignalsTest, SigtermTimeoutCutsOffStragglers) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.shutdown_timeout = "2s";
  Proxy& p = start_proxy(o);
  std::string t = "it_straggler_" + std::to_string(getpid());
  Pg owner(ConnSpec{});
  ASSERT_TRUE(owner.ok()) << owner.error();
  owner.must("DROP TABLE IF EXISTS " + t + "; CREATE TABLE " + t + " (n int)");
  Pg in_tx(p.spec());
  ASSERT_TRUE(in_tx.ok()) << in_tx.error();
  in_tx.must("BEGIN");
  in_tx.must("LOCK TABLE " + t + " IN ACCESS EXCLUSIVE MODE");
  auto t0 = Clock::now();
  p.sigterm();
  std::optional<int> code = p.wait_exit(Millis(10000));
  ASSERT_TRUE(code.has_value()) << "still running 10 s after SIGTERM with shutdown_timeout 2 s";
  EXPECT_EQ(*code, 0);
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(1500)) << "did not wait for the transaction";
  Pg su = superuser(kDatabase);
  EXPECT_TRUE(wait_until(
      [&] {
        PgResult r = su.exec_params("SELECT count(*) FROM pg_locks WHERE relation = $1::regclass", {t});
        return r.ok() && r.value(0, 0) == "0";
      },
      Millis(5000)))
      << "the straggler's lock outlived the proxy";
  EXPECT_FALSE(in_tx.exec("COMMIT").ok());
  owner.must("DROP TABLE " + t);
}

TEST_F(SignalsTest, SigtermWithIdleClientsExitsPromptly) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.shutdown_timeout = "20s";
  Proxy& p = start_proxy(o);
  Pg idle(p.spec());
  ASSERT_TRUE(idle.ok()) << idle.error();
  ASSERT_EQ(idle.scalar("SELECT 1"), "1");
  auto t0 = Clock::now();
  p.sigterm();
  // Nothing is running: no reason to wait for shutdown_timeout.
  std::optional<int> code = p.wait_exit(Millis(10000));
  ASSERT_TRUE(code.has_value()) << "an idle client kept the proxy up";
  EXPECT_EQ(*code, 0);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(10));
}

// A client that holds its server between transactions (session mode, or pinned by LISTEN) is idle
// as far as shutdown goes: nothing runs, so it is told 57P01 and the process exits without waiting
// for shutdown_timeout.
class SignalsHeldServerTest : public ProxyTest {
 protected:
  void expect_prompt_exit_with_held_server(const std::string& pool_mode, const std::string& sql);
};

void SignalsHeldServerTest::expect_prompt_exit_with_held_server(const std::string& pool_mode, const std::string& sql) {
  ProxyOptions o;
  o.shutdown_timeout = "30s";
  o.pool_mode = pool_mode;
  Proxy& p = start_proxy(o);
  Pg held(p.spec());
  ASSERT_TRUE(held.ok()) << held.error();
  held.must(sql);
  ASSERT_EQ(held.scalar("SELECT 1"), "1");
  auto t0 = Clock::now();
  p.sigterm();
  std::optional<int> code = p.wait_exit(Millis(10000));
  ASSERT_TRUE(code.has_value()) << pool_mode << " client after `" << sql << "` kept the proxy up 10 s";
  EXPECT_EQ(*code, 0);
  PgResult after = held.exec("SELECT 1");
  EXPECT_FALSE(after.ok()) << "the client outlived the proxy";
}

TEST_F(SignalsHeldServerTest, SigtermWithAPinnedIdleClientExitsPromptly) {
  PGS_IT_REQUIRE_PROXY();
  expect_prompt_exit_with_held_server("transaction", "LISTEN it_shutdown_chan");
}

TEST_F(SignalsHeldServerTest, SigtermWithAnIdleSessionModeClientExitsPromptly) {
  PGS_IT_REQUIRE_PROXY();
  expect_prompt_exit_with_held_server("session", "SET application_name = 'held'");
}

}  // namespace
}  // namespace pgs::it
