// Metric definitions (generated from metrics_table.h), the bounded label-set registry and the values
// the exposition writer renders (MetricData). This module stores no metric values of its own: a
// worker's values live in WorkerMetrics (proxy/core/stats.h), and proxy/admin/prom_metrics.cc copies
// the merged workers' values into a MetricData at each scrape.
//
// Threading: SeriesRegistry is thread-safe (mutex; the exporter makes one per scrape); MetricData is
// a plain value.
#pragma once

#include <array>
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

// Values of every metric, as the exposition reads them. Layout per metric:
//  counter:   u[series]
//  gauge:     d[series]
//  histogram: u[series * (buckets + 1) + b] (per bucket, not cumulative; last = above every bound),
//             d[series] = sum of observations.
// A missing entry (vector shorter than the index) reads as 0.
struct MetricData {
  std::array<std::vector<uint64_t>, kMetricCount> u;
  std::array<std::vector<double>, kMetricCount> d;
};

// Index of the bucket `value` falls in: the first bound >= value, or bounds.size() (the +Inf bucket).
// Prometheus buckets are "less than or equal" (le).
size_t bucket_index(std::span<const double> bounds, double value);

inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace pgs::obs
