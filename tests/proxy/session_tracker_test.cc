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
