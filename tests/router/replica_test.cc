// The classifier against a real hot standby (the dev replica at 127.0.0.1:15433): every statement it
// calls read-only must run there, and the statements it sends to the primary for being unsafe on a
// replica must really fail there. Also checks that the classifier and Postgres agree on what parses.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <string>

#include "router/classify.h"
#include "router/lsn.h"
#include "tests/support/pg.h"
#include "tests/support/wait.h"

namespace pgs::router {
namespace {

using Clock = std::chrono::steady_clock;
using Conn = std::unique_ptr<PGconn, decltype(&PQfinish)>;

// The superuser on the dev node at `port`, database flopods.
std::string superuser_at(uint16_t port) {
  test::ConnSpec s = test::superuser_spec(port, test::kDatabase);
  s.extra["application_name"] = "pgs-router-test";
  return s.str();
}
const std::string kPrimary = superuser_at(test::kPrimaryPort);
const std::string kReplica = superuser_at(test::kReplicaPort);

// The dev services may still be starting: retry until a deadline, never sleep blindly.
Conn connect(const std::string& conninfo) {
  Conn c(nullptr, &PQfinish);
  test::wait_until(
      [&] {
        c.reset(PQconnectdb(conninfo.c_str()));
        return PQstatus(c.get()) == CONNECTION_OK;
      },
      std::chrono::seconds(30), std::chrono::milliseconds(100));
  return c;
}

struct Outcome {
  bool ok = false;
  std::string sqlstate;
  std::string message;
};

Outcome run(PGconn* c, const std::string& sql) {
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c, sql.c_str()), &PQclear);
  ExecStatusType st = PQresultStatus(r.get());
  Outcome o;
  o.ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
  if (const char* s = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE)) o.sqlstate = s;
  o.message = PQerrorMessage(c);
  return o;
}

std::string scalar(PGconn* c, const char* sql) {
  std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c, sql), &PQclear);
  return PQresultStatus(r.get()) == PGRES_TUPLES_OK && PQntuples(r.get()) == 1 ? PQgetvalue(r.get(), 0, 0) : "";
}

class ReplicaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Conn p = connect(kPrimary);
    ASSERT_EQ(PQstatus(p.get()), CONNECTION_OK) << PQerrorMessage(p.get());
    for (const char* sql : {
             "CREATE SCHEMA IF NOT EXISTS router_it",
             "CREATE TABLE IF NOT EXISTS router_it.t (id int PRIMARY KEY, a int, note text)",
             "CREATE SEQUENCE IF NOT EXISTS router_it.s",
             "INSERT INTO router_it.t SELECT g, g * 10, 'n' || g FROM generate_series(1, 20) g "
             "ON CONFLICT (id) DO NOTHING",
         }) {
      Outcome o = run(p.get(), sql);
      ASSERT_TRUE(o.ok) << sql << ": " << o.message;
    }
    // Wait until the replica has replayed the setup.
    auto target = parse_lsn(scalar(p.get(), "SELECT pg_current_wal_lsn()"));
    ASSERT_TRUE(target.has_value());
    Conn r = connect(kReplica);
    ASSERT_EQ(PQstatus(r.get()), CONNECTION_OK) << PQerrorMessage(r.get());
    bool replayed_setup = test::wait_until(
        [&] {
          auto replayed = parse_lsn(scalar(r.get(), "SELECT pg_last_wal_replay_lsn()"));
          return replayed && *replayed >= *target;
        },
        std::chrono::seconds(30), std::chrono::milliseconds(20));
    ASSERT_TRUE(replayed_setup) << "replica did not replay the setup in 30 s";
  }

  void SetUp() override {
    replica_ = connect(kReplica);
    ASSERT_EQ(PQstatus(replica_.get()), CONNECTION_OK) << PQerrorMessage(replica_.get());
    ASSERT_EQ(scalar(replica_.get(), "SELECT pg_is_in_recovery()"), "t");
  }

  Conn replica_{nullptr, &PQfinish};
};

TEST_F(ReplicaTest, EverythingClassifiedReadOnlyRunsOnTheReplica) {
  for (const char* sql : {
           "SELECT * FROM router_it.t WHERE id = 3",
           "SELECT count(*), sum(a), max(note) FROM router_it.t",
           "SELECT lower(note), now(), random(), gen_random_uuid() FROM router_it.t LIMIT 2",
           "WITH x AS (SELECT * FROM router_it.t) SELECT * FROM x JOIN router_it.t u USING (id)",
           "SELECT * FROM router_it.t t1 WHERE a IN (SELECT a FROM router_it.t WHERE id < 5)",
           "VALUES (1, 'a'), (2, 'b')",
           "TABLE router_it.t",
           "SHOW work_mem",
           "EXPLAIN SELECT * FROM router_it.t",
           "EXPLAIN ANALYZE SELECT * FROM router_it.t",
           "SELECT current_setting('search_path'), pg_typeof(1), version()",
           "SELECT * FROM router_it.t TABLESAMPLE SYSTEM (50)",
           "SELECT jsonb_build_object('id', id) FROM router_it.t ORDER BY id LIMIT 1",
           "BEGIN READ ONLY; SELECT * FROM router_it.t; COMMIT",
           "SELECT 1; SELECT 2",
           "SELECT EXTRACT(year FROM now()), position('b' IN note) FROM router_it.t WHERE note SIMILAR TO 'n%'",
           "BEGIN READ ONLY; SAVEPOINT a; SELECT 1; ROLLBACK TO SAVEPOINT a; RELEASE a; COMMIT",
       }) {
    Classification c = classify(sql);
    ASSERT_TRUE(c.read_only) << sql;
    Outcome o = run(replica_.get(), sql);
    EXPECT_TRUE(o.ok) << sql << " failed on the replica: " << o.sqlstate << " " << o.message;
  }
}

TEST_F(ReplicaTest, StatementsKeptOffReplicasReallyFailThere) {
  for (const char* sql : {
           "SELECT nextval('router_it.s')",
           "SELECT setval('router_it.s', 5)",
           "SELECT * FROM router_it.t WHERE id = 1 FOR UPDATE",
           "SELECT * FROM router_it.t WHERE id = 1 FOR NO KEY UPDATE",
           "SELECT * FROM router_it.t WHERE id = 1 FOR SHARE",
           "WITH x AS (UPDATE router_it.t SET a = a WHERE id = 1 RETURNING *) SELECT * FROM x",
           "SELECT * INTO router_it.copy FROM router_it.t",
           "EXPLAIN ANALYZE DELETE FROM router_it.t WHERE id = -1",
           "SELECT txid_current()",
           "SELECT pg_current_xact_id()",
           "SELECT pg_current_wal_lsn()",
           "SELECT pg_notify('ch', 'x')",
           "NOTIFY ch",
           "LISTEN ch",
           "CREATE TEMP TABLE scratch (a int)",
           "INSERT INTO router_it.t VALUES (100, 1, 'x')",
           "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY; SELECT 1; COMMIT",
       }) {
    Classification c = classify(sql);
    EXPECT_FALSE(c.read_only) << sql;
    EXPECT_FALSE(c.flags.parse_error) << sql << ": " << c.error;
    Outcome o = run(replica_.get(), sql);
    EXPECT_FALSE(o.ok) << sql << " unexpectedly succeeded on the replica";
    run(replica_.get(), "ROLLBACK");
  }
}

// SHOW transaction_read_only is how libpq's target_session_attrs tells a primary from a replica.
// pg_is_in_recovery() may be answered by a replica: asking it through the proxy is how a user sees
// that reads reach one (libpq 14+ reads the in_hot_standby ParameterStatus instead).
TEST_F(ReplicaTest, NodeIdentityDiffersSoItIsAskedOfThePrimary) {
  EXPECT_EQ(scalar(replica_.get(), "SHOW transaction_read_only"), "on");
  EXPECT_FALSE(classify("SHOW transaction_read_only").read_only);
  EXPECT_TRUE(classify("SELECT pg_is_in_recovery()").read_only);
  EXPECT_EQ(scalar(replica_.get(), "SELECT pg_is_in_recovery()"), "t");
}

TEST_F(ReplicaTest, ParserAgreesWithPostgres) {
  for (const char* sql : {"SELEC 1", "SELECT FROM WHERE", "SELECT 'x", "INSERT INTO router_it.t VALUES ("}) {
    EXPECT_TRUE(classify(sql).flags.parse_error) << sql;
    Outcome o = run(replica_.get(), sql);
    EXPECT_FALSE(o.ok) << sql;
    EXPECT_EQ(o.sqlstate.substr(0, 2), "42") << sql << ": " << o.message;
  }
}

}  // namespace
}  // namespace pgs::router
