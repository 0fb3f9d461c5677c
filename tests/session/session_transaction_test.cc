// Issue 3, transaction boundaries under transaction pooling (pool of 1, so whether the server was
// released shows as B getting it or timing out with 57014): an error inside a transaction keeps the
// server until ROLLBACK; ROLLBACK TO SAVEPOINT stays on the same server; COMMIT of a failed
// transaction reports ROLLBACK; a multi-statement Query's implicit transaction releases after its
// ReadyForQuery, and one that leaves a transaction open does not.
#include <gtest/gtest.h>

#include <string>

#include "tests/session/session_util.h"

namespace pgs::it::session {
namespace {

using TransactionTest = ProxyTest;

void make_table(Pg& c) {
  c.must("DROP TABLE IF EXISTS pgs_session_tx");
  c.must("CREATE TABLE pgs_session_tx (x int)");
}

TEST_F(TransactionTest, ErrorInsideTransactionKeepsServerUntilRollback) {
  Proxy& p = start_proxy(small_pool(1, "1s"));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  a.must("BEGIN");
  const int pid = backend_pid(a);
  EXPECT_EQ(sqlstate_of(a, "SELECT 1/0"), "22012");
  if (!p.direct()) {
    EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "57014") << "A's failed transaction holds the server";
  }
  EXPECT_EQ(sqlstate_of(a, "SELECT 1"), "25P02") << "still in A's failed transaction";
  EXPECT_EQ(PQtransactionStatus(a.get()), PQTRANS_INERROR);
  a.must("ROLLBACK");
  EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "");
  EXPECT_EQ(backend_pid(a), pid);
}

TEST_F(TransactionTest, RollbackToSavepointStaysOnTheServer) {
  Proxy& p = start_proxy(small_pool(1, "1s"));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  make_table(a);
  a.must("BEGIN");
  a.must("INSERT INTO pgs_session_tx VALUES (1)");
  a.must("SAVEPOINT sp");
  a.must("INSERT INTO pgs_session_tx VALUES (2)");
  EXPECT_EQ(sqlstate_of(a, "SELECT 1/0"), "22012");
  a.must("ROLLBACK TO SAVEPOINT sp");
  EXPECT_EQ(PQtransactionStatus(a.get()), PQTRANS_INTRANS);
  if (!p.direct()) {
    EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "57014") << "still A's transaction";
  }
  a.must("INSERT INTO pgs_session_tx VALUES (3)");
  a.must("RELEASE SAVEPOINT sp");
  a.must("COMMIT");
  EXPECT_EQ(b.scalar("SELECT string_agg(x::text, ',' ORDER BY x) FROM pgs_session_tx"), "1,3");
}

TEST_F(TransactionTest, CommitOfFailedTransactionReturnsRollback) {
  Proxy& p = start_proxy(small_pool(1, "1s"));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  make_table(a);
  a.must("BEGIN");
  a.must("INSERT INTO pgs_session_tx VALUES (1)");
  EXPECT_EQ(sqlstate_of(a, "SELECT 1/0"), "22012");
  PgResult r = a.exec("COMMIT");
  EXPECT_TRUE(r.ok()) << r.error();
  EXPECT_STREQ(PQcmdStatus(r.get()), "ROLLBACK");
  EXPECT_EQ(PQtransactionStatus(a.get()), PQTRANS_IDLE);
  EXPECT_EQ(b.scalar("SELECT count(*) FROM pgs_session_tx"), "0") << "released, and rolled back";
}

TEST_F(TransactionTest, MultiStatementQueryImplicitTransaction) {
  Proxy& p = start_proxy(small_pool(1, "1s"));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  make_table(a);
  // Fails halfway: the implicit transaction rolls back as a whole, and the server is free after it.
  EXPECT_EQ(sqlstate_of(a, "INSERT INTO pgs_session_tx VALUES (1); SELECT 1/0; INSERT INTO pgs_session_tx VALUES (2)"),
            "22012");
  EXPECT_EQ(PQtransactionStatus(a.get()), PQTRANS_IDLE);
  EXPECT_EQ(b.scalar("SELECT count(*) FROM pgs_session_tx"), "0");
  // Succeeds: released after its ReadyForQuery.
  a.must("INSERT INTO pgs_session_tx VALUES (1); INSERT INTO pgs_session_tx VALUES (2)");
  EXPECT_EQ(b.scalar("SELECT count(*) FROM pgs_session_tx"), "2");
  // Leaves a transaction open: the server stays A's until COMMIT.
  a.must("BEGIN; INSERT INTO pgs_session_tx VALUES (3)");
  EXPECT_EQ(PQtransactionStatus(a.get()), PQTRANS_INTRANS);
  if (!p.direct()) {
    EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "57014") << "A's open transaction holds the server";
  }
  a.must("INSERT INTO pgs_session_tx VALUES (4); COMMIT");
  EXPECT_EQ(b.scalar("SELECT count(*) FROM pgs_session_tx"), "4");
  // COMMIT in the middle of a Query: what follows runs in its own implicit transaction.
  a.must("BEGIN; INSERT INTO pgs_session_tx VALUES (5); COMMIT; SELECT 1");
  EXPECT_EQ(b.scalar("SELECT count(*) FROM pgs_session_tx"), "5");
  a.must("DROP TABLE pgs_session_tx");
}

// Extended protocol: an error before Sync makes the server skip to the Sync; the server is released
// after its ReadyForQuery and both clients carry on.
TEST_F(TransactionTest, PipelineErrorReleasesAfterSync) {
  Proxy& p = start_proxy(small_pool(1, "1s"));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  ASSERT_EQ(PQenterPipelineMode(a.get()), 1);
  ASSERT_EQ(PQsendQueryParams(a.get(), "SELECT 1/0", 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQsendQueryParams(a.get(), "SELECT 2", 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQpipelineSync(a.get()), 1);
  PgResult first(PQgetResult(a.get()));
  EXPECT_EQ(first.sqlstate(), "22012");
  PgResult end1(PQgetResult(a.get()));
  PgResult second(PQgetResult(a.get()));
  EXPECT_EQ(second.status(), PGRES_PIPELINE_ABORTED);
  PgResult end2(PQgetResult(a.get()));
  PgResult sync(PQgetResult(a.get()));
  EXPECT_EQ(sync.status(), PGRES_PIPELINE_SYNC);
  ASSERT_EQ(PQexitPipelineMode(a.get()), 1);
  EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "") << "released after the Sync's ReadyForQuery";
  EXPECT_EQ(a.scalar("SELECT 3"), "3");
}

// An error raised by a Sync itself — the implicit transaction's COMMIT failing on a deferred foreign
// key — is followed by that Sync's ReadyForQuery. The proxy must not count it as the batch's end twice:
// a stray ReadyForQuery would answer the next client's query on that server (pool of one).
TEST_F(TransactionTest, DeferredConstraintFailingAtSyncKeepsTheMessageFlow) {
  {
    Pg su = superuser(kDatabase);
    su.must("DROP TABLE IF EXISTS pgs_tx_deferred_child, pgs_tx_deferred_parent");
    su.must("CREATE TABLE pgs_tx_deferred_parent (id int PRIMARY KEY)");
    su.must("CREATE TABLE pgs_tx_deferred_child (pid int REFERENCES pgs_tx_deferred_parent "
            "DEFERRABLE INITIALLY DEFERRED)");
    su.must("GRANT ALL ON pgs_tx_deferred_parent, pgs_tx_deferred_child TO " + std::string(kUser));
  }
  Proxy& p = start_proxy(small_pool(1));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  for (int i = 0; i < 5; ++i) {
    PgResult r = a.exec_params("INSERT INTO pgs_tx_deferred_child VALUES ($1)", {"42"});
    EXPECT_EQ(r.sqlstate(), "23503") << "round " << i << ": " << r.error();
    auto own = a.exec_within("SELECT 'a-" + std::to_string(i) + "'", Millis(5000));
    ASSERT_TRUE(own.has_value()) << "A's next query got no answer";
    EXPECT_EQ(own->value(0, 0), "a-" + std::to_string(i));
    auto other = b.exec_within("SELECT 'b-" + std::to_string(i) + "'", Millis(5000));
    ASSERT_TRUE(other.has_value()) << "B's query got no answer";
    EXPECT_EQ(other->value(0, 0), "b-" + std::to_string(i));
  }
}

}  // namespace
}  // namespace pgs::it::session
