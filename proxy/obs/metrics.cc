#include "proxy/obs/metrics.h"

#include <algorithm>

namespace pgs::obs {

namespace {

size_t idx(MetricId m) { return static_cast<size_t>(m); }

}  // namespace

// ---- SeriesRegistry ----

SeriesRegistry::SeriesRegistry(size_t max_series_per_metric)
    : max_series_(std::max<size_t>(2, max_series_per_metric)), labels_(kMetricCount) {
  for (const MetricDef& def : kMetrics) {
    if (def.labels.size() == 0) labels_[idx(def.id)].emplace_back();  // the single series, id 0
  }
}

SeriesId SeriesRegistry::overflow_series(size_t metric) {
  ++overflows_;
  auto& sets = labels_[metric];
  const size_t nlabels = kMetrics[metric].labels.size();
  std::vector<std::string> other(nlabels, std::string(kOverflowLabelValue));
  for (size_t i = 0; i < sets.size(); ++i) {
    if (sets[i] == other) return static_cast<SeriesId>(i);
  }
  sets.push_back(std::move(other));
  return static_cast<SeriesId>(sets.size() - 1);
}

SeriesId SeriesRegistry::intern(MetricId metric, std::span<const std::string_view> values) {
  const size_t m = idx(metric);
  std::lock_guard lock(mu_);
  auto& sets = labels_[m];
  if (values.size() != kMetrics[m].labels.size()) return overflow_series(m);
  for (size_t i = 0; i < sets.size(); ++i) {
    if (std::equal(sets[i].begin(), sets[i].end(), values.begin(), values.end())) {
      return static_cast<SeriesId>(i);
    }
  }
  // Keep the last slot for the overflow series.
  if (sets.size() + 1 >= max_series_) return overflow_series(m);
  sets.emplace_back(values.begin(), values.end());
  return static_cast<SeriesId>(sets.size() - 1);
}

SeriesRegistry::Labels SeriesRegistry::labels() const {
  std::lock_guard lock(mu_);
  return labels_;
}

uint64_t SeriesRegistry::overflows() const {
  std::lock_guard lock(mu_);
  return overflows_;
}

size_t bucket_index(std::span<const double> bounds, double value) {
  return static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
}

}  // namespace pgs::obs
