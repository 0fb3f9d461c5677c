#include "proxy/session/session_tracker.h"

#include <gtest/gtest.h>

#include <string>

#include "router/classify.h"

namespace pgs::proxy {
namespace {

TEST(MayChangeSession, FindsTheWordsCaseInsensitively) {
  for (const char* sql : {"SET search_path = a", "reset all", "DISCARD ALL", "LISTEN x", "select pg_advisory_lock(1)",
                          "CREATE TEMP TABLE t(x int)", "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
                          "PREPARE p AS SELECT 1", "DEALLOCATE p", "SET SESSION AUTHORIZATION x", "SET ROLE r",
                          "CLOSE c", "select set_config('a.b', 'c', false)"}) {
    EXPECT_TRUE(may_change_session(sql)) << sql;
  }
}

TEST(MayChangeSession, PlainStatementsNeedNoParse) {
  for (const char* sql : {"SELECT 1", "select abalance from pgbench_accounts where aid = $1",
                          "INSERT INTO t VALUES (1)", "", "s", "se"}) {
    EXPECT_FALSE(may_change_session(sql)) << sql;
  }
  EXPECT_TRUE(may_change_session("UPDATE t SET x = 1"));  // a false positive costs only a parse
}

// The SET of a lone UPDATE is its SET clause, not a SET command: no parse needed for it.
TEST(StatementMayChangeSession, TheSetClauseOfALoneUpdateIsNotASessionWord) {
  for (const char* sql : {"UPDATE pgbench_accounts SET abalance = abalance + -1234 WHERE aid = 5;",
                          "update t set x = 1", "  UPDATE t\nSET x = 1 ;  \n", "UPDATE \"set\" SET x = 1",
                          "UPDATE t SET x = 'SET y' WHERE y = 2", "UPDATE t SET (a, b) = (1, 2) WHERE c = $1"}) {
    EXPECT_FALSE(statement_may_change_session(sql)) << sql;
  }
}

TEST(StatementMayChangeSession, AnythingElseItCannotProveStaysASessionWord) {
  for (const char* sql : {"UPDATE t SET x = 1; SET role r", "UPDATE t SET x = 1; RESET ALL",
                          "UPDATE t SET x = set_config('a.b', 'c', false)", "UPDATE t SET x = setseed(0.5)",
                          "UPDATE t SET x = 1 RETURNING pg_advisory_lock(1)", "UPDATE pg_settings SET setting = 'x'",
                          "UPDATE t SET x = 1 /* ; */", "UPDATE t SET x = 'a;b'", "UPDATE t SET set\xc3\xa4 = 1",
                          "UPDATE t SET x = 1 RETURNING (SELECT 1 OFFSET 0)", "WITH a AS (SELECT 1) UPDATE t SET x = 1",
                          "UPDATEt SET x = 1", "UPDATE t SET x = 1 /* execute */", "SET search_path = a"}) {
    EXPECT_TRUE(statement_may_change_session(sql)) << sql;
  }
  for (const char* sql : {"SET search_path = a", "reset all", "DISCARD ALL", "LISTEN x", "select pg_advisory_lock(1)",
                          "CREATE TEMP TABLE t(x int)", "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
                          "PREPARE p AS SELECT 1", "DEALLOCATE p", "SET SESSION AUTHORIZATION x", "SET ROLE r",
                          "CLOSE c", "select set_config('a.b', 'c', false)"}) {
    EXPECT_TRUE(statement_may_change_session(sql)) << sql;
  }
  for (const char* sql : {"SELECT 1", "INSERT INTO t VALUES (1)", ""}) {
    EXPECT_FALSE(statement_may_change_session(sql)) << sql;
  }
  EXPECT_TRUE(statement_may_change_session("UPDATE t SET x = 1 WHERE " + std::string(1 << 16, ' ')));
}

TEST(MayChangeSession, VeryLongTextGoesToTheParser) {
  EXPECT_TRUE(may_change_session(std::string((1 << 16) + 1, 'x')));
}

// SQL-level PREPARE / DEALLOCATE are tracked from the server's replies (sql_prepared.h): they neither
// pin nor cost a probe; DISCARD ALL still does (settings).
TEST(SessionTracker, SqlPrepareNeitherPinsNorProbes) {
  for (const char* sql : {"PREPARE p AS SELECT 1", "DEALLOCATE p", "DEALLOCATE ALL", "EXECUTE p"}) {
    router::Classification c = router::classify(sql);
    EXPECT_FALSE(SessionTracker::pins(c).has_value()) << sql;
    SessionTracker t;
    t.note(c);
    EXPECT_FALSE(t.needs_probe()) << sql;
  }
  SessionTracker t;
  t.note(router::classify("DISCARD ALL"));
  EXPECT_TRUE(t.needs_probe());
}

}  // namespace
}  // namespace pgs::proxy
