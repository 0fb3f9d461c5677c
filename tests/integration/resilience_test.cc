// Clients that vanish mid-transaction leave no lock and no open transaction on the server, and a
// primary restart under load is survived: new queries succeed within 10 s of the restart.
#include <unistd.h>

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/support/raw_client.h"

namespace pgs::it {
namespace {

using Clock = std::chrono::steady_clock;
using ResilienceTest = ProxyTest;

// Locks held on `table` and open transactions that touched it, as the superuser sees them.
int leftovers(Pg& su, const std::string& table) {
  PgResult r = su.exec_params(
      "SELECT (SELECT count(*) FROM pg_locks WHERE relation = $1::regclass) + "
      "(SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' "
      " AND query LIKE '%' || $1 || '%')",
      {table});
  return r.ok() ? std::stoi(r.value(0, 0)) : -1;
}

class KilledClient : public ResilienceTest {
 protected:
  void SetUp() override {
    ResilienceTest::SetUp();
    table_ = "it_kill_" + std::to_string(getpid());
    Pg owner(ConnSpec{});
    ASSERT_TRUE(owner.ok()) << owner.error();
    owner.must("DROP TABLE IF EXISTS " + table_ + "; CREATE TABLE " + table_ +
               " (id int PRIMARY KEY, n int); INSERT INTO " + table_ + " VALUES (1, 0)");
  }
  void TearDown() override {
    Pg owner(ConnSpec{});
    if (owner.ok()) owner.exec("DROP TABLE IF EXISTS " + table_);
    ResilienceTest::TearDown();
  }
  // After the client is gone: nothing left behind, and the row can be updated without waiting.
  void expect_clean(Proxy& p) {
    Pg su = superuser(kDatabase);
    ASSERT_TRUE(su.ok()) << su.error();
    EXPECT_TRUE(wait_until([&] { return leftovers(su, table_) == 0; }, Millis(10000)))
        << "lock or transaction left behind: " << leftovers(su, table_);
    Pg other(p.spec());
    ASSERT_TRUE(other.ok()) << other.error();
    other.must("SET lock_timeout = '2s'");
    PgResult r = other.exec("UPDATE " + table_ + " SET n = n + 1 WHERE id = 1");
    EXPECT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(other.scalar("SELECT n FROM " + table_), "1");  // the killed update was rolled back
    EXPECT_TRUE(p.alive());
  }
  std::string table_;
};

TEST_F(KilledClient, RawSocketResetAfterRowLock) {
  Proxy& p = start_proxy();
  {
    RawConn c(p.host(), p.port());
    ASSERT_TRUE(login(c, kUser, kPassword, kDatabase).ok);
    QueryOutcome q = simple_query(c, "BEGIN; UPDATE " + table_ + " SET n = n + 100 WHERE id = 1");
    ASSERT_FALSE(q.error) << q.error->describe();
    ASSERT_EQ(q.status, 'T');
    q = simple_query(c, "SELECT * FROM " + table_ + " FOR UPDATE");
    ASSERT_EQ(q.status, 'T');
    Pg su = superuser(kDatabase);
    ASSERT_GT(leftovers(su, table_), 0);  // the check below can see a lock when there is one
    c.close_with_reset();
  }
  expect_clean(p);
}

TEST_F(KilledClient, PsqlProcessKilledMidTransaction) {
  Proxy& p = start_proxy();
  std::string log = "/tmp/pgs-it-psql-" + std::to_string(getpid()) + ".log";
  Child psql = Child::spawn({"psql", "-X", "-d", p.conninfo()}, {{"PGSSLMODE", "disable"}}, log);
  ASSERT_TRUE(psql.write_stdin("BEGIN;\nUPDATE " + table_ + " SET n = n + 100 WHERE id = 1;\n"
                               "SELECT * FROM " + table_ + " FOR UPDATE;\n"));
  Pg su = superuser(kDatabase);
  ASSERT_TRUE(wait_until([&] { return leftovers(su, table_) > 0; }, Millis(10000)))
      << read_file_tail(log);
  psql.signal(SIGKILL);
  ASSERT_TRUE(psql.wait_exit(Millis(5000)));
  unlink(log.c_str());
  expect_clean(p);
}

// idle_transaction_timeout: a client that sits inside a transaction too long is closed and its
// transaction rolled back on the server.
TEST_F(KilledClient, IdleInTransactionTimeoutReleasesTheLock) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.idle_transaction_timeout = "1s";
  Proxy& p = start_proxy(o);
  Pg idle(p.spec());
  ASSERT_TRUE(idle.ok()) << idle.error();
  idle.must("BEGIN");
  idle.must("UPDATE " + table_ + " SET n = n + 100 WHERE id = 1");
  Pg su = superuser(kDatabase);
  ASSERT_GT(leftovers(su, table_), 0);
  expect_clean(p);
  PgResult r = idle.exec("COMMIT");
  EXPECT_FALSE(r.ok()) << "the timed-out transaction could still commit";
}

// Load threads: each keeps a connection (reconnecting after errors) and counts answers.
// A query that gets no answer within 5 s counts as stuck (and its connection is dropped).
struct Load {
  std::atomic<bool> stop{false};
  std::atomic<long> ok{0}, errors{0}, stuck{0};
  std::atomic<int64_t> last_ok_ns{0};
  void run(const std::string& conninfo) {
    std::unique_ptr<Pg> pg;
    while (!stop) {
      if (!pg || !pg->ok()) pg = std::make_unique<Pg>(conninfo);
      if (!pg->ok()) {
        ++errors;
        std::this_thread::sleep_for(Millis(10));  // reconnect pacing while the server is down
        continue;
      }
      std::optional<PgResult> r = pg->exec_within("SELECT 1", Millis(5000));
      if (!r) {
        ++stuck;
      } else if (r->ok()) {
        ++ok;
        last_ok_ns = Clock::now().time_since_epoch().count();
      } else {
        ++errors;
      }
    }
  }
};

Millis since(Clock::time_point t) {
  return std::chrono::duration_cast<Millis>(Clock::now() - t);
}

TEST_F(ResilienceTest, PrimaryRestartDuringLoad) {
  Proxy& p = start_proxy();
  Load load;
  std::vector<std::thread> threads;
  ConnSpec s = p.spec();
  s.extra["connect_timeout"] = "3";
  for (int i = 0; i < 4; ++i) threads.emplace_back([&] { load.run(s.str()); });
  auto t0 = Clock::now();
  ASSERT_TRUE(wait_until([&] { return load.ok > 100; }, Millis(10000)));
  std::cout << since(t0).count() << " ms: load running, restarting the primary" << std::endl;
  RunResult r = restart_primary();
  auto restarted = Clock::now();
  std::cout << since(t0).count() << " ms: pg_ctl restart returned " << r.exit_code << std::endl;
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  // Through the proxy, a new connection's query and the load's queries succeed within 10 s.
  bool fresh = wait_until([&] { return Pg(s).ok(); }, Millis(10000), Millis(100));
  EXPECT_TRUE(fresh) << "no new connection through the proxy within 10 s of the restart";
  bool load_ok = wait_until(
      [&] { return load.last_ok_ns > restarted.time_since_epoch().count(); }, Millis(10000));
  EXPECT_TRUE(load_ok) << "load got no answer within 10 s of the restart";
  auto took = since(restarted);
  load.stop = true;
  for (auto& t : threads) t.join();  // bounded: every query has a 5 s deadline
  std::cout << "answers " << load.ok << ", errors " << load.errors << ", stuck " << load.stuck
            << ", recovered in " << took.count() << " ms" << std::endl;
  EXPECT_EQ(load.stuck, 0) << "queries got no answer within 5 s (neither a result nor an error)";
  Pg after(s);
  ASSERT_TRUE(after.ok()) << after.error();
  EXPECT_EQ(after.scalar("SELECT 'after restart'"), "after restart");
  EXPECT_TRUE(p.alive());
}

}  // namespace
}  // namespace pgs::it
