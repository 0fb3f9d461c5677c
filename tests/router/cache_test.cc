// ClassifierCache: memoisation, LRU bound, collisions, option resets.
#include <gtest/gtest.h>

#include <string>

#include "router/classifier_cache.h"
#include "router/sql_scan.h"

namespace pgs::router {
namespace {

TEST(ClassifierCache, HitReturnsTheSameObject) {
  ClassifierCache cache(8);
  auto a = cache.classify("SELECT * FROM t");
  auto b = cache.classify("SELECT * FROM t");
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.stats().misses, 1u);
  EXPECT_TRUE(a->read_only);
  auto c = cache.classify("SELECT * FROM t ");  // different text, different entry
  EXPECT_NE(a.get(), c.get());
  EXPECT_EQ(cache.size(), 2u);
}

TEST(ClassifierCache, BoundedLru) {
  ClassifierCache cache(3);
  // String constants: texts differing in numbers alone would share one shape (below).
  auto sel = [](int i) { return "SELECT '" + std::to_string(i) + "'"; };
  for (int i = 0; i < 3; ++i) (void)cache.classify(sel(i));
  (void)cache.classify(sel(0));  // 0 is now most recent; 1 is the oldest
  (void)cache.classify(sel(3));  // evicts 1
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.stats().evictions, 1u);
  uint64_t hits = cache.stats().hits;
  (void)cache.classify(sel(0));
  EXPECT_EQ(cache.stats().hits, hits + 1);
  (void)cache.classify(sel(1));
  EXPECT_EQ(cache.stats().hits, hits + 1);  // was evicted: a miss
  EXPECT_LE(cache.size(), 3u);
}

TEST(ClassifierCache, EvictedResultStaysValid) {
  ClassifierCache cache(1);
  auto kept = cache.classify("INSERT INTO t VALUES (1)");
  for (int i = 0; i < 10; ++i) (void)cache.classify("SELECT " + std::to_string(i));
  EXPECT_EQ(kept->kind, Kind::insert);
  ASSERT_EQ(kept->tables_written.size(), 1u);
}

TEST(ClassifierCache, LongTextsAreNotStored) {
  ClassifierCache cache(8, {}, 32);
  std::string long_sql = "SELECT * FROM t WHERE a = 'xxxxxxxxxxxxxxxxxxxxxxxxxxxx'";
  auto a = cache.classify(long_sql);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.stats().uncached, 1u);
  EXPECT_TRUE(a->read_only);
}

TEST(ClassifierCache, TotalTextBudget) {
  ClassifierCache cache(100, {}, 64, 100);  // 100 bytes of text at most
  for (int i = 0; i < 20; ++i) (void)cache.classify("SELECT a" + std::to_string(100000 + i));  // 14 bytes
  EXPECT_LE(cache.text_bytes(), 100u);
  EXPECT_EQ(cache.size(), 7u);
  EXPECT_EQ(cache.stats().evictions, 13u);
  cache.clear();
  EXPECT_EQ(cache.text_bytes(), 0u);
}

TEST(ClassifierCache, ResetAppliesNewOptions) {
  ClassifierCache cache(8);
  EXPECT_FALSE(cache.classify("SELECT report()")->read_only);
  ClassifyOptions o;
  o.replica_safe_functions = {"report"};
  cache.reset(o);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_TRUE(cache.classify("SELECT report()")->read_only);
}

TEST(ClassifierCache, ZeroCapacityStillClassifies) {
  ClassifierCache cache(0);
  EXPECT_TRUE(cache.classify("SELECT 1")->read_only);
  EXPECT_EQ(cache.size(), 0u);
}

// One request's text is asked for by several readers in turn: the repeat is answered from the last
// text, also for a text the exact-text index does not hold (one answered by its shape).
TEST(ClassifierCache, TheTextJustAskedForIsAnsweredAgainWithoutALookup) {
  ClassifierCache cache(8);
  auto a = cache.classify("SELECT abalance FROM pgbench_accounts WHERE aid = 41");
  auto b = cache.classify("SELECT abalance FROM pgbench_accounts WHERE aid = 97");  // by its shape
  auto again = cache.classify("SELECT abalance FROM pgbench_accounts WHERE aid = 97");
  EXPECT_EQ(again.get(), b.get());
  EXPECT_EQ(cache.stats().repeats, 1u);
  EXPECT_EQ(cache.stats().shape_hits, 1u) << "the repeat was not looked up by its shape again";
  (void)cache.classify("SELECT abalance FROM pgbench_accounts WHERE aid = 5");
  EXPECT_EQ(cache.stats().repeats, 1u) << "another text is no repeat";
  ClassifyOptions o;
  o.replica_safe_functions = {"report"};
  EXPECT_FALSE(cache.classify("SELECT report()")->read_only);
  cache.reset(o);
  EXPECT_TRUE(cache.classify("SELECT report()")->read_only) << "a reset forgets the last answer too";
  (void)a;
}

// Texts that differ only in numeric constants share one classification, parsed once.
TEST(ClassifierCache, NumericConstantsShareAShape) {
  ClassifierCache cache(8);
  auto a = cache.classify("SELECT abalance FROM pgbench_accounts WHERE aid = 41");
  auto b = cache.classify("SELECT abalance FROM pgbench_accounts WHERE aid = 97");
  auto c = cache.classify("SELECT abalance FROM pgbench_accounts WHERE aid = 12345 /* 7 */");
  EXPECT_EQ(cache.stats().shape_hits, 1u);  // c's comment differs from theirs: its own shape
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(cache.size(), 2u);
  // Constants of another length: parsed once for that length, then shared, lengths exact.
  auto d = cache.classify("SELECT abalance FROM pgbench_accounts WHERE aid = 1.5e3");
  EXPECT_EQ(cache.stats().shape_hits, 1u);
  auto e = cache.classify("SELECT abalance FROM pgbench_accounts WHERE aid = 70000");
  EXPECT_EQ(cache.stats().shape_hits, 2u);
  EXPECT_EQ(d.get(), e.get());
  EXPECT_EQ(e->length, 55u);
  ASSERT_EQ(e->statements.size(), 1u);
  EXPECT_EQ(e->statements.front().length, 55u);
  EXPECT_EQ(e->kind, Kind::select);
  ASSERT_EQ(e->tables_read.size(), 1u);
  EXPECT_EQ(e->tables_read.front().name, "pgbench_accounts");
  auto u = cache.classify("UPDATE pgbench_accounts SET abalance = abalance + -4 WHERE aid = 8");
  auto v = cache.classify("UPDATE pgbench_accounts SET abalance = abalance + -7 WHERE aid = 3");
  EXPECT_EQ(cache.stats().shape_hits, 3u);
  EXPECT_TRUE(v->writes());
  EXPECT_EQ(v->statements.front().length, 66u);
}

// What may depend on a number is never shared: function calls (an advisory lock's key, a sequence),
// session changes, several statements, parse errors, and names holding digits are names.
TEST(ClassifierCache, WhatMayDependOnANumberIsNotShared) {
  for (auto [first, second] : std::vector<std::pair<std::string, std::string>>{
           {"SELECT pg_advisory_lock(1)", "SELECT pg_advisory_lock(2)"},
           {"SET statement_timeout = 1000", "SET statement_timeout = 2000"},
           {"SELECT 1; SELECT 2", "SELECT 3; SELECT 4"},
           {"SELECT 1 +", "SELECT 2 +"},
           {"FETCH 5 FROM c", "FETCH 6 FROM c"},
       }) {
    ClassifierCache cache(8);
    (void)cache.classify(first);
    (void)cache.classify(second);
    EXPECT_EQ(cache.stats().shape_hits, 0u) << first;
  }
  ClassifierCache cache(8);
  auto t1 = cache.classify("SELECT * FROM t1 WHERE a = 1");
  auto t2 = cache.classify("SELECT * FROM t2 WHERE a = 1");
  EXPECT_EQ(cache.stats().shape_hits, 0u);
  EXPECT_EQ(t2->tables_read.front().name, "t2");
  auto s1 = cache.classify("SELECT '1' FROM t WHERE a = 1");
  auto s2 = cache.classify("SELECT '2' FROM t WHERE a = 2");  // strings are kept: its own shape
  EXPECT_EQ(cache.stats().shape_hits, 0u);
}

TEST(NumericShape, ReplacesNumbersOnly) {
  std::string out;
  ASSERT_TRUE(detail::numeric_shape("SELECT 1, 2.5, .5, 1e-3, 7E+2 FROM t9 WHERE a = $1", out));
  EXPECT_EQ(out, "SELECT \x01, \x01, \x01, \x01, \x01 FROM t9 WHERE a = $1");
  ASSERT_TRUE(detail::numeric_shape("SELECT '12', \"c3\", E'\\'4', $q$5$q$, 6 -- 7\n/* 8 /* 9 */ */", out));
  EXPECT_EQ(out, "SELECT '12', \"c3\", E'\\'4', $q$5$q$, \x01 -- 7\n/* 8 /* 9 */ */");
  ASSERT_TRUE(detail::numeric_shape("SELECT 123abc, x-1", out));
  EXPECT_EQ(out, "SELECT \x01" "abc, x-\x01");
  EXPECT_FALSE(detail::numeric_shape("SELECT a FROM t", out));         // nothing to replace
  EXPECT_FALSE(detail::numeric_shape("SELECT 'x' || $1", out));
  EXPECT_FALSE(detail::numeric_shape(std::string("SELECT 1\x01", 9), out));  // the marker itself
  EXPECT_FALSE(detail::numeric_shape(std::string("SELECT 1\0", 9), out));
}

// Each kind of token the scan tells apart, at the start of a token and inside one.
TEST(NumericShape, TellsTokensApart) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      // string prefixes: before a quote they open a string, elsewhere they start a name
      {"SELECT B'101', X'1F', N'5', n'6', e'\\'7', U&'8', U&\"c9\", u&'1' + 2",
       "SELECT B'101', X'1F', N'5', n'6', e'\\'7', U&'8', U&\"c9\", u&'1' + \x01"},
      {"UPDATE b SET x1 = e2, N = u3 + 4", "UPDATE b SET x1 = e2, N = u3 + \x01"},
      {"SELECT U & 1, U&x1", "SELECT U & \x01, U&x1"},
      // numbers: ranges, a dangling exponent, a leading dot, signs and operators around them
      {"SELECT 1..2, 3e, 4e+, 5.e2, .6, a.7, -8, 9/1, 2*-3",
       "SELECT \x01.\x01, \x01" "e, \x01" "e+, \x01, \x01, a\x01, -\x01, \x01/\x01, \x01*-\x01"},
      // parameters, dollar quotes (a tag is a name), a lone '$'
      {"SELECT $12, $$3$$, $a1$4$a1$, $ 5, x$6", "SELECT $12, $$3$$, $a1$4$a1$, $ \x01, x$6"},
      // comments, and what merely looks like one
      {"SELECT 1 -- 2\n, 3 /* 4 */ - 5 / 6", "SELECT \x01 -- 2\n, \x01 /* 4 */ - \x01 / \x01"},
      // a name holds its digits, a non-ASCII byte starts or continues one
      {"SELECT _1, \xc3\xa9" "2, a\xc3\xa9" "3, 4", "SELECT _1, \xc3\xa9" "2, a\xc3\xa9" "3, \x01"},
  };
  std::string out;
  for (const auto& [in, want] : cases) {
    ASSERT_TRUE(detail::numeric_shape(in, out)) << in;
    EXPECT_EQ(out, want) << in;
  }
  // NUL and the marker count only outside quotes; an unterminated quote or comment runs to the end
  EXPECT_TRUE(detail::numeric_shape(std::string("SELECT '\0\x01', 1", 14), out));
  EXPECT_EQ(out, std::string("SELECT '\0\x01', \x01", 14));
  EXPECT_FALSE(detail::numeric_shape("SELECT 'abc 1", out));
  EXPECT_FALSE(detail::numeric_shape("SELECT /* 1", out));
  EXPECT_FALSE(detail::numeric_shape("SELECT $$ 1", out));
}

}  // namespace
}  // namespace pgs::router
