// Issue 3, SQL-level PREPARE / EXECUTE / DEALLOCATE under transaction pooling: each client's statements
// are its own on shared servers, without pinning, and every answer is what a real Postgres session
// gives (run with PGS_IT_TARGET=direct to check the expectations against the server itself).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/session/session_util.h"

namespace pgs::it::session {
namespace {

using SqlPreparedTest = ProxyTest;

std::string exec_value(Pg& c, const std::string& sql) {
  PgResult r = c.exec(sql);
  if (!r.ok()) return "ERROR " + r.sqlstate();
  if (r.rows() < 1) return "(no rows)";
  return r.value(0, 0);
}

// Pool of 1, three clients: A and B prepare `q` differently, C has none. Over many interleaved
// transactions (autocommit, explicit blocks, multi-statement queries) each gets its own statement.
TEST_F(SqlPreparedTest, SameNameDifferentClientsInterleaved) {
  Proxy& p = start_proxy(small_pool(1));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  Pg c = connect(p.spec());
  a.must("PREPARE q(int) AS SELECT $1 * 10");
  b.must("PREPARE q(int) AS SELECT $1 || 'b'");
  for (int i = 0; i < 25; ++i) {
    std::string n = std::to_string(i);
    EXPECT_EQ(exec_value(a, "EXECUTE q(" + n + ")"), std::to_string(i * 10));
    EXPECT_EQ(exec_value(b, "EXECUTE q(" + n + ")"), n + "b");
    EXPECT_EQ(exec_value(c, "EXECUTE q(" + n + ")"), "ERROR 26000") << "C has no q";
    if (i % 3 == 0) {
      a.must("BEGIN");
      EXPECT_EQ(exec_value(a, "EXECUTE q(" + n + ")"), std::to_string(i * 10));
      a.must("COMMIT");
    }
    if (i % 4 == 1) EXPECT_EQ(exec_value(b, "SELECT 1; EXECUTE q(7)"), "7b");
  }
  if (!p.direct()) {
    // The other clients' statements stayed on the one server: the proxy did not pin A or B.
    EXPECT_EQ(backend_pid(a), backend_pid(b));
  }
}

// A pool of 1 is not held by a client with SQL-prepared statements, inside or after its transactions.
TEST_F(SqlPreparedTest, PrepareDoesNotPin) {
  Proxy& p = start_proxy(small_pool(1, "1s"));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  a.must("PREPARE np1 AS SELECT 1");
  a.must("BEGIN; PREPARE np2 AS SELECT 2; COMMIT");
  EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "") << "B gets the only server";
  EXPECT_EQ(a.scalar("EXECUTE np2"), "2");
  if (!p.direct()) {
    std::string page = scrape_metrics(p);
    EXPECT_EQ(metric_value(page, "pgsidecar_pinned_clients", "reason=\"sql_prepare\""), 0) << page;
  }
}

// Errors exactly as a server gives them: 42P05 for a name in use (also when the server in between
// served someone else's statement of that name), 26000 for an unknown one.
TEST_F(SqlPreparedTest, DuplicateAndUnknownNames) {
  Proxy& p = start_proxy(small_pool(1));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  a.must("PREPARE d(int) AS SELECT $1 + 1");
  b.must("PREPARE d AS SELECT 'b'");
  EXPECT_EQ(sqlstate_of(a, "PREPARE d AS SELECT 2"), "42P05");
  EXPECT_EQ(exec_value(a, "EXECUTE d(1)"), "2") << "the failed PREPARE left A's statement alone";
  EXPECT_EQ(sqlstate_of(a, "EXECUTE nope"), "26000");
  EXPECT_EQ(sqlstate_of(a, "DEALLOCATE nope"), "26000");
  EXPECT_EQ(sqlstate_of(b, "PREPARE d AS SELECT 'again'"), "42P05");
  EXPECT_EQ(exec_value(b, "EXECUTE d"), "b");
  // A multi-statement query: the first PREPARE stays (not transactional), the second fails.
  EXPECT_EQ(sqlstate_of(a, "PREPARE d2 AS SELECT 22; PREPARE d2 AS SELECT 23"), "42P05");
  EXPECT_EQ(exec_value(a, "EXECUTE d2"), "22");
  EXPECT_EQ(sqlstate_of(b, "EXECUTE d2"), "26000");
}

TEST_F(SqlPreparedTest, DeallocateDeallocateAllDiscardAll) {
  Proxy& p = start_proxy(small_pool(1));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  a.must("PREPARE x1 AS SELECT 'a1'");
  a.must("PREPARE x2 AS SELECT 'a2'");
  b.must("PREPARE x1 AS SELECT 'b1'");
  a.must("DEALLOCATE x1");
  EXPECT_EQ(sqlstate_of(a, "EXECUTE x1"), "26000");
  EXPECT_EQ(exec_value(b, "EXECUTE x1"), "b1") << "A's DEALLOCATE is A's";
  a.must("PREPARE x1 AS SELECT 'a1 again'");
  EXPECT_EQ(exec_value(a, "EXECUTE x1"), "a1 again");
  a.must("DEALLOCATE ALL");
  EXPECT_EQ(sqlstate_of(a, "EXECUTE x1"), "26000");
  EXPECT_EQ(sqlstate_of(a, "EXECUTE x2"), "26000");
  EXPECT_EQ(exec_value(b, "EXECUTE x1"), "b1") << "A's DEALLOCATE ALL is A's";
  a.must("PREPARE x2 AS SELECT 'a2 again'");
  EXPECT_EQ(exec_value(a, "EXECUTE x2"), "a2 again");
  a.must("DISCARD ALL");
  EXPECT_EQ(sqlstate_of(a, "EXECUTE x2"), "26000");
  EXPECT_EQ(exec_value(b, "EXECUTE x1"), "b1") << "A's DISCARD ALL is A's";
  // DEALLOCATE ALL and a PREPARE in one query: only what follows it stays.
  a.must("PREPARE y1 AS SELECT 1");
  a.must("DEALLOCATE ALL; PREPARE y2 AS SELECT 2");
  EXPECT_EQ(sqlstate_of(a, "EXECUTE y1"), "26000");
  EXPECT_EQ(exec_value(a, "EXECUTE y2"), "2");
}

// Prepared statements are not transactional in Postgres: a PREPARE or DEALLOCATE in a transaction
// that rolls back (explicitly, or an implicit one whose later statement fails) still took effect; a
// statement that fails itself (aborted transaction) did nothing.
TEST_F(SqlPreparedTest, NotTransactionalAsOnTheServer) {
  Proxy& p = start_proxy(small_pool(1));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  a.must("BEGIN");
  a.must("PREPARE t1 AS SELECT 't1'");
  a.must("ROLLBACK");
  EXPECT_EQ(exec_value(b, "SELECT 1"), "1");
  EXPECT_EQ(exec_value(a, "EXECUTE t1"), "t1") << "PREPARE survives ROLLBACK";
  a.must("BEGIN");
  a.must("DEALLOCATE t1");
  a.must("ROLLBACK");
  EXPECT_EQ(sqlstate_of(a, "EXECUTE t1"), "26000") << "DEALLOCATE survives ROLLBACK";
  EXPECT_EQ(sqlstate_of(a, "PREPARE t2 AS SELECT 't2'; SELECT 1/0; PREPARE t3 AS SELECT 't3'"), "22012");
  EXPECT_EQ(exec_value(a, "EXECUTE t2"), "t2") << "before the failing statement: stays";
  EXPECT_EQ(sqlstate_of(a, "EXECUTE t3"), "26000") << "after it: never ran";
  a.must("BEGIN");
  EXPECT_EQ(sqlstate_of(a, "SELECT 1/0"), "22012");
  EXPECT_EQ(sqlstate_of(a, "PREPARE t4 AS SELECT 't4'"), "25P02");
  EXPECT_EQ(sqlstate_of(a, "EXECUTE t2"), "25P02");
  a.must("ROLLBACK");
  EXPECT_EQ(sqlstate_of(a, "EXECUTE t4"), "26000");
  EXPECT_EQ(exec_value(a, "EXECUTE t2"), "t2");
}

// Parameter types in PREPARE, parameters in EXECUTE, PREPARE / EXECUTE / DEALLOCATE through the
// extended protocol (libpq's PQexecParams: Parse/Bind/Execute, as JDBC and psycopg 3 send them), and
// EXPLAIN / CREATE TABLE AS of an EXECUTE.
TEST_F(SqlPreparedTest, ParameterTypesAndExtendedProtocol) {
  Proxy& p = start_proxy(small_pool(1));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  a.must("PREPARE pt(int, text) AS SELECT ($1 + 1)::text || $2");
  b.must("PREPARE pt(int, text) AS SELECT $2 || 'B'");
  EXPECT_EQ(exec_value(a, "EXECUTE pt(41, 'x')"), "42x");
  PgResult r = a.exec_params("EXECUTE pt(9, 'y')", {});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(0, 0), "10y");
  PgResult rb = b.exec_params("EXECUTE pt(1, 'z')", {});
  ASSERT_TRUE(rb.ok()) << rb.error();
  EXPECT_EQ(rb.value(0, 0), "zB");
  PgResult prep = a.exec_params("PREPARE ext AS SELECT 'extended'", {});
  ASSERT_TRUE(prep.ok()) << prep.error();
  EXPECT_EQ(exec_value(b, "SELECT 1"), "1");
  EXPECT_EQ(exec_value(a, "EXECUTE ext"), "extended");
  EXPECT_EQ(a.exec_params("PREPARE ext AS SELECT 2", {}).sqlstate(), "42P05");
  EXPECT_EQ(sqlstate_of(b, "EXECUTE ext"), "26000");
  PgResult dealloc = a.exec_params("DEALLOCATE ext", {});
  ASSERT_TRUE(dealloc.ok()) << dealloc.error();
  EXPECT_EQ(sqlstate_of(a, "EXECUTE ext"), "26000");
  PgResult plan = a.exec("EXPLAIN EXECUTE pt(1, 'e')");
  ASSERT_TRUE(plan.ok()) << plan.error();
  EXPECT_EQ(sqlstate_of(b, "EXPLAIN EXECUTE nope"), "26000");
  a.must("DROP TABLE IF EXISTS sqlprep_ctas");
  a.must("CREATE TABLE sqlprep_ctas AS EXECUTE pt(2, 'c')");
  EXPECT_EQ(exec_value(a, "SELECT * FROM sqlprep_ctas"), "3c");
  a.must("DROP TABLE sqlprep_ctas");
}

// The server connection is terminated: the statement is prepared again on the next one.
TEST_F(SqlPreparedTest, SurvivesServerReconnect) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start_proxy(small_pool(1));
  Pg a = connect(p.spec());
  a.must("PREPARE rc(int) AS SELECT $1 - 1");
  EXPECT_EQ(a.scalar("EXECUTE rc(10)"), "9");
  const int pid = backend_pid(a);
  Pg su = superuser(kDatabase);
  su.must("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
  ASSERT_TRUE(wait_backend_gone(pid, Millis(10000)));
  EXPECT_EQ(exec_value(a, "EXECUTE rc(20)"), "19");
  EXPECT_NE(backend_pid(a), pid);
  EXPECT_EQ(sqlstate_of(a, "PREPARE rc AS SELECT 1"), "42P05") << "still A's, on the new server too";
}

// A table the statement reads is dropped: replaying it fails the way EXECUTE fails on a server
// (42P01), and the client carries on.
TEST_F(SqlPreparedTest, ReplayThatFailsIsTheRequestsError) {
  Proxy& p = start_proxy(small_pool(1));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  a.must("DROP TABLE IF EXISTS sqlprep_gone");
  a.must("CREATE TABLE sqlprep_gone (x int)");
  a.must("INSERT INTO sqlprep_gone VALUES (5)");
  a.must("PREPARE g AS SELECT x FROM sqlprep_gone");
  EXPECT_EQ(a.scalar("EXECUTE g"), "5");
  b.must("PREPARE g AS SELECT 'b'");  // on a pool of 1, A's g is deallocated for B's
  EXPECT_EQ(exec_value(b, "EXECUTE g"), "b");
  b.must("DROP TABLE sqlprep_gone");
  EXPECT_EQ(sqlstate_of(a, "EXECUTE g"), "42P01");
  EXPECT_EQ(a.scalar("SELECT 1"), "1");
  a.must("BEGIN");
  EXPECT_EQ(sqlstate_of(a, "EXECUTE g"), "42P01");
  EXPECT_EQ(sqlstate_of(a, "SELECT 1"), "25P02") << "the failure aborted the transaction, as on a server";
  a.must("ROLLBACK");
  a.must("DEALLOCATE g");
  EXPECT_EQ(exec_value(b, "EXECUTE g"), "b");
}

// [session] max_prepared_statements bounds what one server keeps: more statements than that keep
// working, and the server holds no more than the bound between requests.
TEST_F(SqlPreparedTest, MoreStatementsThanTheServerHolds) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o = small_pool(1);
  o.extra_toml = "[session]\nmax_prepared_statements = 2\n";
  Proxy& p = start_proxy(o);
  Pg a = connect(p.spec());
  for (int k = 0; k < 6; ++k) a.must("PREPARE m" + std::to_string(k) + " AS SELECT " + std::to_string(k));
  for (int round = 0; round < 3; ++round) {
    for (int k = 0; k < 6; ++k) EXPECT_EQ(exec_value(a, "EXECUTE m" + std::to_string(k)), std::to_string(k));
  }
  EXPECT_LE(std::stoi(a.scalar("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'm_'")), 2);
  EXPECT_EQ(sqlstate_of(a, "PREPARE m0 AS SELECT 0"), "42P05") << "evicted from the server, not forgotten";
}

// pinning = "refuse" refuses what pins; a SQL PREPARE no longer does.
TEST_F(SqlPreparedTest, RefuseModeAllowsPrepare) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o = small_pool(1, "1s");
  o.extra_toml = "[session]\npinning = \"refuse\"\n";
  Proxy& p = start_proxy(o);
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  a.must("PREPARE rf(int) AS SELECT $1 * 2");
  EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "");
  EXPECT_EQ(a.scalar("EXECUTE rf(21)"), "42");
}

// PREPARE run as dynamic SQL (the proxy cannot see it) still pins, as before: the statement stays
// on that server for the client until it is deallocated.
TEST_F(SqlPreparedTest, PrepareByDynamicSqlPins) {
  Proxy& p = start_proxy(small_pool(1, "1s"));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  a.must("DO $$BEGIN EXECUTE 'PREPARE dyn AS SELECT 99'; END$$");
  if (!p.direct()) {
    EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "57014") << "pinned (pool of 1)";
  }
  EXPECT_EQ(a.scalar("EXECUTE dyn"), "99");
  a.must("DEALLOCATE dyn");
  EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "") << "DEALLOCATE unpins";
}

// pgbench with a custom script of PREPARE / EXECUTE / DEALLOCATE, a definition per client, each
// line its own transaction (so a client's statements move between servers): 8 clients, pool of 2,
// and a wrong result fails the transaction.
TEST_F(SqlPreparedTest, PgbenchScript8ClientsPoolOf2) {
  Proxy& p = start_proxy(small_pool(2, "30s"));
  std::string script = testing::TempDir() + "sqlprep_pgbench.sql";
  {
    RunResult w = run_program({"sh", "-c", "cat > " + script}, {}, Millis(5000),
                              "PREPARE pq(int) AS SELECT $1 + :client_id AS r;\n"
                              "EXECUTE pq(1000) \\gset\n"
                              "\\if :r != 1000 + :client_id\n"
                              "SELECT 1/0;\n"
                              "\\endif\n"
                              "BEGIN;\n"
                              "EXECUTE pq(2000) \\gset\n"
                              "COMMIT;\n"
                              "\\if :r != 2000 + :client_id\n"
                              "SELECT 1/0;\n"
                              "\\endif\n"
                              "DEALLOCATE pq;\n");
    ASSERT_EQ(w.exit_code, 0) << w.describe();
  }
  RunResult r = run_program({"pgbench", "-n", "-h", p.host(), "-p", std::to_string(p.port()), "-U", kUser,
                             "-c", "8", "-j", "2", "-t", "60", "-M", "simple", "-f", script, kDatabase},
                            {{"PGPASSWORD", kPassword}, {"PGSSLMODE", "disable"}}, Millis(120000));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("number of transactions actually processed: 480/480"), std::string::npos) << r.describe();
  EXPECT_EQ(r.err.find("ERROR"), std::string::npos) << r.describe();
  EXPECT_EQ(r.err.find("aborted"), std::string::npos) << r.describe();
}

}  // namespace
}  // namespace pgs::it::session
