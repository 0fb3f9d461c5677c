// ClassifierCache: memoisation, LRU bound, collisions, option resets.
#include <gtest/gtest.h>

#include <string>

#include "router/classifier_cache.h"

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
  for (int i = 0; i < 3; ++i) (void)cache.classify("SELECT " + std::to_string(i));
  (void)cache.classify("SELECT 0");  // 0 is now most recent; 1 is the oldest
  (void)cache.classify("SELECT 3");  // evicts 1
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.stats().evictions, 1u);
  uint64_t hits = cache.stats().hits;
  (void)cache.classify("SELECT 0");
  EXPECT_EQ(cache.stats().hits, hits + 1);
  (void)cache.classify("SELECT 1");
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
  for (int i = 0; i < 20; ++i) (void)cache.classify("SELECT " + std::to_string(1000000 + i));  // 14 bytes
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

}  // namespace
}  // namespace pgs::router
