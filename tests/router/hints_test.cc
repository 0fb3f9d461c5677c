// Leading-comment hints, parsed without the parser.
#include <gtest/gtest.h>

#include "router/classify.h"

namespace pgs::router {
namespace {

using std::chrono::milliseconds;

TEST(Hints, Route) {
  EXPECT_EQ(parse_hints("/* pgsidecar: primary */ SELECT 1").route, RouteHint::primary);
  EXPECT_EQ(parse_hints("/*pgsidecar:replica*/SELECT 1").route, RouteHint::replica);
  EXPECT_EQ(parse_hints("-- pgsidecar: replica\nSELECT 1").route, RouteHint::replica);
  EXPECT_EQ(parse_hints("/* PgSidecar: PRIMARY */ SELECT 1").route, RouteHint::primary);
  EXPECT_EQ(parse_hints("SELECT 1").route, RouteHint::none);
}

TEST(Hints, OnlyLeadingCommentsCount) {
  EXPECT_EQ(parse_hints("SELECT 1 /* pgsidecar: replica */").route, RouteHint::none);
  EXPECT_EQ(parse_hints("SELECT '/* pgsidecar: replica */'").route, RouteHint::none);
  // Other leading comments (sqlcommenter, ORMs) may come first.
  EXPECT_EQ(parse_hints("/* app=web */ -- x\n /* pgsidecar: replica */ SELECT 1").route, RouteHint::replica);
  EXPECT_EQ(parse_hints("/* just a comment */ SELECT 1").route, RouteHint::none);
  EXPECT_FALSE(parse_hints("/* just a comment */ SELECT 1").malformed);
}

TEST(Hints, Cache) {
  Hint h = parse_hints("/* pgsidecar: cache ttl=30s */ SELECT 1");
  EXPECT_TRUE(h.cache);
  ASSERT_TRUE(h.cache_ttl.has_value());
  EXPECT_EQ(*h.cache_ttl, milliseconds(30000));
  h = parse_hints("/* pgsidecar: cache class=users */ SELECT 1");
  EXPECT_TRUE(h.cache);
  EXPECT_EQ(h.cache_class, "users");
  EXPECT_FALSE(h.cache_ttl.has_value());
  h = parse_hints("/* pgsidecar: cache ttl=250ms class=hot */ SELECT 1");
  EXPECT_EQ(*h.cache_ttl, milliseconds(250));
  EXPECT_EQ(h.cache_class, "hot");
  EXPECT_EQ(*parse_hints("/* pgsidecar: cache ttl=5m */ SELECT 1").cache_ttl, milliseconds(300000));
  EXPECT_EQ(*parse_hints("/* pgsidecar: cache ttl=1h */ SELECT 1").cache_ttl, milliseconds(3600000));
  EXPECT_EQ(*parse_hints("/* pgsidecar: cache ttl=7 */ SELECT 1").cache_ttl, milliseconds(7000));
}

TEST(Hints, NoCache) {
  Hint h = parse_hints("/* pgsidecar: no cache */ SELECT 1");
  EXPECT_TRUE(h.no_cache);
  EXPECT_FALSE(h.cache);
  EXPECT_FALSE(cacheable_candidate(classify("/* pgsidecar: no cache */ SELECT 1 FROM t")));
  EXPECT_TRUE(cacheable_candidate(classify("/* pgsidecar: cache ttl=1s */ SELECT 1 FROM t")));
}

TEST(Hints, Combined) {
  Hint h = parse_hints("/* pgsidecar: replica, cache ttl=10s class=report */ SELECT 1");
  EXPECT_EQ(h.route, RouteHint::replica);
  EXPECT_EQ(*h.cache_ttl, milliseconds(10000));
  EXPECT_EQ(h.cache_class, "report");
  EXPECT_FALSE(h.malformed);
  h = parse_hints("/* pgsidecar: primary */ /* pgsidecar: no cache */ SELECT 1");
  EXPECT_EQ(h.route, RouteHint::primary);
  EXPECT_TRUE(h.no_cache);
}

TEST(Hints, MalformedIsFlaggedAndIgnored) {
  for (const char* sql : {"/* pgsidecar: sideways */ SELECT 1", "/* pgsidecar: cache ttl=abc */ SELECT 1",
                          "/* pgsidecar: cache ttl=0s */ SELECT 1", "/* pgsidecar: cache ttl=5y */ SELECT 1",
                          "/* pgsidecar: cache size=3 */ SELECT 1"}) {
    Hint h = parse_hints(sql);
    EXPECT_TRUE(h.malformed) << sql;
    EXPECT_EQ(h.route, RouteHint::none) << sql;
    EXPECT_FALSE(h.cache_ttl.has_value()) << sql;
  }
}

TEST(Hints, UnterminatedCommentDoesNotCrash) {
  Hint h = parse_hints("/* pgsidecar: replica");
  EXPECT_EQ(h.route, RouteHint::replica);
  Classification c = classify("/* pgsidecar: replica");
  EXPECT_TRUE(c.flags.parse_error || c.kind == Kind::empty);
}

TEST(Hints, ClassifyCarriesHintsEvenWhenOversized) {
  ClassifyOptions o;
  o.max_parse_bytes = 40;
  Classification c = classify("/* pgsidecar: primary */ SELECT 1 FROM a_rather_long_table_name", o);
  EXPECT_TRUE(c.flags.oversized);
  EXPECT_EQ(c.hint.route, RouteHint::primary);
}

}  // namespace
}  // namespace pgs::router
