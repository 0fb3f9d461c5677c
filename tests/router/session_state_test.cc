// classify(): session-state changes a transaction pooler must track, replay or pin for.
#include <gtest/gtest.h>

#include "router/classify.h"

namespace pgs::router {
namespace {

const SessionChange& only_change(const Classification& c) {
  EXPECT_EQ(c.session_changes.size(), 1u);
  static const SessionChange none;
  return c.session_changes.empty() ? none : c.session_changes.front();
}

struct SetCase {
  const char* sql;
  SessionOp op;
  const char* name;
  const char* value;
  bool transaction_scoped;
  bool session_state;  // Flags::session_state
};

class SessionChangeTest : public ::testing::TestWithParam<SetCase> {};

TEST_P(SessionChangeTest, Parsed) {
  const SetCase& s = GetParam();
  Classification c = classify(s.sql);
  ASSERT_FALSE(c.flags.parse_error) << s.sql << ": " << c.error;
  const SessionChange& ch = only_change(c);
  EXPECT_EQ(session_op_name(ch.op), session_op_name(s.op)) << s.sql;
  EXPECT_EQ(ch.name, s.name) << s.sql;
  EXPECT_EQ(ch.value, s.value) << s.sql;
  EXPECT_EQ(ch.transaction_scoped, s.transaction_scoped) << s.sql;
  EXPECT_EQ(c.flags.session_state, s.session_state) << s.sql;
  EXPECT_FALSE(c.read_only) << s.sql;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SessionChangeTest,
    ::testing::Values(
        SetCase{"SET search_path = app, public", SessionOp::set, "search_path", "app, public", false, true},
        SetCase{"SET search_path TO \"$user\", public;", SessionOp::set, "search_path", "\"$user\", public",
                false, true},
        SetCase{"set statement_timeout to '5s'", SessionOp::set, "statement_timeout", "'5s'", false, true},
        SetCase{"SET extra_float_digits = -3", SessionOp::set, "extra_float_digits", "-3", false, true},
        SetCase{"SET TIME ZONE 'UTC'", SessionOp::set, "timezone", "'UTC'", false, true},
        SetCase{"SET application_name = 'my app'  ;  ", SessionOp::set, "application_name", "'my app'", false,
                true},
        SetCase{"SET pgsidecar.route = 'replica'", SessionOp::set, "pgsidecar.route", "'replica'", false, true},
        SetCase{"SET ROLE reporting", SessionOp::set, "role", "reporting", false, true},
        SetCase{"SET SESSION AUTHORIZATION bob", SessionOp::set, "session_authorization", "bob", false, true},
        SetCase{"SET LOCAL work_mem = '64MB'", SessionOp::set, "work_mem", "'64MB'", true, false},
        SetCase{"SET work_mem TO DEFAULT", SessionOp::reset, "work_mem", "", false, true},
        SetCase{"RESET work_mem", SessionOp::reset, "work_mem", "", false, true},
        SetCase{"RESET ROLE", SessionOp::reset, "role", "", false, true},
        SetCase{"RESET ALL", SessionOp::reset_all, "", "", false, true},
        SetCase{"DISCARD ALL", SessionOp::discard_all, "", "", false, true},
        SetCase{"DISCARD TEMP", SessionOp::discard_temp, "", "", false, true},
        SetCase{"PREPARE getuser(int) AS SELECT * FROM users WHERE id = $1", SessionOp::prepare, "getuser", "",
                false, true},
        SetCase{"EXECUTE getuser(1)", SessionOp::execute, "getuser", "", false, false},
        SetCase{"DEALLOCATE getuser", SessionOp::deallocate, "getuser", "", false, true},
        SetCase{"DEALLOCATE PREPARE ALL", SessionOp::deallocate_all, "", "", false, true},
        SetCase{"LISTEN jobs", SessionOp::listen, "jobs", "", false, true},
        SetCase{"UNLISTEN jobs", SessionOp::unlisten, "jobs", "", false, true},
        SetCase{"UNLISTEN *", SessionOp::unlisten_all, "", "", false, true},
        SetCase{"SELECT pg_advisory_lock(42)", SessionOp::advisory_lock, "pg_advisory_lock", "42", false, true},
        SetCase{"SELECT pg_advisory_lock(-7)", SessionOp::advisory_lock, "pg_advisory_lock", "-7", false, true},
        SetCase{"SELECT pg_try_advisory_lock_shared(1, 2)", SessionOp::advisory_lock,
                "pg_try_advisory_lock_shared", "1,2", false, true},
        SetCase{"SELECT pg_advisory_xact_lock(42)", SessionOp::advisory_lock, "pg_advisory_xact_lock", "42", true,
                false},
        SetCase{"SELECT pg_advisory_unlock(42)", SessionOp::advisory_unlock, "pg_advisory_unlock", "42", false,
                true},
        SetCase{"SELECT pg_advisory_unlock_all()", SessionOp::advisory_unlock_all, "pg_advisory_unlock_all", "",
                false, true},
        SetCase{"SELECT set_config('app.user_id', '42', false)", SessionOp::set_config, "app.user_id", "42",
                false, true},
        SetCase{"SELECT set_config('app.user_id', '42', true)", SessionOp::set_config, "app.user_id", "42", true,
                false},
        SetCase{"CREATE TEMP TABLE scratch (a int)", SessionOp::temp_object, "scratch", "", false, true},
        SetCase{"CREATE TEMPORARY TABLE scratch (a int) ON COMMIT DROP", SessionOp::temp_object, "scratch", "",
                true, false},
        SetCase{"CREATE TEMP TABLE s2 AS SELECT 1", SessionOp::temp_object, "s2", "", false, true},
        SetCase{"CREATE TEMP VIEW tv AS SELECT 1", SessionOp::temp_object, "tv", "", false, true},
        SetCase{"SELECT 1 INTO TEMP t3", SessionOp::temp_object, "t3", "", false, true},
        SetCase{"DECLARE c CURSOR WITH HOLD FOR SELECT 1", SessionOp::declare_with_hold, "c", "", false, true},
        SetCase{"CLOSE c", SessionOp::close_cursor, "c", "", false, true},
        SetCase{"CLOSE ALL", SessionOp::close_all_cursors, "", "", false, true}));

TEST(SessionState, SetKeepsReplayableSql) {
  Classification c = classify("  SET search_path = app, public ;\n");
  EXPECT_EQ(only_change(c).sql, "SET search_path = app, public");
  c = classify("SELECT set_config('app.name', 'it''s', false)");
  EXPECT_EQ(only_change(c).value, "it's");
  EXPECT_EQ(only_change(c).sql, "SELECT pg_catalog.set_config('app.name', 'it''s', false)");
  c = classify("SELECT set_config('a', E'back\\\\slash', false)");
  EXPECT_EQ(only_change(c).value, "back\\slash");
  EXPECT_EQ(only_change(c).sql, "SELECT pg_catalog.set_config('a', E'back\\\\slash', false)");
  c = classify("PREPARE p AS SELECT 1;");
  EXPECT_EQ(only_change(c).sql, "PREPARE p AS SELECT 1");
}

// EXECUTE nested in another statement still depends on the prepared statement (the proxy must have
// the client's definition on the server first), with or without EXPLAIN's ANALYZE.
TEST(SessionState, NestedExecuteIsADependency) {
  for (const char* sql : {"EXPLAIN EXECUTE q(1)", "EXPLAIN ANALYZE EXECUTE q(1)",
                          "CREATE TABLE t AS EXECUTE q(1)", "EXPLAIN (COSTS OFF) EXECUTE q"}) {
    Classification c = classify(sql);
    ASSERT_FALSE(c.flags.parse_error) << sql << ": " << c.error;
    const SessionChange& ch = only_change(c);
    EXPECT_EQ(ch.op, SessionOp::execute) << sql;
    EXPECT_EQ(ch.name, "q") << sql;
    EXPECT_FALSE(c.flags.session_state) << sql;
  }
}

TEST(SessionState, SetConfigWithNonConstantValue) {
  Classification c = classify("SELECT set_config('app.user', current_user, false)");
  const SessionChange& ch = only_change(c);
  EXPECT_EQ(ch.op, SessionOp::set_config);
  EXPECT_FALSE(ch.value_known);
  EXPECT_TRUE(ch.sql.empty());
  EXPECT_TRUE(c.flags.session_state);
}

TEST(SessionState, SessionCharacteristics) {
  Classification c = classify("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY");
  const SessionChange& ch = only_change(c);
  EXPECT_EQ(ch.name, "default_transaction_read_only");
  EXPECT_EQ(ch.value, "1");
  EXPECT_TRUE(c.flags.session_state);
}

TEST(SessionState, TransactionReadOnly) {
  EXPECT_TRUE(classify("SET TRANSACTION READ ONLY").flags.transaction_read_only);
  EXPECT_FALSE(classify("SET TRANSACTION READ WRITE").flags.transaction_read_only);
  EXPECT_FALSE(classify("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE").flags.transaction_read_only);
  EXPECT_TRUE(classify("BEGIN READ ONLY").flags.transaction_read_only);
  EXPECT_TRUE(classify("SET TRANSACTION READ ONLY").session_changes.empty());
}

TEST(SessionState, DeclareWithoutHoldIsTransactionScoped) {
  EXPECT_TRUE(classify("DECLARE c CURSOR FOR SELECT 1").session_changes.empty());
}

TEST(SessionState, MultiStatementKeepsOrder) {
  Classification c = classify("SET a.b = 1; LISTEN x; RESET a.b; SELECT pg_advisory_lock(1)");
  ASSERT_EQ(c.session_changes.size(), 4u);
  EXPECT_EQ(c.session_changes[0].op, SessionOp::set);
  EXPECT_EQ(c.session_changes[1].op, SessionOp::listen);
  EXPECT_EQ(c.session_changes[2].op, SessionOp::reset);
  EXPECT_EQ(c.session_changes[3].op, SessionOp::advisory_lock);
}

TEST(SessionState, PlainStatementsChangeNothing) {
  for (const char* sql : {"SELECT 1", "INSERT INTO t VALUES (1)", "BEGIN", "COMMIT", "SHOW work_mem"}) {
    Classification c = classify(sql);
    EXPECT_TRUE(c.session_changes.empty()) << sql;
    EXPECT_FALSE(c.flags.session_state) << sql;
  }
}

TEST(SessionState, RouteHintValues) {
  EXPECT_EQ(parse_route_hint("primary"), RouteHint::primary);
  EXPECT_EQ(parse_route_hint("'replica'"), RouteHint::replica);
  EXPECT_EQ(parse_route_hint("AUTO"), RouteHint::none);
  EXPECT_EQ(parse_route_hint("default"), RouteHint::none);
  EXPECT_FALSE(parse_route_hint("anywhere").has_value());
}

}  // namespace
}  // namespace pgs::router
