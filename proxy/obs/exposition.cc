#include "proxy/obs/exposition.h"

#include <charconv>
#include <cmath>

namespace pgs::obs {

namespace {

std::string_view type_name(MetricKind k) {
  switch (k) {
    case MetricKind::counter: return "counter";
    case MetricKind::gauge: return "gauge";
    case MetricKind::histogram: return "histogram";
  }
  return "untyped";
}

template <typename T>
T at_or_zero(const std::vector<T>& v, size_t i) {
  return i < v.size() ? v[i] : T{};
}

void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// {a="x",b="y"} plus an optional extra label (le) last; nothing when there are no labels at all.
void append_labels(std::string& out, const MetricDef& def, const std::vector<std::string>& values,
                   std::string_view extra_name = {}, std::string_view extra_value = {}) {
  if (values.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  for (size_t i = 0; i < values.size() && i < def.labels.size(); ++i) {
    if (!first) out += ',';
    first = false;
    out += def.labels[i];
    out += "=\"";
    append_escaped_label_value(out, values[i]);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

void render_histogram_series(std::string& out, const MetricDef& def, const MetricData& data,
                             size_t series, const std::vector<std::string>& values) {
  const size_t m = static_cast<size_t>(def.id);
  const size_t width = def.buckets.size() + 1;
  uint64_t cumulative = 0;
  std::string le;
  for (size_t b = 0; b < width; ++b) {
    cumulative += at_or_zero(data.u[m], series * width + b);
    le.clear();
    if (b < def.buckets.size()) {
      append_number(le, def.buckets[b]);
    } else {
      le = "+Inf";
    }
    out += def.name;
    out += "_bucket";
    append_labels(out, def, values, "le", le);
    out += ' ';
    append_uint(out, cumulative);
    out += '\n';
  }
  out += def.name;
  out += "_sum";
  append_labels(out, def, values);
  out += ' ';
  append_number(out, at_or_zero(data.d[m], series));
  out += '\n';
  out += def.name;
  out += "_count";
  append_labels(out, def, values);
  out += ' ';
  append_uint(out, cumulative);
  out += '\n';
}

void render_series(std::string& out, const MetricDef& def, const MetricData& data, size_t series,
                   const std::vector<std::string>& values) {
  const size_t m = static_cast<size_t>(def.id);
  if (def.kind == MetricKind::histogram) {
    render_histogram_series(out, def, data, series, values);
    return;
  }
  out += def.name;
  append_labels(out, def, values);
  out += ' ';
  if (def.kind == MetricKind::counter) {
    append_uint(out, at_or_zero(data.u[m], series));
  } else {
    append_number(out, at_or_zero(data.d[m], series));
  }
  out += '\n';
}

std::string labels_text(const MetricDef& def, const std::vector<std::string>& values) {
  std::string s;
  append_labels(s, def, values);
  if (s.size() >= 2) s = s.substr(1, s.size() - 2);
  return s;
}

}  // namespace

void append_escaped_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

void append_escaped_help(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else if (v == std::trunc(v) && std::fabs(v) < 9007199254740992.0) {
    // Whole numbers (counts, bytes, most bucket bounds) print as integers: "8192", not "8192.0".
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v));
    out.append(buf, r.ptr);
  } else {
    // Shortest round trip in %g style, as Go's client prints bounds: "0.0001", "5e-05".
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
    out.append(buf, r.ptr);
  }
}

void render_prometheus(const MetricData& data, const SeriesRegistry::Labels& labels, std::string& out) {
  for (const MetricDef& def : kMetrics) {
    out += "# HELP ";
    out += def.name;
    out += ' ';
    append_escaped_help(out, def.help);
    out += "\n# TYPE ";
    out += def.name;
    out += ' ';
    out += type_name(def.kind);
    out += '\n';
    const auto& sets = labels[static_cast<size_t>(def.id)];
    for (size_t s = 0; s < sets.size(); ++s) render_series(out, def, data, s, sets[s]);
  }
}

std::vector<MetricRow> metric_rows(const MetricData& data, const SeriesRegistry::Labels& labels) {
  std::vector<MetricRow> rows;
  for (const MetricDef& def : kMetrics) {
    const size_t m = static_cast<size_t>(def.id);
    const auto& sets = labels[m];
    for (size_t s = 0; s < sets.size(); ++s) {
      std::string l = labels_text(def, sets[s]);
      std::string value;
      if (def.kind == MetricKind::counter) {
        append_uint(value, at_or_zero(data.u[m], s));
      } else if (def.kind == MetricKind::gauge) {
        append_number(value, at_or_zero(data.d[m], s));
      } else {
        const size_t width = def.buckets.size() + 1;
        uint64_t count = 0;
        for (size_t b = 0; b < width; ++b) count += at_or_zero(data.u[m], s * width + b);
        std::string sum;
        append_number(sum, at_or_zero(data.d[m], s));
        rows.push_back({std::string(def.name) + "_sum", l, std::move(sum)});
        append_uint(value, count);
        rows.push_back({std::string(def.name) + "_count", std::move(l), std::move(value)});
        continue;
      }
      rows.push_back({std::string(def.name), std::move(l), std::move(value)});
    }
  }
  return rows;
}

}  // namespace pgs::obs
