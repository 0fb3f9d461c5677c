// Metric definitions (generated from metrics_table.h), bounded label-set registry, per-worker storage
// and the thread-safe aggregate the HTTP thread renders from.
//
// Threading model:
//  - SeriesRegistry: thread-safe (mutex). Interning is for set-up time or rare events (a new pool, a
//    new SQLSTATE class); hot paths keep the returned SeriesId.
//  - ShardMetrics: owned by ONE thread (a worker, or the health monitor). Plain arrays, no atomics.
//  - MetricsHub: thread-safe. Each shard copies its absolute values into the hub with publish()
//    (the proxy calls it from a per-worker timer, e.g. every 1 s, and on shutdown); render() merges the
//    latest published copy of every shard. /metrics is thus at most one publish interval stale.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/obs/metrics_table.h"

namespace pgs::obs {

enum class MetricKind : uint8_t { counter, gauge, histogram };
enum class MetricUnit : uint8_t { none, seconds, bytes };

inline constexpr size_t kMaxLabels = 4;
inline constexpr size_t kMaxBuckets = 24;

// A short list with a compile-time capacity, filled from a braced list in a constant expression.
template <typename T, size_t N>
struct FixedList {
  std::array<T, N> items{};
  size_t count = 0;
  constexpr FixedList(std::initializer_list<T> init) {
    if (init.size() > N) throw "FixedList: too many items";  // a compile error in a constexpr table
    for (const T& v : init) items[count++] = v;
  }
  constexpr size_t size() const { return count; }
  constexpr const T& operator[](size_t i) const { return items[i]; }
  constexpr std::span<const T> span() const { return {items.data(), count}; }
};

enum class MetricId : uint16_t {
#define PGS_OBS_ENUM(id, kind, unit, name, help, labels, buckets) id,
  PGS_OBS_METRICS(PGS_OBS_ENUM)
#undef PGS_OBS_ENUM
};

#define PGS_OBS_COUNT(id, kind, unit, name, help, labels, buckets) +1
inline constexpr size_t kMetricCount = 0 PGS_OBS_METRICS(PGS_OBS_COUNT);
#undef PGS_OBS_COUNT

struct MetricDef {
  MetricId id;
  MetricKind kind;
  MetricUnit unit;
  std::string_view name;  // full exposition name, e.g. "pgsidecar_queries_total"
  std::string_view help;
  FixedList<std::string_view, kMaxLabels> labels;
  FixedList<double, kMaxBuckets> buckets;  // upper bounds; +Inf implicit
};

#define PGS_OBS_UNPAREN(...) __VA_ARGS__
#define PGS_OBS_DEF(id, kind, unit, name, help, labels, buckets)                        \
  MetricDef{MetricId::id, MetricKind::kind, MetricUnit::unit, name, help,               \
            FixedList<std::string_view, kMaxLabels>{PGS_OBS_UNPAREN labels},            \
            FixedList<double, kMaxBuckets>{PGS_OBS_UNPAREN buckets}},
inline constexpr std::array<MetricDef, kMetricCount> kMetrics = {PGS_OBS_METRICS(PGS_OBS_DEF)};
#undef PGS_OBS_DEF

constexpr const MetricDef& metric_def(MetricId id) { return kMetrics[static_cast<size_t>(id)]; }

// Index of a label set within one metric. Stable for the life of the registry.
using SeriesId = uint32_t;

// Label value used for every label of the overflow series.
inline constexpr std::string_view kOverflowLabelValue = "other";

// Bounded registry of label sets, per metric. Thread-safe.
class SeriesRegistry {
 public:
  // At most `max_series_per_metric` (>= 2) label sets per metric; the last slot is the overflow
  // series (every label = "other") that absorbs label sets beyond the limit.
  explicit SeriesRegistry(size_t max_series_per_metric = 256);

  // The id of `values` (one per label name, in table order) for `metric`, registering it if new.
  // A metric without labels has exactly one series, id 0. A wrong number of values, or a full
  // metric, yields the overflow series and counts an overflow.
  SeriesId intern(MetricId metric, std::span<const std::string_view> values);
  SeriesId intern(MetricId metric, std::initializer_list<std::string_view> values) {
    return intern(metric, std::span<const std::string_view>(values.begin(), values.size()));
  }

  // Copy of every metric's label values, indexed [metric][series][label].
  using Labels = std::vector<std::vector<std::vector<std::string>>>;
  Labels labels() const;
  uint64_t overflows() const;

 private:
  SeriesId overflow_series(size_t metric);

  size_t max_series_;
  mutable std::mutex mu_;
  Labels labels_;
  uint64_t overflows_ = 0;
};

// Values of every metric for one shard, or merged. Layout per metric:
//  counter:   u[series]
//  gauge:     d[series]
//  histogram: u[series * (buckets + 1) + b] (per bucket, not cumulative; last = above every bound),
//             d[series] = sum of observations.
// Vectors grow on first use of a series; a missing entry reads as 0.
struct MetricData {
  std::array<std::vector<uint64_t>, kMetricCount> u;
  std::array<std::vector<double>, kMetricCount> d;
  void merge_from(const MetricData& other);
};

// Index of the bucket `value` falls in: the first bound >= value, or bounds.size() (the +Inf bucket).
// Prometheus buckets are "less than or equal" (le).
size_t bucket_index(std::span<const double> bounds, double value);

class MetricsHub;

// One thread's metrics. Not thread-safe; every call is O(1) except observe() (O(log buckets)) and
// the first use of a series (vector growth).
class ShardMetrics {
 public:
  explicit ShardMetrics(MetricsHub& hub);  // registers a shard slot in the hub
  ShardMetrics(const ShardMetrics&) = delete;
  ShardMetrics& operator=(const ShardMetrics&) = delete;

  void inc(MetricId m, SeriesId s = 0, uint64_t n = 1);       // counter
  void set(MetricId m, SeriesId s, double v);                  // gauge
  void add(MetricId m, SeriesId s, double delta);              // gauge
  void observe(MetricId m, SeriesId s, double v);              // histogram, v in the metric's unit; NaN ignored
  void observe(MetricId m, SeriesId s, std::chrono::nanoseconds d) {
    observe(m, s, std::chrono::duration<double>(d).count());
  }

  // Copies this shard's absolute values into the hub (takes the hub's mutex briefly).
  void publish();
  const MetricData& data() const { return data_; }
  SeriesRegistry& series();

 private:
  MetricsHub& hub_;
  size_t slot_;
  MetricData data_;
};

// The process-wide aggregate. Thread-safe. Must outlive its shards.
class MetricsHub {
 public:
  explicit MetricsHub(size_t max_series_per_metric = 256);

  SeriesRegistry& series() { return series_; }

  // Sum of the latest published copy of every shard, plus uptime and the series-overflow count.
  MetricData merged() const;

  // Prometheus text exposition format 0.0.4 of merged(); content type kPrometheusContentType.
  std::string render_prometheus() const;

  double uptime_seconds() const;

 private:
  friend class ShardMetrics;
  size_t add_shard();
  void publish(size_t slot, const MetricData& data);

  SeriesRegistry series_;
  std::chrono::steady_clock::time_point start_;
  mutable std::mutex mu_;
  std::vector<MetricData> shards_;
};

inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace pgs::obs
