#include "proxy/obs/metrics.h"

#include <algorithm>
#include <cmath>

#include "proxy/obs/exposition.h"

namespace pgs::obs {

namespace {

size_t idx(MetricId m) { return static_cast<size_t>(m); }

template <typename T>
T& grow_at(std::vector<T>& v, size_t i) {
  if (i >= v.size()) v.resize(i + 1);
  return v[i];
}

template <typename T>
void add_elementwise(std::vector<T>& into, const std::vector<T>& from) {
  if (into.size() < from.size()) into.resize(from.size());
  for (size_t i = 0; i < from.size(); ++i) into[i] += from[i];
}

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

// ---- MetricData ----

void MetricData::merge_from(const MetricData& other) {
  for (size_t m = 0; m < kMetricCount; ++m) {
    add_elementwise(u[m], other.u[m]);
    add_elementwise(d[m], other.d[m]);
  }
}

size_t bucket_index(std::span<const double> bounds, double value) {
  return static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
}

// ---- ShardMetrics ----

ShardMetrics::ShardMetrics(MetricsHub& hub) : hub_(hub), slot_(hub.add_shard()) {}

SeriesRegistry& ShardMetrics::series() { return hub_.series(); }

void ShardMetrics::inc(MetricId m, SeriesId s, uint64_t n) { grow_at(data_.u[idx(m)], s) += n; }

void ShardMetrics::set(MetricId m, SeriesId s, double v) { grow_at(data_.d[idx(m)], s) = v; }

void ShardMetrics::add(MetricId m, SeriesId s, double delta) { grow_at(data_.d[idx(m)], s) += delta; }

void ShardMetrics::observe(MetricId m, SeriesId s, double v) {
  if (std::isnan(v)) return;  // would poison _sum forever
  const MetricDef& def = metric_def(m);
  const size_t width = def.buckets.size() + 1;
  const size_t b = bucket_index(def.buckets.span(), v);
  grow_at(data_.u[idx(m)], s * width + width - 1);  // whole series row at once
  data_.u[idx(m)][s * width + b] += 1;
  grow_at(data_.d[idx(m)], s) += v;
}

void ShardMetrics::publish() { hub_.publish(slot_, data_); }

// ---- MetricsHub ----

MetricsHub::MetricsHub(size_t max_series_per_metric)
    : series_(max_series_per_metric), start_(std::chrono::steady_clock::now()) {}

size_t MetricsHub::add_shard() {
  std::lock_guard lock(mu_);
  shards_.emplace_back();
  return shards_.size() - 1;
}

void MetricsHub::publish(size_t slot, const MetricData& data) {
  std::lock_guard lock(mu_);
  shards_[slot] = data;
}

double MetricsHub::uptime_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

MetricData MetricsHub::merged() const {
  MetricData out;
  {
    std::lock_guard lock(mu_);
    for (const MetricData& shard : shards_) out.merge_from(shard);
  }
  out.d[idx(MetricId::uptime_seconds)] = {uptime_seconds()};
  grow_at(out.u[idx(MetricId::metric_series_overflow_total)], 0) += series_.overflows();
  return out;
}

std::string MetricsHub::render_prometheus() const {
  // Labels are read after the data so every series id present in the data has its labels.
  MetricData data = merged();
  SeriesRegistry::Labels labels = series_.labels();
  std::string out;
  out.reserve(16 * 1024);
  obs::render_prometheus(data, labels, out);
  return out;
}

}  // namespace pgs::obs
