// Issue 12 item 1, what the logical stream does not carry: DDL behind every sidecar's back that changes
// what a cached read returns without a write to the table it names (a view or function redefined, a
// column renamed, a view's underlying table written, a partition written under its parent). Only the
// leader's catalog check and the edges it reads can invalidate those. Real pgsidecar processes, the dev
// primary and the dev Redis (a key prefix per test).
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include "tests/cache_proxy/cache_stream_fixture.h"

namespace pgs::it::cache_proxy {
namespace {

// A view is cached under its own name. What it returns also changes when it is redefined (CREATE OR REPLACE
// VIEW), when a view it reads is, when a function it calls is (CREATE OR REPLACE FUNCTION), when a column
// it shows is renamed, and when a table under it is written: all of it straight on the primary, so only
// the stream (the catalog check, and the view edges of its decoded writes) can invalidate. A write through
// the sidecar to the table under the views is seen at once (its own bump reaches the views). A statement
// that calls the user function itself is never cached.
TEST_F(CacheStreamTest, ViewsAndFunctionsRedefinedBehindTheProxyAreNotServedFromTheCache) {
  const std::string T = "public." + table_, V = T + "_v", W = T + "_w", F = T + "_f", FV = T + "_fv";
  {
    Pg d{ConnSpec{}};
    ASSERT_TRUE(d.ok()) << d.error();
    d.must("CREATE VIEW " + V + " AS SELECT id, v FROM " + T);
    d.must("CREATE VIEW " + W + " AS SELECT id, v FROM " + V);  // a view over a view
    d.must("CREATE FUNCTION " + F + "(text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT $1'");
    d.must("CREATE VIEW " + FV + " AS SELECT id, " + F + "(v) AS v FROM " + T);
  }
  Proxy& p = start_sidecar("1s", {"v:10m:" + V, "w:10m:" + W, "f:10m:" + FV});
  ASSERT_TRUE(wait_live(p)) << p.log_tail();
  Pg c{p.spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  auto row = [](const std::string& rel) { return "SELECT v FROM " + rel + " WHERE id = 1"; };
  for (const std::string& rel : {V, W, FV}) {
    EXPECT_EQ(c.scalar(row(rel)), "v1");
    long before = statement_calls(rel.substr(7) + " ");
    EXPECT_EQ(c.scalar(row(rel)), "v1");
    EXPECT_EQ(statement_calls(rel.substr(7) + " "), before) << rel << ": the second read should be a hit";
  }
  auto seen_within = [&](const std::string& rel, const std::string& want) {
    std::string seen;
    wait_until([&] { return (seen = c.scalar(row(rel))) == want; }, Millis(2000), Millis(10));
    return seen;
  };
  {
    Pg d{ConnSpec{}};
    d.must("CREATE OR REPLACE VIEW " + V + " AS SELECT id, v || '-redefined' AS v FROM " + T);
    d.must("CREATE OR REPLACE FUNCTION " + F + "(text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT $1 || ''-f2'''");
  }
  EXPECT_EQ(seen_within(V, "v1-redefined"), "v1-redefined") << "the redefined view is still served";
  EXPECT_EQ(seen_within(W, "v1-redefined"), "v1-redefined") << "a view over the redefined view is still served";
  EXPECT_EQ(seen_within(FV, "v1-f2"), "v1-f2") << "a view calling the redefined function is still served";
  // The underlying table written straight on the primary: only the stream's view edges reach the views.
  ASSERT_NO_FATAL_FAILURE(write_directly("direct"));
  EXPECT_EQ(seen_within(V, "direct-redefined"), "direct-redefined");
  EXPECT_EQ(seen_within(W, "direct-redefined"), "direct-redefined");
  EXPECT_EQ(seen_within(FV, "direct-f2"), "direct-f2");
  // ... and through the sidecar: its own bump at COMMIT reaches the views before the client hears COMMIT.
  for (const std::string& rel : {V, W, FV}) (void)c.scalar(row(rel));  // cached again
  c.must("UPDATE " + T + " SET v = 'proxied' WHERE id = 1");
  EXPECT_EQ(c.scalar(row(V)), "proxied-redefined");
  EXPECT_EQ(c.scalar(row(W)), "proxied-redefined");
  EXPECT_EQ(c.scalar(row(FV)), "proxied-f2");
  // A renamed column changes a SELECT *'s RowDescription, though not the relation's pg_class row.
  const std::string star = "SELECT * FROM " + W + " WHERE id = 1";
  EXPECT_EQ(std::string(PQfname(c.exec(star).get(), 1)), "v");
  EXPECT_EQ(std::string(PQfname(c.exec(star).get(), 1)), "v");  // cached
  {
    Pg d{ConnSpec{}};
    d.must("ALTER TABLE " + W + " RENAME COLUMN v TO renamed");
  }
  std::string name;
  EXPECT_TRUE(wait_until([&] { return (name = PQfname(c.exec(star).get(), 1)) == "renamed"; }, Millis(2000),
                         Millis(10)))
      << "SELECT * still names the column " << name;
  // A statement calling the user function is not cached at all (volatile: the router knows nothing of it).
  const std::string call = "SELECT " + F + "(v) FROM " + T + " WHERE id = 2";
  long before = statement_calls(table_ + "_f(");
  EXPECT_EQ(c.scalar(call), "v2-f2");
  EXPECT_EQ(c.scalar(call), "v2-f2");
  EXPECT_EQ(statement_calls(table_ + "_f("), before + 2) << "a call of a user function was answered from the cache";
}

// test_decoding names the partition a row went to, never its parent: a cached read of the partitioned
// table must still see a row inserted through the parent straight on the primary (the stream follows the
// partition edges read with the catalog).
TEST_F(CacheStreamTest, ARowWrittenStraightIntoAPartitionIsSeenThroughItsParent) {
  const std::string P = "public." + table_ + "_p";
  {
    Pg d{ConnSpec{}};
    ASSERT_TRUE(d.ok()) << d.error();
    d.must("CREATE TABLE " + P + " (id int, v text) PARTITION BY RANGE (id)");
    d.must("CREATE TABLE " + P + "_1 PARTITION OF " + P + " FOR VALUES FROM (0) TO (100)");
  }
  Proxy& p = start_sidecar("1s", {"p:10m:" + P});
  ASSERT_TRUE(wait_live(p)) << p.log_tail();
  Pg c{p.spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  const std::string count = "SELECT count(*) FROM " + P;
  EXPECT_EQ(c.scalar(count), "0");
  long before = statement_calls(table_ + "_p");
  EXPECT_EQ(c.scalar(count), "0");
  ASSERT_EQ(statement_calls(table_ + "_p"), before) << "the second read should be a hit";
  {
    Pg d{ConnSpec{}};
    d.must("INSERT INTO " + P + " VALUES (1, 'x')");
  }
  std::string seen;
  EXPECT_TRUE(wait_until([&] { return (seen = c.scalar(count)) == "1"; }, Millis(2000), Millis(10)))
      << "the parent's count is still served: " << seen;
}

}  // namespace
}  // namespace pgs::it::cache_proxy
