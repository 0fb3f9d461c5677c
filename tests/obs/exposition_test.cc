// The Prometheus exposition: escaping, histogram lines, and the whole rendered text checked by the
// real consumers (`promtool check metrics` and the Python prometheus_client parser).
#include "proxy/obs/exposition.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>

#include "tests/obs/metric_data_fill.h"

namespace pgs::obs {
namespace {

struct CommandResult {
  int status = -1;
  std::string output;
};

// Runs `command` with `input` on stdin; returns its exit status and stdout+stderr.
CommandResult run_with_stdin(const std::string& command, const std::string& input) {
  char path[] = "/tmp/pgs_obs_expositionXXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return {};
  close(fd);
  std::ofstream(path, std::ios::binary) << input;
  CommandResult r;
  std::FILE* p = popen((command + " < " + path + " 2>&1").c_str(), "r");
  if (p != nullptr) {
    std::array<char, 4096> buf;
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
    const int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  std::remove(path);
  return r;
}

// Every kind of series filled in, including label values that need escaping.
std::string sample_exposition() {
  MetricDataFill f;
  f.gauge(MetricId::client_connections, {"active"}, 7);
  f.gauge(MetricId::server_connections, {"flopods/flopods", "primary", "idle"}, 4);
  f.gauge(MetricId::pinned_clients, {"quote\" back\\ nl\n end"}, 1);
  f.observe(MetricId::pool_wait_seconds, {"flopods/flopods"}, 0.0);
  f.observe(MetricId::pool_wait_seconds, {"flopods/flopods"}, 0.2);
  for (int i = 1; i <= 100; ++i) f.observe(MetricId::query_duration_seconds, {"replica1"}, i / 1000.0);
  f.counter(MetricId::queries_total, {"replica1"}, 100);
  f.counter(MetricId::errors_total, {"42"}, 1);
  f.counter(MetricId::client_bytes_received_total, {}, 12345);
  f.counter(MetricId::routing_decisions_total, {"replica", "read_only"}, 7);
  f.counter(MetricId::cache_requests_total, {"short", "hit"}, 3);
  f.gauge(MetricId::replica_lag_seconds, {"replica1"}, 0.25);
  f.gauge(MetricId::replica_lag_bytes, {"replica1"}, 8192);
  f.gauge(MetricId::replica_healthy, {"replica1"}, 1);
  return f.render();
}

TEST(Escaping, LabelValues) {
  std::string out;
  append_escaped_label_value(out, "a\"b\\c\nd\te");
  EXPECT_EQ(out, "a\\\"b\\\\c\\nd\te");
}

TEST(Escaping, HelpKeepsQuotes) {
  std::string out;
  append_escaped_help(out, "say \"hi\"\\\n");
  EXPECT_EQ(out, "say \"hi\"\\\\\\n");
}

TEST(Numbers, ShortestRoundTripAndSpecials) {
  std::string out;
  append_number(out, 0.005);
  out += ' ';
  append_number(out, 0.0001);
  out += ' ';
  append_number(out, 8192.0);
  out += ' ';
  append_number(out, 1e21);
  out += ' ';
  append_number(out, 1.0 / 0.0);
  out += ' ';
  append_number(out, -1.0 / 0.0);
  EXPECT_EQ(out, "0.005 0.0001 8192 1e+21 +Inf -Inf");
}

TEST(Exposition, HistogramBucketsAreCumulativeWithSumAndCount) {
  const std::string text = sample_exposition();
  EXPECT_NE(text.find("# TYPE pgsidecar_pool_wait_seconds histogram\n"), std::string::npos);
  // 0.0 falls in the first bucket; 0.2 in le="0.5".
  EXPECT_NE(text.find("pgsidecar_pool_wait_seconds_bucket{pool=\"flopods/flopods\",le=\"5e-05\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("pgsidecar_pool_wait_seconds_bucket{pool=\"flopods/flopods\",le=\"0.1\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("pgsidecar_pool_wait_seconds_bucket{pool=\"flopods/flopods\",le=\"0.5\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("pgsidecar_pool_wait_seconds_bucket{pool=\"flopods/flopods\",le=\"+Inf\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("pgsidecar_pool_wait_seconds_sum{pool=\"flopods/flopods\"} 0.2\n"), std::string::npos);
  EXPECT_NE(text.find("pgsidecar_pool_wait_seconds_count{pool=\"flopods/flopods\"} 2\n"), std::string::npos);
  // 1..100 ms: 10 are <= 10 ms, 25 <= 25 ms, 50 <= 50 ms, all <= 100 ms.
  EXPECT_NE(text.find("pgsidecar_query_duration_seconds_bucket{target=\"replica1\",le=\"0.01\"} 10\n"),
            std::string::npos);
  EXPECT_NE(text.find("pgsidecar_query_duration_seconds_bucket{target=\"replica1\",le=\"0.025\"} 25\n"),
            std::string::npos);
  EXPECT_NE(text.find("pgsidecar_query_duration_seconds_bucket{target=\"replica1\",le=\"0.1\"} 100\n"),
            std::string::npos);
  EXPECT_NE(text.find("pgsidecar_client_connections{state=\"active\"} 7\n"), std::string::npos);
  EXPECT_NE(text.find("pgsidecar_client_bytes_received_total 12345\n"), std::string::npos);
  EXPECT_NE(text.find("pgsidecar_pinned_clients{reason=\"quote\\\" back\\\\ nl\\n end\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE pgsidecar_queries_total counter\n"), std::string::npos);
}

TEST(Exposition, PromtoolAcceptsIt) {
  if (std::string(PGS_PROMTOOL).empty()) GTEST_SKIP() << "promtool not installed";
  const CommandResult r = run_with_stdin(std::string(PGS_PROMTOOL) + " check metrics", sample_exposition());
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "") << "promtool lint findings";
}

// Every metric of the table with one series of each kind, plus an overflow series.
std::string full_exposition() {
  MetricDataFill f(3);
  for (const MetricDef& def : kMetrics) {
    const std::vector<std::string_view> values(def.labels.size(), "v");
    switch (def.kind) {
      case MetricKind::counter: f.counter(def.id, values, 3); break;
      case MetricKind::gauge: f.gauge(def.id, values, 1.5); break;
      case MetricKind::histogram: f.observe(def.id, values, 0.042); break;
    }
  }
  for (const char* cls : {"08", "22", "23", "42"}) f.counter(MetricId::errors_total, {cls}, 1);
  // As the exporter does last: the registry's overflow count.
  f.counter(MetricId::metric_series_overflow_total, {}, f.reg.overflows());
  return f.render();
}

TEST(Exposition, EveryMetricPassesPromtoolLint) {
  if (std::string(PGS_PROMTOOL).empty()) GTEST_SKIP() << "promtool not installed";
  const std::string text = full_exposition();
  EXPECT_NE(text.find("pgsidecar_errors_total{sqlstate_class=\"other\"} 3\n"), std::string::npos) << text;
  // 3 from the loop above (it writes every metric) + 3 label sets folded into "other".
  EXPECT_NE(text.find("pgsidecar_metric_series_overflow_total 6\n"), std::string::npos);
  const CommandResult r = run_with_stdin(std::string(PGS_PROMTOOL) + " check metrics", text);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "") << "promtool lint findings";
}

TEST(Exposition, PromtoolRejectsBrokenText) {
  // Guards the check above: it must be able to fail.
  if (std::string(PGS_PROMTOOL).empty()) GTEST_SKIP() << "promtool not installed";
  const CommandResult r = run_with_stdin(std::string(PGS_PROMTOOL) + " check metrics",
                                         "# TYPE x counter\nx{a=\"unterminated} 1\n");
  EXPECT_NE(r.status, 0) << r.output;
}

TEST(Exposition, PythonClientParsesEverySampleBack) {
  const std::string script =
      "import sys\n"
      "from prometheus_client.parser import text_string_to_metric_families\n"
      "fams = {f.name: f for f in text_string_to_metric_families(sys.stdin.read())}\n"
      "assert fams['pgsidecar_queries'].type == 'counter', fams['pgsidecar_queries'].type\n"
      "s = [x for x in fams['pgsidecar_queries'].samples if x.name == 'pgsidecar_queries_total']\n"
      "assert s[0].labels == {'target': 'replica1'} and s[0].value == 100, s\n"
      "h = fams['pgsidecar_query_duration_seconds']\n"
      "assert h.type == 'histogram'\n"
      "inf = [x for x in h.samples if x.name.endswith('_bucket') and x.labels['le'] == '+Inf']\n"
      "assert inf[0].value == 100, inf\n"
      "p = fams['pgsidecar_pinned_clients'].samples[0]\n"
      "assert p.labels['reason'] == 'quote\" back\\\\ nl\\n end', repr(p.labels)\n"
      "print(len(fams))\n";
  char path[] = "/tmp/pgs_obs_parseXXXXXX.py";
  const int fd = mkstemps(path, 3);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, script.data(), script.size()), static_cast<ssize_t>(script.size()));
  close(fd);
  const CommandResult r = run_with_stdin(std::string(PGS_SYSTEM_PYTHON) + " " + path, sample_exposition());
  std::remove(path);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(std::stoul(r.output), kMetricCount);
}

TEST(MetricRows, OneRowPerSeriesAndTwoPerHistogram) {
  MetricDataFill f;
  f.observe(MetricId::transaction_duration_seconds, {"primary"}, 0.5);
  f.observe(MetricId::transaction_duration_seconds, {"primary"}, 1000.0);  // above every bound: +Inf
  f.counter(MetricId::slow_queries_total, {}, 2);
  const auto rows = metric_rows(f.data, f.reg.labels());
  bool saw_count = false, saw_sum = false, saw_slow = false;
  for (const MetricRow& r : rows) {
    if (r.name == "pgsidecar_transaction_duration_seconds_count") {
      saw_count = true;
      EXPECT_EQ(r.labels, "target=\"primary\"");
      EXPECT_EQ(r.value, "2");
    }
    if (r.name == "pgsidecar_transaction_duration_seconds_sum") {
      saw_sum = true;
      EXPECT_EQ(r.value, "1000.5");
    }
    if (r.name == "pgsidecar_slow_queries_total") {
      saw_slow = true;
      EXPECT_EQ(r.value, "2");
    }
  }
  EXPECT_TRUE(saw_count);
  EXPECT_TRUE(saw_sum);
  EXPECT_TRUE(saw_slow);
}

}  // namespace
}  // namespace pgs::obs
