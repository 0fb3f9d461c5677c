// Issue 3: DDL in the middle of a prepared-statement workload (ALTER TABLE ... ADD COLUMN, ALTER
// COLUMN TYPE) must not surface to the clients. Postgres answers the next Bind of a statement whose
// result type changed with 0A000 "cached plan must not change result type"; the proxy has to
// re-prepare and retry (nothing was sent to the client yet) instead of passing the error on.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/session/session_util.h"

namespace pgs::it::session {
namespace {

using DdlTest = ProxyTest;

constexpr int kClients = 6;

void make_table() {
  Pg c = connect(ConnSpec{});
  c.must("DROP TABLE IF EXISTS pgs_session_ddl");
  c.must("CREATE TABLE pgs_session_ddl (id int PRIMARY KEY, v int)");
  c.must("INSERT INTO pgs_session_ddl SELECT g, g * 10 FROM generate_series(1, 100) g");
}

// One execution of the client's statement; "" when it returned the row, else the error.
std::string run_once(Pg& c, int id) {
  std::string s = std::to_string(id);
  const char* v[] = {s.c_str()};
  PgResult r(PQexecPrepared(c.get(), "ddl_q", 1, v, nullptr, nullptr, 0));
  if (!r.ok()) return r.sqlstate() + " " + r.error();
  if (r.rows() != 1 || r.value(0, 0) != s) return "wrong row for id " + s;
  return "";
}

// Every client prepared `SELECT * ...` before the DDL; each runs it after each DDL step: no errors,
// and the new column shows up. Pool of 2 shared by 6 clients (workers = 1).
// The proxy closes the stale statement, prepares it afresh and runs the batch again (issue 3 item 1).
TEST_F(DdlTest, AlterTableInTheMiddleOfPreparedWorkload) {
  PGS_IT_REQUIRE_PROXY();  // Postgres itself answers 0A000 here: recovering is the proxy's job
  make_table();
  Proxy& p = start_proxy(small_pool(2, "30s"));
  std::vector<Pg> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(connect(p.spec()));
    PgResult r(PQprepare(clients.back().get(), "ddl_q", "SELECT * FROM pgs_session_ddl WHERE id = $1", 0,
                         nullptr));
    ASSERT_TRUE(r.ok()) << r.error();
    ASSERT_EQ(run_once(clients.back(), i + 1), "");
  }
  Pg direct = connect(ConnSpec{});
  const char* steps[] = {"ALTER TABLE pgs_session_ddl ADD COLUMN w text DEFAULT 'x'",
                         "ALTER TABLE pgs_session_ddl ALTER COLUMN v TYPE bigint"};
  for (const char* ddl : steps) {
    direct.must(ddl);
    for (int round = 0; round < 3; ++round)
      for (int i = 0; i < kClients; ++i) EXPECT_EQ(run_once(clients[i], i + 1), "") << "after " << ddl;
  }
  PgResult r(PQdescribePrepared(clients[0].get(), "ddl_q"));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(PQnfields(r.get()), 3) << "the statement's result has the new column";
}

// The same with the workload running concurrently in threads while the DDL happens.
TEST_F(DdlTest, ConcurrentPreparedWorkloadAcrossDdl) {
  PGS_IT_REQUIRE_PROXY();
  make_table();
  Proxy& p = start_proxy(small_pool(2, "30s"));
  std::atomic<bool> stop{false};
  std::atomic<int> executions{0};
  std::vector<std::string> errors(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      Pg c(p.spec());
      PgResult r(PQprepare(c.get(), "ddl_q", "SELECT * FROM pgs_session_ddl WHERE id = $1", 0, nullptr));
      if (!r.ok()) errors[i] = "prepare: " + r.error();
      while (errors[i].empty() && !stop) {
        errors[i] = run_once(c, i + 1);
        ++executions;
      }
    });
  }
  Pg direct = connect(ConnSpec{});
  auto progressed = [&](int n) { return wait_until([&] { return executions >= n; }, Millis(10000)); };
  EXPECT_TRUE(progressed(50));
  direct.must("ALTER TABLE pgs_session_ddl ADD COLUMN w text DEFAULT 'x'");
  EXPECT_TRUE(progressed(executions + 100));
  direct.must("ALTER TABLE pgs_session_ddl ALTER COLUMN v TYPE bigint");
  EXPECT_TRUE(progressed(executions + 100));
  stop = true;
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(errors[i], "") << "client " << i;
}

// A client that prepares the statement only AFTER the DDL must get a working statement (it passes
// against Postgres directly). Through the proxy the statement text maps to the proxy-wide server name
// already prepared (before the DDL) on the shared server: the proxy must notice the stale plan and
// prepare it afresh.
TEST_F(DdlTest, ClientPreparingAfterDdlGetsAWorkingStatement) {
  make_table();
  Proxy& p = start_proxy(small_pool(1, "30s"));
  Pg before = connect(p.spec());
  PgResult r(PQprepare(before.get(), "ddl_q", "SELECT * FROM pgs_session_ddl WHERE id = $1", 0, nullptr));
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_EQ(run_once(before, 1), "");
  connect(ConnSpec{}).must("ALTER TABLE pgs_session_ddl ADD COLUMN w text DEFAULT 'x'");
  Pg after = connect(p.spec());
  PgResult r2(PQprepare(after.get(), "ddl_q", "SELECT * FROM pgs_session_ddl WHERE id = $1", 0, nullptr));
  ASSERT_TRUE(r2.ok()) << r2.error();
  EXPECT_EQ(run_once(after, 2), "");
}

}  // namespace
}  // namespace pgs::it::session
