// classify(): tables read and written, as written, through CTEs, subqueries, joins and DDL.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "router/classify.h"

namespace pgs::router {
namespace {

std::vector<std::string> names(const std::vector<TableRef>& ts) {
  std::vector<std::string> out;
  for (const auto& t : ts) out.push_back(t.qualified_name());
  return out;
}

struct TableCase {
  const char* sql;
  std::vector<std::string> read;
  std::vector<std::string> written;
};

class TablesTest : public ::testing::TestWithParam<TableCase> {};

TEST_P(TablesTest, ReadAndWritten) {  // lists are sorted by (schema, name)
  const TableCase& t = GetParam();
  Classification c = classify(t.sql);
  ASSERT_FALSE(c.flags.parse_error) << t.sql << ": " << c.error;
  EXPECT_EQ(names(c.tables_read), t.read) << t.sql;
  EXPECT_EQ(names(c.tables_written), t.written) << t.sql;
}

using V = std::vector<std::string>;

INSTANTIATE_TEST_SUITE_P(
    Cases, TablesTest,
    ::testing::Values(
        TableCase{"SELECT 1", V{}, V{}},
        TableCase{"SELECT * FROM public.users u JOIN orders o ON o.uid = u.id", V{"orders", "public.users"}, V{}},
        TableCase{"SELECT * FROM a LEFT JOIN (b CROSS JOIN c.d) ON true", V{"a", "b", "c.d"}, V{}},
        TableCase{"SELECT * FROM a WHERE x IN (SELECT y FROM b WHERE EXISTS (SELECT 1 FROM c))",
                  V{"a", "b", "c"}, V{}},
        TableCase{"SELECT (SELECT max(v) FROM s.m) FROM a", V{"a", "s.m"}, V{}},
        TableCase{"SELECT * FROM (SELECT * FROM inner_t) sub", V{"inner_t"}, V{}},
        TableCase{"SELECT * FROM a UNION ALL SELECT * FROM b EXCEPT SELECT * FROM c", V{"a", "b", "c"}, V{}},
        TableCase{"SELECT * FROM a, LATERAL (SELECT * FROM b WHERE b.id = a.id) l", V{"a", "b"}, V{}},
        TableCase{"SELECT * FROM \"My Schema\".\"Users\", USERS", V{"users", "My Schema.Users"}, V{}},
        TableCase{"SELECT * FROM db.s.t", V{"s.t"}, V{}},
        TableCase{"SELECT * FROM generate_series(1, 3) g JOIN t ON t.id = g", V{"t"}, V{}},
        TableCase{"TABLE s.t", V{"s.t"}, V{}},
        // CTE names are not tables; a CTE body sees only earlier CTEs unless RECURSIVE.
        TableCase{"WITH x AS (SELECT * FROM t) SELECT * FROM x", V{"t"}, V{}},
        TableCase{"WITH x AS (SELECT * FROM t), y AS (SELECT * FROM x) SELECT * FROM y, public.x",
                  V{"t", "public.x"}, V{}},
        TableCase{"WITH x AS (SELECT * FROM x) SELECT * FROM x", V{"x"}, V{}},
        TableCase{"WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 5) "
                  "SELECT * FROM r",
                  V{}, V{}},
        TableCase{"SELECT * FROM (WITH q AS (SELECT 1) SELECT * FROM q) s, q", V{"q"}, V{}},
        TableCase{"WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM x JOIN u ON true", V{"u"}, V{"t"}},
        TableCase{"INSERT INTO s.t (a) SELECT a FROM u", V{"u"}, V{"s.t"}},
        TableCase{"INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = excluded.a", V{}, V{"t"}},
        TableCase{"UPDATE t SET a = u.a FROM u WHERE t.id = u.id", V{"u"}, V{"t"}},
        TableCase{"UPDATE t SET a = (SELECT max(a) FROM t)", V{"t"}, V{"t"}},
        TableCase{"DELETE FROM t USING u WHERE t.id = u.id RETURNING t.*", V{"u"}, V{"t"}},
        TableCase{"MERGE INTO t USING s.src ON t.id = src.id WHEN NOT MATCHED THEN INSERT VALUES (src.id)",
                  V{"s.src"}, V{"t"}},
        TableCase{"COPY t FROM STDIN", V{}, V{"t"}},
        TableCase{"COPY s.t TO STDOUT", V{"s.t"}, V{}},
        TableCase{"COPY (SELECT * FROM a JOIN b ON true) TO STDOUT", V{"a", "b"}, V{}},
        TableCase{"SELECT * INTO newt FROM t", V{"t"}, V{"newt"}},
        TableCase{"EXPLAIN ANALYZE UPDATE t SET a = 1", V{}, V{"t"}},
        TableCase{"EXPLAIN (ANALYZE true) UPDATE t SET a = 1", V{}, V{"t"}},
        TableCase{"EXPLAIN (ANALYZE on, COSTS off) UPDATE t SET a = 1", V{}, V{"t"}},
        TableCase{"EXPLAIN (ANALYZE 1) UPDATE t SET a = 1", V{}, V{"t"}},
        TableCase{"EXPLAIN (ANALYZE false) UPDATE t SET a = 1", V{"t"}, V{}},
        TableCase{"EXPLAIN (ANALYZE off) UPDATE t SET a = 1", V{"t"}, V{}},
        TableCase{"EXPLAIN (ANALYZE 0) UPDATE t SET a = 1", V{"t"}, V{}},
        TableCase{"CREATE TABLE s.n (a int REFERENCES p(id))", V{"p"}, V{"s.n"}},
        TableCase{"CREATE TABLE n AS SELECT * FROM t", V{"t"}, V{"n"}},
        TableCase{"CREATE VIEW v AS SELECT * FROM t", V{"t"}, V{"v"}},
        TableCase{"CREATE MATERIALIZED VIEW mv AS SELECT * FROM t", V{"t"}, V{"mv"}},
        TableCase{"REFRESH MATERIALIZED VIEW mv", V{}, V{"mv"}},
        TableCase{"ALTER TABLE t ADD COLUMN b int", V{}, V{"t"}},
        TableCase{"DROP TABLE a, s.b", V{}, V{"a", "s.b"}},
        TableCase{"DROP FUNCTION f(int)", V{}, V{}},
        TableCase{"TRUNCATE a, s.b", V{}, V{"a", "s.b"}},
        TableCase{"CREATE INDEX i ON t (a)", V{}, V{"t"}},
        TableCase{"DECLARE c CURSOR FOR SELECT * FROM t", V{"t"}, V{}},
        TableCase{"PREPARE p AS SELECT * FROM t", V{}, V{}}));

TEST(Tables, UnqualifiedFlag) {
  EXPECT_TRUE(classify("SELECT * FROM t").flags.unqualified_tables);
  EXPECT_FALSE(classify("SELECT * FROM s.t").flags.unqualified_tables);
  EXPECT_FALSE(classify("SELECT 1").flags.unqualified_tables);
  Classification c = classify("SELECT * FROM s.t, u");  // sorted by (schema, name): unqualified first
  ASSERT_EQ(c.tables_read.size(), 2u);
  EXPECT_FALSE(c.tables_read[0].qualified());
  EXPECT_TRUE(c.tables_read[1].qualified());
  EXPECT_EQ(c.tables_read[1].schema, "s");
}

TEST(Tables, UnknownWritesAreFlagged) {
  EXPECT_TRUE(classify("CALL refresh()").flags.writes_unknown_tables);
  EXPECT_TRUE(classify("DO $$ BEGIN DELETE FROM t; END $$").flags.writes_unknown_tables);
  EXPECT_TRUE(classify("EXECUTE p(1)").flags.writes_unknown_tables);
  EXPECT_TRUE(classify("SELECT archive_old_rows()").flags.writes_unknown_tables);
  EXPECT_FALSE(classify("SELECT nextval('s')").flags.writes_unknown_tables);
  EXPECT_FALSE(classify("UPDATE t SET a = 1").flags.writes_unknown_tables);
}

}  // namespace
}  // namespace pgs::router
