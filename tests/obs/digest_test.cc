// Per-fingerprint digests: percentiles, top-N eviction, merge across workers, JSON and rows.
#include "proxy/obs/digest.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <thread>

namespace pgs::obs {
namespace {

using std::chrono::microseconds;

TEST(LatencyHistogram, BucketsAreContiguousAndMonotonic) {
  EXPECT_EQ(LatencyHistogram::bucket_for(0), 0u);
  EXPECT_EQ(LatencyHistogram::bucket_for(9.99), 0u);
  EXPECT_EQ(LatencyHistogram::bucket_for(10), 1u);
  for (size_t i = 1; i + 1 < LatencyHistogram::kBuckets; ++i) {
    EXPECT_DOUBLE_EQ(LatencyHistogram::lower_bound_us(i), LatencyHistogram::upper_bound_us(i - 1));
    EXPECT_EQ(LatencyHistogram::bucket_for(LatencyHistogram::lower_bound_us(i)), i) << i;
    EXPECT_NEAR(LatencyHistogram::upper_bound_us(i) / LatencyHistogram::lower_bound_us(i), 1.189, 0.001);
  }
  EXPECT_EQ(LatencyHistogram::bucket_for(1e12), LatencyHistogram::kBuckets - 1);
  EXPECT_EQ(LatencyHistogram::bucket_for(-5), 0u);
}

// Every value lands in the bucket whose bounds hold it, between the boundaries too (a sweep of 10^-1 to
// 10^9 µs in steps of 0.1%) and right beside each boundary.
TEST(LatencyHistogram, EachValueLandsInTheBucketThatHoldsIt) {
  auto holds = [](size_t b, double x) {
    return LatencyHistogram::lower_bound_us(b) <= x && x < LatencyHistogram::upper_bound_us(b);
  };
  for (double x = 0.1; x < 1e9; x *= 1.001) {
    const size_t b = LatencyHistogram::bucket_for(x);
    ASSERT_LT(b, LatencyHistogram::kBuckets);
    ASSERT_TRUE(holds(b, x)) << x << " in bucket " << b;
  }
  for (size_t i = 0; i + 1 < LatencyHistogram::kBuckets; ++i) {
    const double bound = LatencyHistogram::upper_bound_us(i);
    EXPECT_EQ(LatencyHistogram::bucket_for(std::nextafter(bound, 0.0)), i);
    EXPECT_EQ(LatencyHistogram::bucket_for(bound), i + 1);
  }
  EXPECT_EQ(LatencyHistogram::bucket_for(std::numeric_limits<double>::infinity()), LatencyHistogram::kBuckets - 1);
  EXPECT_EQ(LatencyHistogram::bucket_for(std::numeric_limits<double>::quiet_NaN()), 0u);
}

TEST(LatencyHistogram, SingleObservationIsExact) {
  LatencyHistogram h;
  h.record(1234.5);
  EXPECT_DOUBLE_EQ(h.quantile(0.5), 1234.5);
  EXPECT_DOUBLE_EQ(h.quantile(0.99), 1234.5);
  EXPECT_DOUBLE_EQ(LatencyHistogram().quantile(0.5), 0.0);
}

TEST(LatencyHistogram, PercentilesOfAUniformSpreadWithinOneBucket) {
  LatencyHistogram h;
  for (int i = 1; i <= 10000; ++i) h.record(i * 10.0);  // 10 µs .. 100 ms
  const double tolerance = 0.19;  // one bucket width
  EXPECT_NEAR(h.quantile(0.50) / 50000.0, 1.0, tolerance);
  EXPECT_NEAR(h.quantile(0.95) / 95000.0, 1.0, tolerance);
  EXPECT_NEAR(h.quantile(0.99) / 99000.0, 1.0, tolerance);
  EXPECT_DOUBLE_EQ(h.quantile(1.0), 100000.0);
  EXPECT_DOUBLE_EQ(h.quantile(0.0), 10.0);
}

TEST(LatencyHistogram, PercentilesOfALongTail) {
  LatencyHistogram h;
  std::mt19937 rng(7);
  std::lognormal_distribution<double> dist(std::log(2000.0), 1.0);  // median 2 ms
  std::vector<double> xs;
  for (int i = 0; i < 20000; ++i) {
    xs.push_back(dist(rng));
    h.record(xs.back());
  }
  std::sort(xs.begin(), xs.end());
  for (double q : {0.5, 0.95, 0.99}) {
    const double exact = xs[static_cast<size_t>(q * xs.size()) - 1];
    EXPECT_NEAR(h.quantile(q) / exact, 1.0, 0.19) << q;
  }
}

TEST(LatencyHistogram, MergeEqualsRecordingEverythingInOne) {
  LatencyHistogram a, b, all;
  for (int i = 0; i < 1000; ++i) {
    (i % 2 ? a : b).record(i * 37.0);
    all.record(i * 37.0);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_DOUBLE_EQ(a.min_us(), all.min_us());
  EXPECT_DOUBLE_EQ(a.max_us(), all.max_us());
  for (double q : {0.1, 0.5, 0.9, 0.99}) EXPECT_DOUBLE_EQ(a.quantile(q), all.quantile(q));
}

TEST(DigestTable, AccumulatesPerFingerprint) {
  DigestTable t(DigestOptions{.capacity = 10});
  t.record(1, "SELECT $1", microseconds(1000), 1, false, false);
  t.record(1, "SELECT $1", microseconds(3000), 2, true, false);
  t.record(1, "ignored: text of the first statement is kept", microseconds(2000), 3, false, true);
  t.record(2, "UPDATE t SET a = $1", microseconds(500), 0, false, false);
  const DigestEntry* e = t.find(1);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->query, "SELECT $1");
  EXPECT_EQ(e->calls, 3u);
  EXPECT_EQ(e->rows, 6u);
  EXPECT_EQ(e->errors, 1u);
  EXPECT_EQ(e->cache_hits, 1u);
  EXPECT_DOUBLE_EQ(e->total_ms(), 6.0);
  EXPECT_DOUBLE_EQ(e->mean_ms(), 2.0);
  EXPECT_NEAR(e->percentile_ms(0.5), 2.0, 2.0 * 0.19);
  EXPECT_DOUBLE_EQ(e->percentile_ms(0.99), 3.0);
  EXPECT_EQ(t.size(), 2u);
  const auto top = t.top(10);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0]->fingerprint, 1u);
}

// A statement whose shape the caller knows is counted without its text, once the table has it.
TEST(DigestTable, RecordIfPresentCountsOnlyAKnownFingerprint) {
  DigestTable t(DigestOptions{.capacity = 10});
  EXPECT_FALSE(t.record_if_present(7, microseconds(100), 1, false, false));
  EXPECT_EQ(t.size(), 0u) << "nothing recorded for an unknown fingerprint";
  t.record(7, "SELECT $1", microseconds(100), 1, false, false);
  EXPECT_TRUE(t.record_if_present(7, microseconds(300), 2, true, true));
  const DigestEntry* e = t.find(7);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->query, "SELECT $1");
  EXPECT_EQ(e->calls, 2u);
  EXPECT_EQ(e->rows, 3u);
  EXPECT_EQ(e->errors, 1u);
  EXPECT_EQ(e->cache_hits, 1u);
}

TEST(DigestTable, FullTableEvictsTheLeastCalled) {
  DigestTable t(DigestOptions{.capacity = 20});
  // 10 heavy hitters, called often...
  for (int round = 0; round < 50; ++round) {
    for (uint64_t fp = 1; fp <= 10; ++fp) t.record(fp, "heavy", microseconds(100), 1, false, false);
  }
  // ...then a stream of 1000 distinct one-off statements.
  for (uint64_t fp = 1000; fp < 2000; ++fp) t.record(fp, "one-off", microseconds(100000), 1, false, false);
  EXPECT_LE(t.size(), 20u);
  EXPECT_GT(t.evictions(), 900u);
  for (uint64_t fp = 1; fp <= 10; ++fp) {
    ASSERT_NE(t.find(fp), nullptr) << fp;
    EXPECT_EQ(t.find(fp)->calls, 50u);
  }
  EXPECT_NE(t.find(1999), nullptr) << "the newest one-off has just been inserted";
}

TEST(DigestTable, TiesEvictTheLeastRecentlySeen) {
  DigestTable t(DigestOptions{.capacity = 3});
  t.record(1, "a", microseconds(1), 0, false, false);
  t.record(2, "b", microseconds(1), 0, false, false);
  t.record(3, "c", microseconds(1), 0, false, false);
  t.record(4, "d", microseconds(1), 0, false, false);  // evicts 1 (oldest of the 1-call ties)
  EXPECT_EQ(t.find(1), nullptr);
  EXPECT_NE(t.find(2), nullptr);
  EXPECT_NE(t.find(4), nullptr);
}

TEST(DigestTable, QueryTextIsBounded) {
  DigestTable t(DigestOptions{.capacity = 4, .max_query_bytes = 8});
  t.record(1, "SELECT 1234567890", microseconds(1), 0, false, false);
  EXPECT_EQ(t.find(1)->query, "SELECT 1");
}

TEST(DigestHub, MergesWorkersAndEmptiesTheirTables) {
  DigestHub hub(DigestOptions{.capacity = 100});
  constexpr int kWorkers = 4, kCalls = 2000;
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      DigestTable local(DigestOptions{.capacity = 100});
      for (int i = 0; i < kCalls; ++i) {
        local.record(42, "SELECT * FROM t WHERE id = $1", microseconds(1000 * (w + 1)), 1, false, i % 4 == 0);
        local.record(100 + w, "per-worker", microseconds(10), 0, true, false);
        if (i % 500 == 499) {
          hub.publish(local);
          EXPECT_EQ(local.size(), 0u);
        }
      }
    });
  }
  for (auto& t : workers) t.join();
  const DigestTable merged = hub.snapshot();
  const DigestEntry* e = merged.find(42);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->calls, uint64_t{kWorkers * kCalls});
  EXPECT_EQ(e->rows, uint64_t{kWorkers * kCalls});
  EXPECT_EQ(e->cache_hits, uint64_t{kWorkers * kCalls / 4});
  EXPECT_DOUBLE_EQ(e->total_ms(), kCalls * (1.0 + 2.0 + 3.0 + 4.0));
  EXPECT_DOUBLE_EQ(e->latency.min_us(), 1000.0);
  EXPECT_DOUBLE_EQ(e->latency.max_us(), 4000.0);
  EXPECT_EQ(merged.size(), 1u + kWorkers);
  EXPECT_EQ(merged.find(101)->errors, uint64_t{kCalls});
}

TEST(DigestJson, SortedByTotalTimeWithEveryField) {
  DigestTable t(DigestOptions{.capacity = 10});
  for (int i = 0; i < 100; ++i) t.record(0xabc, "SELECT \"x\" FROM t", microseconds(1000 + i * 10), 2, false, false);
  t.record(0xdef, "bad \xff text", microseconds(900000), 0, true, false);
  t.record(0x123, "cheap", microseconds(1), 0, false, false);
  const auto root = boost::json::parse(digests_json(t, 2)).as_object();
  EXPECT_EQ(root.at("capacity").to_number<uint64_t>(), 10u);
  EXPECT_EQ(root.at("size").to_number<uint64_t>(), 3u);
  const auto& list = root.at("digests").as_array();
  ASSERT_EQ(list.size(), 2u);
  const auto& first = list[0].as_object();
  EXPECT_EQ(first.at("fingerprint").as_string(), "0000000000000def");
  EXPECT_EQ(first.at("query").as_string(), "bad \xEF\xBF\xBD text");
  EXPECT_EQ(first.at("errors").to_number<uint64_t>(), 1u);
  const auto& second = list[1].as_object();
  EXPECT_EQ(second.at("calls").to_number<uint64_t>(), 100u);
  for (const char* k : {"total_ms", "mean_ms", "min_ms", "max_ms", "p50_ms", "p95_ms", "p99_ms"}) {
    EXPECT_TRUE(second.at(k).is_double()) << k;
  }
  EXPECT_DOUBLE_EQ(second.at("min_ms").as_double(), 1.0);
  EXPECT_DOUBLE_EQ(second.at("max_ms").as_double(), 1.99);
  EXPECT_LE(second.at("p50_ms").as_double(), second.at("p95_ms").as_double());
  EXPECT_LE(second.at("p95_ms").as_double(), second.at("p99_ms").as_double());
}

TEST(DigestRows, MatchTheColumns) {
  DigestTable t(DigestOptions{.capacity = 10});
  t.record(0xabc, "SELECT 1", microseconds(1500), 1, false, true);
  const auto rows = digest_rows(t, 10);
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_EQ(rows[0].size(), digest_columns().size());
  EXPECT_EQ(rows[0][0], "0000000000000abc");
  EXPECT_EQ(rows[0][1], "SELECT 1");
  EXPECT_EQ(rows[0][2], "1");
  EXPECT_EQ(rows[0][3], "1.500");
  EXPECT_EQ(rows[0][10], "1");
}

TEST(DigestLimit, ParsesTheQueryString) {
  EXPECT_EQ(digest_limit_from_query("", 50, 1000), 50u);
  EXPECT_EQ(digest_limit_from_query("limit=7", 50, 1000), 7u);
  EXPECT_EQ(digest_limit_from_query("a=b&limit=70000", 50, 1000), 1000u);
  EXPECT_EQ(digest_limit_from_query("limit=0", 50, 1000), 1u);
  EXPECT_EQ(digest_limit_from_query("limit=abc", 50, 1000), 50u);
}

}  // namespace
}  // namespace pgs::obs
