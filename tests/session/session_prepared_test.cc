// Issue 3, protocol-level named prepared statements under transaction pooling, with libpq (PQprepare,
// PQexecPrepared, pipeline mode) and a raw socket for Close: each client's names are its own, Close /
// DEALLOCATE / DEALLOCATE ALL / DISCARD ALL behave as on a real server, statements survive a server
// reconnect and a small per-server LRU, and DDL in the middle of the workload does not surface.
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "tests/support/raw_client.h"
#include "tests/session/session_util.h"

namespace pgs::it::session {
namespace {

using PreparedTest = ProxyTest;

PgResult prepare(Pg& c, const std::string& name, const std::string& sql) {
  return PgResult(PQprepare(c.get(), name.c_str(), sql.c_str(), 0, nullptr));
}

PgResult exec_prepared(Pg& c, const std::string& name, const std::vector<std::string>& params) {
  std::vector<const char*> v;
  for (const auto& s : params) v.push_back(s.c_str());
  return PgResult(PQexecPrepared(c.get(), name.c_str(), static_cast<int>(v.size()), v.data(), nullptr,
                                 nullptr, 0));
}

std::string run(Pg& c, const std::string& name, const std::vector<std::string>& params) {
  PgResult r = exec_prepared(c, name, params);
  if (!r.ok() || r.rows() < 1) return "ERROR " + r.sqlstate() + " " + r.error();
  return r.value(0, 0);
}

// Pool of 1: two clients use the same statement name for different statements, interleaved on one
// server connection; each always gets its own statement.
TEST_F(PreparedTest, SameNameDifferentClientsOnOneServer) {
  Proxy& p = start_proxy(small_pool(1));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  ASSERT_TRUE(prepare(a, "s1", "SELECT $1::int + 1").ok());
  ASSERT_TRUE(prepare(b, "s1", "SELECT $1::text || '-b'").ok());
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(run(a, "s1", {std::to_string(i)}), std::to_string(i + 1));
    EXPECT_EQ(run(b, "s1", {std::to_string(i)}), std::to_string(i) + "-b");
  }
  EXPECT_EQ(run(a, "nope", {}).substr(0, 11), "ERROR 26000");
}

// The proxy's server-side statement names (pgsidecar_<hash>, shared by every client of the pool) are
// out of a client's reach: SQL PREPARE/EXECUTE/DEALLOCATE of one gets 42501, a Bind or Describe of
// one 26000 (as any statement the client does not have); the owner's statement keeps working.
TEST_F(PreparedTest, ProxyStatementNamesAreReserved) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start_proxy(small_pool(1));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  ASSERT_TRUE(prepare(a, "s1", "SELECT $1::int * 3").ok());
  a.must("BEGIN");
  EXPECT_EQ(run(a, "s1", {"2"}), "6");
  std::string name = a.scalar("SELECT name FROM pg_prepared_statements WHERE name LIKE 'pgsidecar%' LIMIT 1");
  a.must("COMMIT");
  ASSERT_EQ(name.rfind("pgsidecar_", 0), 0u) << name;
  EXPECT_EQ(sqlstate_of(b, "EXECUTE " + name + "(4)"), "42501");
  EXPECT_EQ(sqlstate_of(b, "DEALLOCATE " + name), "42501");
  EXPECT_EQ(sqlstate_of(b, "PREPARE " + name + " AS SELECT 666"), "42501");
  EXPECT_EQ(run(b, name, {"4"}).substr(0, 11), "ERROR 26000") << "Bind of the server-side name";
  PgResultPtr d(PQdescribePrepared(b.get(), name.c_str()));
  EXPECT_EQ(std::string(PQresultErrorField(d.get(), PG_DIAG_SQLSTATE) ? PQresultErrorField(d.get(), PG_DIAG_SQLSTATE) : ""),
            "26000");
  EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "") << "B's session goes on";
  EXPECT_EQ(run(a, "s1", {"5"}), "15") << "A's statement is untouched";
}

// Parse with a name the client already uses fails with 42P05 and leaves the statement alone.
TEST_F(PreparedTest, DuplicateNameGets42P05) {
  Proxy& p = start_proxy(small_pool(1));
  Pg a = connect(p.spec());
  ASSERT_TRUE(prepare(a, "s1", "SELECT $1::int + 1").ok());
  EXPECT_EQ(prepare(a, "s1", "SELECT 2").sqlstate(), "42P05") << "duplicate name, as on a server";
  EXPECT_EQ(run(a, "s1", {"5"}), "6") << "the failed Parse left the statement alone";
}

// Pool of 1 with two clients: A prepares s1 and s2, B prepares s1 with the same text (so the
// proxy-wide server name is shared). What A forgets must not touch B.
struct TwoClients {
  Pg a, b;
};
TwoClients two_clients_with_statements(Proxy& p) {
  TwoClients t{connect(p.spec()), connect(p.spec())};
  for (auto [c, name, sql] : {std::tuple{&t.a, "s1", "SELECT 1"}, std::tuple{&t.a, "s2", "SELECT 2"},
                              std::tuple{&t.b, "s1", "SELECT 1"}}) {
    PgResult r = prepare(*c, name, sql);
    if (!r.ok()) throw std::runtime_error("prepare failed: " + r.error());
  }
  return t;
}

// SQL DEALLOCATE of a protocol-level statement forgets it (26000 afterwards, and for a second
// DEALLOCATE), and the name can be prepared again (no 42P05).
TEST_F(PreparedTest, SqlDeallocateOfProtocolStatement) {
  Proxy& p = start_proxy(small_pool(1));
  auto [a, b] = two_clients_with_statements(p);
  EXPECT_EQ(sqlstate_of(a, "DEALLOCATE s1"), "");
  EXPECT_EQ(run(a, "s1", {}).substr(0, 11), "ERROR 26000");
  EXPECT_EQ(run(a, "s2", {}), "2");
  EXPECT_EQ(run(b, "s1", {}), "1") << "A's DEALLOCATE must not touch B's statement";
  EXPECT_EQ(sqlstate_of(a, "DEALLOCATE s1"), "26000");
  ASSERT_TRUE(prepare(a, "s1", "SELECT 11").ok());
  EXPECT_EQ(run(a, "s1", {}), "11");
}

TEST_F(PreparedTest, SqlDeallocateAll) {
  Proxy& p = start_proxy(small_pool(1));
  auto [a, b] = two_clients_with_statements(p);
  a.must("DEALLOCATE ALL");
  EXPECT_EQ(run(a, "s1", {}).substr(0, 11), "ERROR 26000");
  EXPECT_EQ(run(a, "s2", {}).substr(0, 11), "ERROR 26000");
  EXPECT_EQ(run(b, "s1", {}), "1") << "A's DEALLOCATE ALL must not touch B's statement";
  ASSERT_TRUE(prepare(a, "s2", "SELECT 22").ok()) << "the name is free again";
  EXPECT_EQ(run(a, "s2", {}), "22");
}

TEST_F(PreparedTest, DiscardAllForgetsStatements) {
  Proxy& p = start_proxy(small_pool(1));
  auto [a, b] = two_clients_with_statements(p);
  a.must("DISCARD ALL");
  EXPECT_EQ(run(a, "s1", {}).substr(0, 11), "ERROR 26000");
  EXPECT_EQ(run(a, "s2", {}).substr(0, 11), "ERROR 26000");
  EXPECT_EQ(run(b, "s1", {}), "1") << "A's DISCARD ALL must not touch B's statement";
  ASSERT_TRUE(prepare(a, "s2", "SELECT 23").ok()) << "the name is free again";
  EXPECT_EQ(run(a, "s2", {}), "23");
}

std::string parse_msg(const std::string& name, const std::string& sql) {
  return typed_message('P', name + '\0' + sql + '\0' + std::string(2, '\0'));
}
std::string bind_msg(const std::string& stmt) {
  return typed_message('B', std::string(1, '\0') + stmt + '\0' + std::string(6, '\0'));
}
std::string execute_msg() { return typed_message('E', std::string(5, '\0')); }
std::string close_msg(const std::string& stmt) { return typed_message('C', "S" + stmt + '\0'); }
std::string sync_msg() { return typed_message('S', ""); }

bool has_type(const QueryOutcome& q, char t) {
  for (const auto& m : q.messages) if (m.type == t) return true;
  return false;
}

// Protocol Close of a statement: CloseComplete, then a Bind of it fails with 26000; Close of an
// unknown name is not an error (as on a server). Another client shares the only server meanwhile.
TEST_F(PreparedTest, ProtocolCloseThenBindGets26000) {
  Proxy& p = start_proxy(small_pool(1));
  RawConn raw(p.host(), p.port());
  ASSERT_TRUE(login(raw, kUser, kPassword, kDatabase).ok);
  Pg other = connect(p.spec());
  raw.send(parse_msg("c1", "SELECT 'raw'") + sync_msg());
  QueryOutcome q = read_until_ready(raw);
  ASSERT_FALSE(q.error) << q.error->describe();
  EXPECT_TRUE(has_type(q, '1'));
  ASSERT_TRUE(prepare(other, "c1", "SELECT 'other'").ok());
  EXPECT_EQ(run(other, "c1", {}), "other");
  raw.send(bind_msg("c1") + execute_msg() + sync_msg());
  q = read_until_ready(raw);
  ASSERT_FALSE(q.error) << q.error->describe();
  EXPECT_TRUE(has_type(q, 'D'));
  raw.send(close_msg("c1") + close_msg("never-prepared") + sync_msg());
  q = read_until_ready(raw);
  ASSERT_FALSE(q.error) << q.error->describe();
  int closes = 0;
  for (const auto& m : q.messages) closes += m.type == '3';
  EXPECT_EQ(closes, 2);
  raw.send(bind_msg("c1") + execute_msg() + sync_msg());
  q = read_until_ready(raw);
  ASSERT_TRUE(q.error);
  EXPECT_EQ(q.error->sqlstate(), "26000") << q.error->describe();
  EXPECT_EQ(q.status, 'I');
  EXPECT_EQ(run(other, "c1", {}), "other");
}

// libpq pipeline mode: prepare and several executions sent before any result is read.
TEST_F(PreparedTest, PipelinedPrepareAndExecute) {
  Proxy& p = start_proxy(small_pool(1));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  ASSERT_EQ(PQenterPipelineMode(a.get()), 1);
  ASSERT_EQ(PQsendPrepare(a.get(), "pp", "SELECT $1::int * 3", 0, nullptr), 1);
  std::vector<std::string> args = {"1", "2", "3", "4", "5"};
  for (const auto& s : args) {
    const char* v[] = {s.c_str()};
    ASSERT_EQ(PQsendQueryPrepared(a.get(), "pp", 1, v, nullptr, nullptr, 0), 1);
  }
  ASSERT_EQ(PQpipelineSync(a.get()), 1);
  std::vector<std::string> got;
  for (int i = 0; i < 1 + static_cast<int>(args.size()); ++i) {
    PgResult r(PQgetResult(a.get()));
    ASSERT_TRUE(r.ok()) << r.error();
    if (r.status() == PGRES_TUPLES_OK) got.push_back(r.value(0, 0));
    PgResult end(PQgetResult(a.get()));  // the NULL between results of a pipeline
  }
  PgResult sync(PQgetResult(a.get()));
  EXPECT_EQ(sync.status(), PGRES_PIPELINE_SYNC);
  ASSERT_EQ(PQexitPipelineMode(a.get()), 1);
  EXPECT_EQ(got, (std::vector<std::string>{"3", "6", "9", "12", "15"}));
  EXPECT_EQ(b.scalar("SELECT 1"), "1");
  EXPECT_EQ(run(a, "pp", {"7"}), "21");
}

// max_prepared_statements = 2: more statements than the per-server LRU holds keep working.
TEST_F(PreparedTest, MoreStatementsThanTheServerLru) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o = small_pool(1);
  o.extra_toml = "[session]\nmax_prepared_statements = 2\n";
  Proxy& p = start_proxy(o);
  Pg a = connect(p.spec());
  for (int k = 0; k < 6; ++k)
    ASSERT_TRUE(prepare(a, "l" + std::to_string(k), "SELECT " + std::to_string(k) + " + $1::int").ok());
  for (int round = 0; round < 3; ++round)
    for (int k = 0; k < 6; ++k) EXPECT_EQ(run(a, "l" + std::to_string(k), {"100"}), std::to_string(100 + k));
  EXPECT_LE(std::stoi(a.scalar("SELECT count(*) FROM pg_prepared_statements")), 2);
}

// The server connection is terminated between two executions: the next Bind of a statement prepared
// earlier works on a new server connection.
TEST_F(PreparedTest, StatementSurvivesServerReconnect) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start_proxy(small_pool(1));
  Pg a = connect(p.spec());
  ASSERT_TRUE(prepare(a, "r1", "SELECT $1::int - 1").ok());
  EXPECT_EQ(run(a, "r1", {"10"}), "9");
  const int pid = backend_pid(a);
  Pg su = superuser(kDatabase);
  su.must("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
  ASSERT_TRUE(wait_backend_gone(pid, Millis(10000)));
  EXPECT_EQ(run(a, "r1", {"20"}), "19");
  EXPECT_NE(backend_pid(a), pid);
}

// SQL-level PREPARE / EXECUTE / DEALLOCATE do not pin (pool of 1): another client gets the only
// server between A's statements, and A's statement still works. (More in session_sql_prepared_test.)
TEST_F(PreparedTest, SqlPrepareExecuteDeallocate) {
  Proxy& p = start_proxy(small_pool(1, "1s"));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  a.must("PREPARE q(int) AS SELECT $1 * 10");
  EXPECT_EQ(a.scalar("EXECUTE q(4)"), "40");
  EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "") << "SQL PREPARE does not pin (pool of 1)";
  EXPECT_EQ(sqlstate_of(b, "EXECUTE q(1)"), "26000") << "A's statement is A's";
  EXPECT_EQ(a.scalar("EXECUTE q(5)"), "50");
  a.must("DEALLOCATE q");
  EXPECT_EQ(sqlstate_of(a, "EXECUTE q(6)"), "26000");
  EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "");
}

}  // namespace
}  // namespace pgs::it::session
