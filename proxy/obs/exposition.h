// Prometheus text exposition (format 0.0.4) and admin-console rows, both from the one metric table.
// Pure functions of a MetricData and the registry's label values.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "proxy/obs/metrics.h"

namespace pgs::obs {

// Label value escaping: backslash, double quote and line feed become \\ \" \n.
void append_escaped_label_value(std::string& out, std::string_view v);
// HELP text escaping: backslash and line feed become \\ \n.
void append_escaped_help(std::string& out, std::string_view v);
// Whole numbers below 2^53 as integers, others as the shortest round-trip %g form ("0.0001",
// "5e-05", "1e+21"); "+Inf", "-Inf", "NaN" for the special values.
void append_number(std::string& out, double v);

// Appends the exposition of every metric in table order: # HELP, # TYPE, then one line per series
// (histograms: cumulative _bucket{le=...} lines ending in le="+Inf", then _sum and _count).
// Series are those registered in `labels`; a series never written reads 0.
void render_prometheus(const MetricData& data, const SeriesRegistry::Labels& labels, std::string& out);

// One row per series for the admin console (SHOW METRICS): name, labels as k="v",..., value.
// A histogram gives two rows, <name>_count and <name>_sum.
struct MetricRow {
  std::string name;
  std::string labels;
  std::string value;
};
std::vector<MetricRow> metric_rows(const MetricData& data, const SeriesRegistry::Labels& labels);

}  // namespace pgs::obs
