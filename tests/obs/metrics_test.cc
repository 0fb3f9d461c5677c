// The metric table's conventions, histogram bucket placement and the bounded series registry.
#include "proxy/obs/metrics.h"

#include <gtest/gtest.h>

#include <set>

namespace pgs::obs {
namespace {

bool ends_with(std::string_view s, std::string_view suffix) { return s.ends_with(suffix); }

TEST(MetricTable, NamesFollowPrometheusConventions) {
  std::set<std::string_view> names;
  for (const MetricDef& def : kMetrics) {
    SCOPED_TRACE(std::string(def.name));
    EXPECT_TRUE(def.name.starts_with("pgsidecar_"));
    EXPECT_TRUE(names.insert(def.name).second) << "duplicate name";
    EXPECT_EQ(def.kind == MetricKind::counter, ends_with(def.name, "_total"));
    if (def.unit == MetricUnit::seconds) {
      EXPECT_TRUE(ends_with(def.name, "_seconds"));
    }
    if (def.unit == MetricUnit::bytes) {
      EXPECT_NE(def.name.find("_bytes"), std::string_view::npos);
    }
    EXPECT_FALSE(def.help.empty());
    EXPECT_EQ(def.kind == MetricKind::histogram, def.buckets.size() > 0);
    for (size_t i = 1; i < def.buckets.size(); ++i) EXPECT_LT(def.buckets[i - 1], def.buckets[i]);
    for (size_t i = 0; i < def.labels.size(); ++i) EXPECT_NE(def.labels[i], "le");
  }
}

TEST(MetricTable, HasEveryMetricOfTheSpec) {
  const char* required[] = {
      "pgsidecar_client_connections", "pgsidecar_server_connections", "pgsidecar_pool_wait_seconds",
      "pgsidecar_query_duration_seconds", "pgsidecar_transaction_duration_seconds",
      "pgsidecar_queries_total", "pgsidecar_errors_total", "pgsidecar_client_bytes_received_total",
      "pgsidecar_client_bytes_sent_total", "pgsidecar_routing_decisions_total",
      "pgsidecar_cache_requests_total", "pgsidecar_cache_bypass_total",
      "pgsidecar_cache_invalidations_total", "pgsidecar_redis_errors_total",
      "pgsidecar_redis_commands_total",
      "pgsidecar_replica_lag_bytes", "pgsidecar_replica_lag_seconds", "pgsidecar_replica_healthy",
      "pgsidecar_pinned_clients", "pgsidecar_slow_queries_total", "pgsidecar_config_reloads_total",
      "pgsidecar_login_failures_total", "pgsidecar_protocol_errors_total", "pgsidecar_uptime_seconds"};
  for (const char* name : required) {
    bool found = false;
    for (const MetricDef& def : kMetrics) found |= def.name == name;
    EXPECT_TRUE(found) << name;
  }
  EXPECT_EQ(metric_def(MetricId::server_connections).labels.size(), 3u);
  EXPECT_EQ(metric_def(MetricId::server_connections).labels[1], "role");
}

TEST(BucketIndex, UpperBoundsAreInclusive) {
  const double bounds[] = {0.1, 0.5, 1.0};
  EXPECT_EQ(bucket_index(bounds, 0.0), 0u);
  EXPECT_EQ(bucket_index(bounds, 0.1), 0u);   // le="0.1" includes 0.1
  EXPECT_EQ(bucket_index(bounds, 0.10001), 1u);
  EXPECT_EQ(bucket_index(bounds, 0.5), 1u);
  EXPECT_EQ(bucket_index(bounds, 1.0), 2u);
  EXPECT_EQ(bucket_index(bounds, 1.5), 3u);   // +Inf bucket
}

// The exporter places each of the proxy's histogram buckets with bucket_index over the table's bounds.
TEST(BucketIndex, TableBoundsOfQueryDuration) {
  const auto bounds = metric_def(MetricId::query_duration_seconds).buckets.span();
  EXPECT_EQ(bucket_index(bounds, 0.0001), 0u);  // exactly the first bound
  EXPECT_EQ(bucket_index(bounds, 0.003), 5u);   // (0.0025, 0.005]
  EXPECT_EQ(bucket_index(bounds, 1000.0), bounds.size());  // +Inf
}

TEST(SeriesRegistry, InternsStableIdsAndBoundsTheSet) {
  SeriesRegistry reg(4);  // 3 real series + the overflow series
  const SeriesId a = reg.intern(MetricId::errors_total, {"08"});
  const SeriesId b = reg.intern(MetricId::errors_total, {"42"});
  EXPECT_NE(a, b);
  EXPECT_EQ(reg.intern(MetricId::errors_total, {"08"}), a);
  const SeriesId c = reg.intern(MetricId::errors_total, {"57"});
  const SeriesId over1 = reg.intern(MetricId::errors_total, {"XX"});
  const SeriesId over2 = reg.intern(MetricId::errors_total, {"YY"});
  EXPECT_NE(over1, c);
  EXPECT_EQ(over1, over2);
  EXPECT_EQ(reg.overflows(), 2u);
  const auto labels = reg.labels()[static_cast<size_t>(MetricId::errors_total)];
  ASSERT_EQ(labels.size(), 4u);
  EXPECT_EQ(labels[over1], std::vector<std::string>{"other"});
  // An existing series is still found after the limit is reached.
  EXPECT_EQ(reg.intern(MetricId::errors_total, {"42"}), b);
}

TEST(SeriesRegistry, LabellessMetricHasSeriesZeroAndWrongArityOverflows) {
  SeriesRegistry reg(8);
  EXPECT_EQ(reg.intern(MetricId::redis_errors_total, {}), 0u);
  const SeriesId bad = reg.intern(MetricId::server_connections, {"only-one"});
  const auto labels = reg.labels()[static_cast<size_t>(MetricId::server_connections)];
  EXPECT_EQ(labels[bad], (std::vector<std::string>{"other", "other", "other"}));
  EXPECT_EQ(reg.overflows(), 1u);
}

}  // namespace
}  // namespace pgs::obs
