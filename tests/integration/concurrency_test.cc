// Many clients over a small pool: 500 clients over 20 servers each get their own answers,
// max_client_conn -> 53300, query_wait_timeout -> a clear error, and per-client startup
// parameters (application_name, TimeZone, search_path, options) on one shared server.
#include <unistd.h>

#include <atomic>
#include <latch>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/support/raw_client.h"

namespace pgs::it {
namespace {

using Clock = std::chrono::steady_clock;
using ConcurrencyTest = ProxyTest;

// One client: connect, wait for everyone, then run `rounds` queries whose answers name the client.
void client_thread(const std::string& conninfo, int id, int rounds, std::latch& connected,
                   std::latch& go, std::atomic<int>& failures, std::mutex& mu,
                   std::vector<std::string>& errors) {
  auto fail = [&](const std::string& what) {
    ++failures;
    std::lock_guard<std::mutex> lock(mu);
    if (errors.size() < 5) errors.push_back("client " + std::to_string(id) + ": " + what);
  };
  Pg pg(conninfo);
  connected.count_down();
  go.wait();
  if (!pg.ok()) return fail(pg.error());
  for (int k = 0; k < rounds; ++k) {
    std::string want = "client-" + std::to_string(id) + "-round-" + std::to_string(k);
    PgResult r = pg.exec_params("SELECT $1::text", {want});
    if (!r.ok()) return fail(r.error());
    if (r.value(0, 0) != want) return fail("got " + r.value(0, 0) + " want " + want);
  }
}

TEST_F(ConcurrencyTest, FiveHundredClientsOverTwentyServersGetTheirOwnAnswers) {
  raise_nofile_limit(8192);
  ProxyOptions o;
  o.pool_size = 20;
  o.client_login_timeout = "30s";  // see connect_timeout below
  Proxy& p = start_proxy(o);
  // The dev primary allows 400 connections in all: direct mode uses fewer clients.
  const int clients = p.direct() ? 250 : 500;
  std::latch connected(clients), go(1);
  std::atomic<int> failures{0};
  std::mutex mu;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  // All clients log in at once: a burst that may overflow a listen backlog (SYN retried after 1,
  // 3, 7 s). The test is about answers, not login latency, hence the generous connect timeout.
  ConnSpec spec = p.spec();
  spec.extra["connect_timeout"] = "30";
  std::string conninfo = spec.str();
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back(client_thread, conninfo, i, 20, std::ref(connected), std::ref(go),
                         std::ref(failures), std::ref(mu), std::ref(errors));
  }
  auto burst_start = Clock::now();
  connected.wait();  // every client has finished its login (or failed it)
  std::cout << clients << " logins took "
            << std::chrono::duration_cast<Millis>(Clock::now() - burst_start).count() << " ms\n";
  if (!p.direct()) {
    EXPECT_LE(p.server_backends(kDatabase), 20);
  }
  go.count_down();
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0) << (errors.empty() ? "" : errors.front());
  for (const auto& e : errors) std::cout << e << "\n";
  if (!p.direct()) {
    EXPECT_LE(p.server_backends(kDatabase), 20);
  }
  EXPECT_TRUE(p.alive());
}

TEST_F(ConcurrencyTest, MaxClientConnExceededIs53300) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.max_client_conn = 5;
  Proxy& p = start_proxy(o);
  std::vector<std::unique_ptr<Pg>> held;
  for (int i = 0; i < 5; ++i) {
    held.push_back(std::make_unique<Pg>(p.spec()));
    ASSERT_TRUE(held.back()->ok()) << "client " << i << ": " << held.back()->error();
  }
  {
    RawConn c(p.host(), p.port());
    LoginOutcome l = login(c, kUser, kPassword, kDatabase);
    ASSERT_TRUE(l.error) << l.describe();
    EXPECT_EQ(l.error->sqlstate(), "53300") << l.error->describe();
  }
  EXPECT_EQ(held.front()->scalar("SELECT 'held clients still work'"), "held clients still work");
  held.pop_back();
  EXPECT_TRUE(wait_until([&] { return Pg(p.spec()).ok(); }, Millis(5000)))
      << "a slot freed by a disconnect is not reused";
}

// At max_client_conn a CancelRequest still gets through (Postgres serves cancels when full too): a
// few connections beyond the limit are read for their startup packet, and only a cancel is served.
TEST_F(ConcurrencyTest, CancelRequestIsServedAtMaxClientConn) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.max_client_conn = 2;
  Proxy& p = start_proxy(o);
  Pg sleeper(p.spec());
  ASSERT_TRUE(sleeper.ok()) << sleeper.error();
  Pg other(p.spec());
  ASSERT_TRUE(wait_until([&] { return other.ok() || (other = Pg(p.spec())).ok(); }, Millis(5000))) << other.error();
  {
    RawConn c(p.host(), p.port());
    LoginOutcome l = login(c, kUser, kPassword, kDatabase);
    ASSERT_TRUE(l.error) << l.describe();
    EXPECT_EQ(l.error->sqlstate(), "53300") << l.error->describe();
  }
  ASSERT_EQ(PQsendQuery(sleeper.get(), "SELECT pg_sleep(30) /* it-cancel-at-max */"), 1);
  ASSERT_TRUE(wait_query_running("it-cancel-at-max", Millis(5000)));
  auto t0 = Clock::now();
  PGcancel* cancel = PQgetCancel(sleeper.get());
  char err[256] = {0};
  EXPECT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
  PQfreeCancel(cancel);
  PgResult r(PQgetResult(sleeper.get()));
  EXPECT_EQ(r.sqlstate(), "57014") << r.error();
  PQclear(PQgetResult(sleeper.get()));
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(other.scalar("SELECT 'still in'"), "still in");
}

// When every server of a pool is gone and a new one cannot log in (the primary down, restarting or
// refusing), a client waiting for a server gets that error at once, and keeps its connection, instead
// of waiting out query_wait_timeout. Here the role may not log in (CONNECTION LIMIT 0) after its
// servers were terminated.
TEST_F(ConcurrencyTest, WaitingClientsGetTheErrorWhenNoServerCanLogIn) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.query_wait_timeout = "20s";
  o.workers = 1;
  Proxy& p = start_proxy(o);
  Pg client(p.spec());
  ASSERT_TRUE(client.ok()) << client.error();
  ASSERT_EQ(client.scalar("SELECT 1"), "1");
  Pg su = superuser(kDatabase);
  struct Restore {
    Pg& su;
    ~Restore() { su.exec("ALTER ROLE flopods CONNECTION LIMIT -1"); }
  } restore{su};
  su.must("ALTER ROLE flopods CONNECTION LIMIT 0");
  su.must("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'flopods' AND datname = 'flopods'");
  ASSERT_TRUE(wait_until([&] { return p.server_backends(kDatabase) == 0; }, Millis(5000)));
  auto t0 = Clock::now();
  PgResult r = client.exec("SELECT 'should not run'");
  auto waited = Clock::now() - t0;
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.sqlstate(), "08006") << r.error();
  EXPECT_NE(r.error().find("cannot connect to the server"), std::string::npos) << r.error();
  EXPECT_LT(waited, std::chrono::seconds(5)) << "waited for query_wait_timeout";
  su.must("ALTER ROLE flopods CONNECTION LIMIT -1");
  EXPECT_TRUE(wait_until([&] {
    PgResult again = client.exec("SELECT 'served again'");
    return again.ok() && again.value(0, 0) == "served again";
  }, Millis(10000))) << "the client's connection did not serve again once logins were allowed";
}

TEST_F(ConcurrencyTest, QueryWaitTimeoutGivesAClearError) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.pool_size = 1;
  o.workers = 1;  // pool_size is split across workers: one worker, one server
  o.query_wait_timeout = "1s";
  Proxy& p = start_proxy(o);
  Pg holder(p.spec()), waiter(p.spec());
  ASSERT_TRUE(holder.ok() && waiter.ok()) << holder.error() << waiter.error();
  holder.must("BEGIN");  // keeps the only server
  holder.must("SELECT 1");
  auto t0 = Clock::now();
  std::vector<PgResult> results = waiter.exec_all("SELECT 'should not run'");
  auto waited = Clock::now() - t0;
  std::string sqlstates, errors;
  for (const PgResult& r : results) {
    EXPECT_FALSE(r.ok());
    sqlstates += r.sqlstate() + " ";
    errors += r.error();
  }
  // conf/config.h: query_wait_timeout -> 57014.
  EXPECT_NE(sqlstates.find("57014"), std::string::npos) << sqlstates << errors;
  EXPECT_NE(errors.find("wait"), std::string::npos) << errors;
  EXPECT_GE(waited, std::chrono::milliseconds(900));
  EXPECT_LT(waited, std::chrono::seconds(5));
  holder.must("COMMIT");
  Pg again(p.spec());
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(again.scalar("SELECT 'served'"), "served");
}

// pool_size is the total for the process, split across workers (DESIGN.md): an odd size over two
// workers must not round up to more servers.
TEST_F(ConcurrencyTest, PoolSizeIsAProcessTotalAcrossWorkers) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.pool_size = 3;
  o.workers = 2;
  Proxy& p = start_proxy(o);
  std::atomic<int> ok{0};
  std::atomic<bool> done{false};
  int max_servers = 0;
  std::vector<std::thread> clients;
  for (int i = 0; i < 12; ++i) {
    clients.emplace_back([&, i] {
      Pg pg(p.spec());
      for (int k = 0; pg.ok() && k < 3; ++k) {
        PgResult r = pg.exec_params("SELECT pg_sleep(0.1), $1::int", {std::to_string(i)});
        if (r.ok() && r.value(0, 1) == std::to_string(i)) ++ok;
      }
    });
  }
  std::thread sampler([&] {
    while (!done) {
      max_servers = std::max(max_servers, p.server_backends(kDatabase));
      std::this_thread::sleep_for(Millis(20));  // sampling period of a measurement
    }
  });
  for (auto& t : clients) t.join();
  done = true;
  sampler.join();
  EXPECT_EQ(ok.load(), 36);
  EXPECT_GE(max_servers, 2);
  EXPECT_LE(max_servers, 3);
}

// Cells of the one-row answer to kSettingsSql from a raw simple query.
std::vector<std::string> first_row(const QueryOutcome& q) {
  for (const Msg& m : q.messages) {
    if (m.type != 'D') continue;
    std::vector<std::string> out;
    size_t pos = 2;
    while (pos + 4 <= m.body.size()) {
      uint32_t len = 0;
      for (int i = 0; i < 4; ++i) len = (len << 8) | uint8_t(m.body[pos + i]);
      pos += 4;
      out.push_back(m.body.substr(pos, len));
      pos += len;
    }
    return out;
  }
  return {};
}

constexpr const char* kSettingsSql =
    "SELECT current_setting('application_name'), current_setting('TimeZone'), "
    "current_setting('search_path'), current_setting('statement_timeout')";

TEST_F(ConcurrencyTest, StartupParametersFollowEachClientOnASharedServer) {
  ProxyOptions o;
  o.pool_size = 1;
  o.workers = 1;  // pool_size is split across workers: one worker, one server
  Proxy& p = start_proxy(o);
  ConnSpec a_spec = p.spec();
  a_spec.extra["application_name"] = "it-client-a";
  a_spec.extra["options"] = "-c statement_timeout=1234 -c TimeZone=Asia/Tokyo -c search_path=sa";
  Pg a(a_spec);
  ASSERT_TRUE(a.ok()) << a.error();
  RawConn b(p.host(), p.port());
  LoginOutcome lb = login(b, kUser, kPassword, kDatabase,
                          {{"application_name", "it-client-b"}, {"TimeZone", "America/Lima"},
                           {"search_path", "sb, public"}, {"options", "-c statement_timeout=4321"}});
  ASSERT_TRUE(lb.ok) << lb.describe();
  EXPECT_EQ(lb.parameters["application_name"], "it-client-b");
  EXPECT_EQ(lb.parameters["TimeZone"], "America/Lima");
  const std::vector<std::string> want_a = {"it-client-a", "Asia/Tokyo", "sa", "1234ms"};
  const std::vector<std::string> want_b = {"it-client-b", "America/Lima", "sb, public", "4321ms"};
  for (int round = 0; round < 3; ++round) {
    PgResult ra = a.exec(kSettingsSql);
    ASSERT_TRUE(ra.ok()) << ra.error();
    for (int i = 0; i < 4; ++i) EXPECT_EQ(ra.value(0, i), want_a[i]) << "round " << round;
    QueryOutcome qb = simple_query(b, kSettingsSql);
    ASSERT_FALSE(qb.error) << qb.error->describe();
    EXPECT_EQ(first_row(qb), want_b) << "round " << round;
  }
  // A session SET by one client must not leak to the other either.
  a.must("SET TimeZone = 'Europe/Paris'");
  QueryOutcome qb = simple_query(b, kSettingsSql);
  EXPECT_EQ(first_row(qb), want_b);
  EXPECT_EQ(a.scalar("SHOW TimeZone"), "Europe/Paris");
}

}  // namespace
}  // namespace pgs::it
