// Test helper: builds an obs::MetricData series by series the way proxy/admin/prom_metrics.cc does
// at each scrape (label values interned in a registry, values added at their series' index), so the
// exposition tests feed render_prometheus() and metric_rows() what the exporter feeds them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/obs/exposition.h"
#include "proxy/obs/metrics.h"

namespace pgs::obs {

struct MetricDataFill {
  SeriesRegistry reg;
  MetricData data;

  explicit MetricDataFill(size_t max_series_per_metric = 256) : reg(max_series_per_metric) {}

  void counter(MetricId m, std::span<const std::string_view> labels, uint64_t n) {
    row(data.u[idx(m)], reg.intern(m, labels)) += n;
  }
  void counter(MetricId m, std::initializer_list<std::string_view> labels, uint64_t n) {
    counter(m, std::span<const std::string_view>(labels.begin(), labels.size()), n);
  }
  void gauge(MetricId m, std::span<const std::string_view> labels, double v) {
    row(data.d[idx(m)], reg.intern(m, labels)) += v;
  }
  void gauge(MetricId m, std::initializer_list<std::string_view> labels, double v) {
    gauge(m, std::span<const std::string_view>(labels.begin(), labels.size()), v);
  }
  // One observation of `v` (in the metric's unit), counted in the bucket bucket_index() picks.
  void observe(MetricId m, std::span<const std::string_view> labels, double v) {
    const auto bounds = metric_def(m).buckets.span();
    const size_t width = bounds.size() + 1;
    const SeriesId s = reg.intern(m, labels);
    auto& u = data.u[idx(m)];
    if (u.size() < (s + 1) * width) u.resize((s + 1) * width, 0);
    u[s * width + bucket_index(bounds, v)] += 1;
    row(data.d[idx(m)], s) += v;
  }
  void observe(MetricId m, std::initializer_list<std::string_view> labels, double v) {
    observe(m, std::span<const std::string_view>(labels.begin(), labels.size()), v);
  }

  std::string render() const {
    std::string out;
    render_prometheus(data, reg.labels(), out);
    return out;
  }

 private:
  static size_t idx(MetricId m) { return static_cast<size_t>(m); }
  template <typename T>
  static T& row(std::vector<T>& v, SeriesId s) {
    if (v.size() <= s) v.resize(s + 1, T{});
    return v[s];
  }
};

}  // namespace pgs::obs
