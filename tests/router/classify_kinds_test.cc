// classify(): statement kinds, read_only and flags, including the cases other poolers misroute.
#include <gtest/gtest.h>

#include "router/classify.h"

namespace pgs::router {
namespace {

struct KindCase {
  const char* sql;
  Kind kind;
  bool read_only;
};

class KindTest : public ::testing::TestWithParam<KindCase> {};

TEST_P(KindTest, KindAndReadOnly) {
  const KindCase& k = GetParam();
  Classification c = classify(k.sql);
  EXPECT_EQ(kind_name(c.kind), kind_name(k.kind)) << k.sql;
  EXPECT_EQ(c.read_only, k.read_only) << k.sql;
  EXPECT_FALSE(c.flags.parse_error) << k.sql << ": " << c.error;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, KindTest,
    ::testing::Values(
        KindCase{"SELECT 1", Kind::select, true},
        KindCase{"select * from t where id = $1", Kind::select, true},
        KindCase{"SELECT a FROM t JOIN u USING (id) WHERE x IN (SELECT y FROM v)", Kind::select, true},
        KindCase{"SELECT now(), random(), current_timestamp", Kind::select, true},
        KindCase{"SELECT count(*), lower(name) FROM users GROUP BY 2", Kind::select, true},
        KindCase{"SELECT pg_catalog.lower('X')", Kind::select, true},
        KindCase{"VALUES (1, 'a'), (2, 'b')", Kind::values, true},
        KindCase{"TABLE users", Kind::table, true},
        KindCase{"/* c */ (TABLE users)", Kind::table, true},
        KindCase{"SHOW search_path", Kind::show, true},
        KindCase{"SHOW ALL", Kind::show, false},
        KindCase{"SHOW transaction_read_only", Kind::show, false},
        KindCase{"SHOW in_hot_standby", Kind::show, false},
        KindCase{"EXPLAIN SELECT * FROM t", Kind::explain, true},
        KindCase{"EXPLAIN ANALYZE SELECT * FROM t", Kind::explain, true},
        KindCase{"EXPLAIN ANALYZE DELETE FROM t", Kind::explain, false},
        KindCase{"EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1", Kind::explain, false},
        KindCase{"EXPLAIN DELETE FROM t", Kind::explain, false},
        KindCase{"EXPLAIN SELECT nextval('s')", Kind::explain, false},
        KindCase{"INSERT INTO t VALUES (1)", Kind::insert, false},
        KindCase{"INSERT INTO t SELECT * FROM u ON CONFLICT (id) DO NOTHING", Kind::insert, false},
        KindCase{"UPDATE t SET a = 1 WHERE id = 2", Kind::update, false},
        KindCase{"DELETE FROM t WHERE id = 2", Kind::delete_, false},
        KindCase{"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", Kind::merge, false},
        KindCase{"COPY t FROM STDIN", Kind::copy_from, false},
        KindCase{"COPY t TO STDOUT", Kind::copy_to, false},
        KindCase{"COPY (SELECT 1) TO STDOUT", Kind::copy_to, false},
        KindCase{"CREATE TABLE t (a int)", Kind::ddl, false},
        KindCase{"ALTER TABLE t ADD COLUMN b int", Kind::ddl, false},
        KindCase{"DROP TABLE t", Kind::ddl, false},
        KindCase{"TRUNCATE t", Kind::ddl, false},
        KindCase{"CREATE INDEX ON t (a)", Kind::ddl, false},
        KindCase{"GRANT SELECT ON t TO bob", Kind::ddl, false},
        KindCase{"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'", Kind::ddl, false},
        KindCase{"BEGIN", Kind::begin, false},
        KindCase{"START TRANSACTION", Kind::begin, false},
        KindCase{"BEGIN READ ONLY", Kind::begin_read_only, true},
        KindCase{"START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", Kind::begin_read_only, true},
        KindCase{"BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE", Kind::begin_read_only, false},
        KindCase{"BEGIN READ WRITE", Kind::begin, false},
        KindCase{"COMMIT", Kind::commit, true},
        KindCase{"END", Kind::commit, true},
        KindCase{"ROLLBACK", Kind::rollback, true},
        KindCase{"ABORT", Kind::rollback, true},
        KindCase{"SAVEPOINT a", Kind::savepoint, true},
        KindCase{"ROLLBACK TO SAVEPOINT a", Kind::rollback_to, true},
        KindCase{"RELEASE SAVEPOINT a", Kind::release, true},
        KindCase{"PREPARE TRANSACTION 'x'", Kind::prepare_transaction, false},
        KindCase{"COMMIT PREPARED 'x'", Kind::commit_prepared, false},
        KindCase{"ROLLBACK PREPARED 'x'", Kind::rollback_prepared, false},
        KindCase{"SET search_path = app, public", Kind::set, false},
        KindCase{"SET LOCAL statement_timeout = '5s'", Kind::set_local, false},
        // Harmless on a standby (outside a transaction it only warns): lets "BEGIN; SET TRANSACTION READ
        // ONLY" start a read-only transaction.
        KindCase{"SET TRANSACTION READ ONLY", Kind::set_transaction, true},
        KindCase{"SET TRANSACTION READ WRITE", Kind::set_transaction, false},
        KindCase{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY", Kind::set_transaction, false},
        KindCase{"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", Kind::set_transaction, false},
        KindCase{"RESET ALL", Kind::reset, false},
        KindCase{"DISCARD ALL", Kind::discard_all, false},
        KindCase{"DISCARD PLANS", Kind::discard, false},
        KindCase{"PREPARE p AS SELECT 1", Kind::prepare, false},
        KindCase{"EXECUTE p", Kind::execute, false},
        KindCase{"DEALLOCATE p", Kind::deallocate, false},
        KindCase{"LISTEN ch", Kind::listen, false},
        KindCase{"UNLISTEN *", Kind::unlisten, false},
        KindCase{"NOTIFY ch, 'x'", Kind::notify, false},
        KindCase{"LOCK TABLE t IN ACCESS SHARE MODE", Kind::lock, false},
        KindCase{"CALL p(1)", Kind::call, false},
        KindCase{"DO $$ BEGIN PERFORM 1; END $$", Kind::do_, false},
        KindCase{"VACUUM ANALYZE t", Kind::vacuum, false},
        KindCase{"ANALYZE t", Kind::vacuum, false},
        KindCase{"DECLARE c CURSOR FOR SELECT 1", Kind::declare_cursor, false},
        KindCase{"FETCH 10 FROM c", Kind::fetch, false},
        KindCase{"CLOSE c", Kind::close_cursor, false},
        KindCase{"CHECKPOINT", Kind::other, false},
        KindCase{"", Kind::empty, true},
        KindCase{" ; -- nothing\n", Kind::empty, true},
        KindCase{"SELECT 1; SELECT 2", Kind::multi, true},
        KindCase{"SELECT 1; INSERT INTO t VALUES (1)", Kind::multi, false}));

// The statements other poolers send to a replica although they must run on the primary.
struct FlagCase {
  const char* sql;
  const char* why;
  bool Flags::*flag;
};

class MisroutedTest : public ::testing::TestWithParam<FlagCase> {};

TEST_P(MisroutedTest, NotReadOnlyAndFlagged) {
  const FlagCase& f = GetParam();
  Classification c = classify(f.sql);
  EXPECT_FALSE(c.read_only) << f.sql << " (" << f.why << ")";
  EXPECT_TRUE(c.flags.*(f.flag)) << f.sql << " (" << f.why << ")";
  EXPECT_FALSE(c.flags.parse_error) << c.error;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MisroutedTest,
    ::testing::Values(
        FlagCase{"SELECT nextval('orders_id_seq')", "nextval writes a sequence", &Flags::calls_unsafe_function},
        FlagCase{"SELECT id, nextval('s') FROM t", "nextval in a select list", &Flags::volatile_functions},
        FlagCase{"SELECT currval('s')", "currval is per-session state", &Flags::calls_unsafe_function},
        FlagCase{"SELECT setval('s', 10)", "setval writes", &Flags::calls_unsafe_function},
        FlagCase{"WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM x", "data-modifying CTE",
                 &Flags::data_modifying_cte},
        FlagCase{"WITH d AS (DELETE FROM t RETURNING id) SELECT count(*) FROM d", "data-modifying CTE",
                 &Flags::data_modifying_cte},
        FlagCase{"WITH i AS (INSERT INTO t VALUES (1) RETURNING id) SELECT 1", "data-modifying CTE",
                 &Flags::data_modifying_cte},
        FlagCase{"SELECT * FROM (SELECT * FROM t FOR UPDATE) s", "FOR UPDATE in a subquery", &Flags::for_update},
        FlagCase{"SELECT * FROM t FOR NO KEY UPDATE", "FOR NO KEY UPDATE", &Flags::for_no_key_update},
        FlagCase{"SELECT * FROM t FOR SHARE SKIP LOCKED", "FOR SHARE", &Flags::for_share},
        FlagCase{"SELECT * FROM t FOR KEY SHARE OF t NOWAIT", "FOR KEY SHARE", &Flags::for_key_share},
        FlagCase{"SELECT * INTO t2 FROM t", "SELECT INTO creates a table", &Flags::select_into},
        FlagCase{"SELECT * INTO TEMP t2 FROM t", "SELECT INTO TEMP", &Flags::writes_temp},
        FlagCase{"SELECT set_config('app.user', '42', false)", "set_config changes the session",
                 &Flags::session_state},
        FlagCase{"SELECT pg_advisory_lock(42)", "session advisory lock", &Flags::session_state},
        FlagCase{"SELECT pg_try_advisory_lock(1, 2)", "session advisory lock", &Flags::calls_unsafe_function},
        FlagCase{"SELECT pg_advisory_xact_lock(42)", "xact advisory lock on the primary",
                 &Flags::calls_unsafe_function},
        FlagCase{"SELECT my_report(1)", "user function not in the safe list", &Flags::calls_unsafe_function},
        FlagCase{"SELECT app.refresh_totals()", "qualified user function", &Flags::writes_unknown_tables},
        FlagCase{"SELECT x FROM t WHERE f(x) > 0", "user function in WHERE", &Flags::calls_unsafe_function},
        FlagCase{"SELECT * FROM t ORDER BY g(a)", "user function in ORDER BY", &Flags::calls_unsafe_function},
        FlagCase{"SELECT pg_notify('ch', 'x')", "pg_notify", &Flags::calls_unsafe_function},
        FlagCase{"SELECT txid_current()", "assigns a transaction id", &Flags::calls_unsafe_function},
        FlagCase{"SELECT pg_current_xact_id()", "assigns a transaction id", &Flags::calls_unsafe_function},
        FlagCase{"SELECT lo_import('/etc/passwd')", "large objects", &Flags::calls_unsafe_function},
        FlagCase{"SELECT dblink_exec('x', 'delete from t')", "dblink", &Flags::calls_unsafe_function},
        FlagCase{"SELECT pg_catalog.nextval('s')", "qualified nextval", &Flags::calls_unsafe_function},
        FlagCase{"SELECT 1 FROM t WHERE id IN (SELECT nextval('s'))", "nested nextval",
                 &Flags::calls_unsafe_function}));

TEST(Classify, ExplainAnalyzeDeleteWritesItsTable) {
  Classification c = classify("EXPLAIN ANALYZE DELETE FROM orders WHERE id = 1");
  EXPECT_EQ(c.kind, Kind::explain);
  EXPECT_FALSE(c.read_only);
  ASSERT_EQ(c.tables_written.size(), 1u);
  EXPECT_EQ(c.tables_written[0].name, "orders");
  EXPECT_TRUE(c.writes());
}

TEST(Classify, ExplainWithoutAnalyzeOfADeleteWritesNothingButStaysOnPrimary) {
  Classification c = classify("EXPLAIN DELETE FROM orders");
  EXPECT_TRUE(c.tables_written.empty());
  EXPECT_EQ(c.tables_read.size(), 1u);
  EXPECT_FALSE(c.read_only);
}

TEST(Classify, ReplicaSafeFunctionsOption) {
  ClassifyOptions o;
  o.replica_safe_functions = {"my_report", "app.summary"};
  EXPECT_TRUE(classify("SELECT my_report(1)", o).read_only);
  EXPECT_TRUE(classify("SELECT app.summary()", o).read_only);
  EXPECT_FALSE(classify("SELECT other.summary()", o).read_only);
  EXPECT_FALSE(classify("SELECT app.my_report()", o).read_only);
  // Declared safe, but we still know nothing about its volatility.
  EXPECT_TRUE(classify("SELECT my_report(1)", o).flags.volatile_functions);
}

TEST(Classify, VolatileButReplicaSafe) {
  for (const char* sql : {"SELECT now()", "SELECT random()", "SELECT clock_timestamp()", "SELECT CURRENT_DATE",
                          "SELECT LOCALTIMESTAMP", "SELECT gen_random_uuid()"}) {
    Classification c = classify(sql);
    EXPECT_TRUE(c.read_only) << sql;
    EXPECT_TRUE(c.flags.volatile_functions) << sql;
    EXPECT_FALSE(cacheable_candidate(c)) << sql;
  }
  Classification c = classify("SELECT lower(name), current_user FROM users");
  EXPECT_FALSE(c.flags.volatile_functions);
  EXPECT_TRUE(cacheable_candidate(c));
}

TEST(Classify, ClockReadingLiteralsAndSamplesAreVolatile) {
  for (const char* sql : {"SELECT 'now'::timestamptz", "SELECT timestamp 'today'", "SELECT ' Tomorrow '::date",
                          "SELECT * FROM t TABLESAMPLE SYSTEM (10)"}) {
    Classification c = classify(sql);
    EXPECT_TRUE(c.flags.volatile_functions) << sql;
    EXPECT_TRUE(c.read_only) << sql;
  }
  EXPECT_FALSE(classify("SELECT 'nowhere'::text").flags.volatile_functions);
}

TEST(Classify, SystemViewsAreNotCacheable) {
  for (const char* sql : {"SELECT * FROM pg_stat_activity", "SELECT relname FROM pg_catalog.pg_class",
                          "SELECT * FROM information_schema.tables", "SELECT * FROM pg_locks"}) {
    Classification c = classify(sql);
    EXPECT_TRUE(c.read_only) << sql;
    EXPECT_FALSE(cacheable_candidate(c)) << sql;
  }
  EXPECT_TRUE(cacheable_candidate(classify("SELECT * FROM app.pages")));
}

// libpq's target_session_attrs=read-write runs SHOW transaction_read_only after connecting: a replica
// answering it would make libpq reject the proxy. pg_is_in_recovery() is different: libpq 14+ reads the
// in_hot_standby ParameterStatus (the primary's, which the proxy reports) instead of calling it, and
// asking it through the proxy is how a user sees that reads reach a replica (issue 4).
TEST(Classify, NodeIdentityQuestionsGoToThePrimary) {
  EXPECT_FALSE(classify("SELECT current_setting('transaction_read_only')").read_only);
  EXPECT_FALSE(classify("SELECT pg_catalog.current_setting('in_hot_standby')").read_only);
  EXPECT_TRUE(classify("SELECT pg_is_in_recovery()").read_only);
  EXPECT_TRUE(classify("SELECT current_setting('search_path')").read_only);
  EXPECT_TRUE(classify("SHOW work_mem").read_only);
}

// Constructs the grammar turns into pg_catalog function calls must not look like user functions.
TEST(Classify, GrammarMadeFunctionsAreSafe) {
  for (const char* sql : {
           "SELECT * FROM t WHERE name SIMILAR TO 'a%'", "SELECT EXTRACT(year FROM now())",
           "SELECT substring('abc' FROM 2 FOR 1)", "SELECT substring('abc' SIMILAR 'a' ESCAPE '#')",
           "SELECT position('b' IN 'abc')", "SELECT overlay('abc' PLACING 'x' FROM 2)",
           "SELECT trim(both 'x' FROM 'xax')", "SELECT now() AT TIME ZONE 'UTC'",
           "SELECT (DATE '2020-01-01', DATE '2020-02-01') OVERLAPS (DATE '2020-01-15', DATE '2020-03-01')",
           "SELECT COLLATION FOR ('a')", "SELECT 'a' IS NORMALIZED", "SELECT normalize('a', NFC)",
           "SELECT * FROM t WHERE a LIKE 'x!%' ESCAPE '!'", "SELECT greatest(1, 2), coalesce(NULL, 1), nullif(1, 2)"}) {
    Classification c = classify(sql);
    EXPECT_FALSE(c.flags.parse_error) << sql << ": " << c.error;
    EXPECT_TRUE(c.read_only) << sql << " unsafe: " << (c.unsafe_functions.empty() ? "" : c.unsafe_functions[0]);
  }
}

// The built-in table comes from PostgreSQL 15's pg_proc (IMMUTABLE: cacheable, STABLE: not), with
// hand-written overrides for what pg_proc's volatility does not say.
TEST(Classify, BuiltinFunctionTable) {
  struct Fn {
    const char* sql;
    bool read_only;
    bool cacheable;
  };
  for (const Fn& f : {
           Fn{"SELECT md5('x'), abs(-1), jsonb_typeof('1'), array_length(ARRAY[1], 1)", true, true},
           Fn{"SELECT to_char(1.5, '9.9'), date_trunc('day', now()::timestamp)", true, false},  // now()
           Fn{"SELECT to_char(1.5, '9.9'), concat('a', 1), format('%s', 1)", true, true},
           Fn{"SELECT pg_get_keywords()", true, false},             // generated STABLE
           Fn{"SELECT pg_get_viewdef('v'::regclass)", true, false},  // catalog lookup
           Fn{"SELECT current_setting('app.tenant')", true, false},  // custom settings: not in the key
           Fn{"SELECT pg_stat_get_numscans(1)", true, false},
           Fn{"SELECT txid_current()", false, false},       // STABLE in pg_proc, assigns an xid
           Fn{"SELECT pg_current_xact_id()", false, false},
           Fn{"SELECT pg_walfile_name('0/0')", false, false},  // IMMUTABLE, errors during recovery
           Fn{"SELECT pg_catalog.upper('a')", true, true},
           Fn{"SELECT public.upper('a')", false, false},    // not pg_catalog: a user function
       }) {
    Classification c = classify(f.sql);
    EXPECT_EQ(c.read_only, f.read_only) << f.sql;
    EXPECT_EQ(cacheable_candidate(c), f.cacheable) << f.sql;
  }
}

TEST(Classify, FunctionsListed) {
  Classification c = classify("SELECT lower(a), app.f(b), nextval('s') FROM t");
  EXPECT_EQ(c.functions, (std::vector<std::string>{"app.f", "lower", "nextval"}));
  EXPECT_EQ(c.unsafe_functions, (std::vector<std::string>{"app.f", "nextval"}));
}

TEST(Classify, ParseErrorsAreNotReadOnly) {
  for (const char* sql : {"SELEC 1", "SELECT * FROM", "SELECT 'unterminated", "select 1; garbage here"}) {
    Classification c = classify(sql);
    EXPECT_TRUE(c.flags.parse_error) << sql;
    EXPECT_FALSE(c.read_only) << sql;
    EXPECT_FALSE(c.error.empty()) << sql;
    EXPECT_TRUE(c.statements.empty()) << sql;
    EXPECT_TRUE(c.flags.writes_unknown_tables) << sql;
  }
}

TEST(Classify, NulByteIsAParseError) {
  Classification c = classify(std::string_view("SELECT 1\0; DROP TABLE t", 24));
  EXPECT_TRUE(c.flags.parse_error);
  EXPECT_FALSE(c.read_only);
}

TEST(Classify, OversizedSkipsTheParser) {
  ClassifyOptions o;
  o.max_parse_bytes = 64;
  Classification c = classify("SELECT 1 FROM t WHERE a = 'a long enough string to go over the limit'", o);
  EXPECT_TRUE(c.flags.oversized);
  EXPECT_FALSE(c.read_only);
  EXPECT_FALSE(c.flags.parse_error);
}

TEST(Classify, DeepExpressionsAreRefusedNotCrashed) {
  // "1+1+...+1" nests once per '+': 200k levels would overflow libpg_query's recursive output.
  std::string sql = "SELECT 1";
  for (int i = 0; i < 200000; ++i) sql += "+1";
  ClassifyOptions o;
  o.max_parse_bytes = 1 << 20;
  Classification c = classify(sql, o);
  EXPECT_TRUE(c.flags.oversized);
  EXPECT_FALSE(c.read_only);
}

TEST(Classify, WideButFlatStatementsAreParsed) {
  std::string sql = "SELECT * FROM t WHERE id IN (1";
  for (int i = 2; i < 20000; ++i) sql += "," + std::to_string(i);
  sql += ")";
  Classification c = classify(sql);
  EXPECT_FALSE(c.flags.oversized);
  EXPECT_TRUE(c.read_only);
}

TEST(Classify, DeepButAcceptedNestingIsWalked) {
  std::string sql = "SELECT ";
  for (int i = 0; i < 500; ++i) sql += "(SELECT ";
  sql += "1 FROM t";
  for (int i = 0; i < 500; ++i) sql += ")";
  Classification c = classify(sql);
  EXPECT_FALSE(c.flags.parse_error) << c.error;
  // Either walked (t found) or refused as too deep; never read-only without having looked.
  if (!c.flags.oversized) {
    ASSERT_EQ(c.tables_read.size(), 1u);
    EXPECT_TRUE(c.read_only);
  } else {
    EXPECT_FALSE(c.read_only);
  }
}

TEST(Classify, MultiStatementEntriesAndSummary) {
  const std::string sql = "SELECT * FROM a; UPDATE b SET x = 1;\nSELECT nextval('s')";
  Classification c = classify(sql);
  ASSERT_EQ(c.statements.size(), 3u);
  EXPECT_EQ(c.kind, Kind::multi);
  EXPECT_EQ(c.statements[0].kind, Kind::select);
  EXPECT_TRUE(c.statements[0].read_only);
  EXPECT_EQ(c.statements[1].kind, Kind::update);
  EXPECT_FALSE(c.statements[2].read_only);
  EXPECT_FALSE(c.read_only);
  EXPECT_TRUE(c.flags.calls_unsafe_function);
  ASSERT_EQ(c.tables_read.size(), 1u);
  ASSERT_EQ(c.tables_written.size(), 1u);
  EXPECT_EQ(sql.substr(c.statements[1].location, c.statements[1].length), "UPDATE b SET x = 1");
  EXPECT_EQ(sql.substr(c.statements[2].location, c.statements[2].length), "SELECT nextval('s')");
}

TEST(Classify, ReadOnlyTransactionInOneString) {
  Classification c = classify("BEGIN READ ONLY; SELECT * FROM t; COMMIT");
  EXPECT_TRUE(c.read_only);
  EXPECT_TRUE(c.flags.transaction_read_only);
  EXPECT_FALSE(classify("BEGIN; SELECT * FROM t; COMMIT").read_only);
}

TEST(Classify, KindNamesAreUnique) {
  for (size_t i = 0; i < kKindNames.size(); ++i) {
    for (size_t j = i + 1; j < kKindNames.size(); ++j) EXPECT_NE(kKindNames[i], kKindNames[j]);
  }
  EXPECT_EQ(kind_name(Kind::delete_), "delete");
  EXPECT_EQ(kind_name(Kind::other), "other");
}

}  // namespace
}  // namespace pgs::router
