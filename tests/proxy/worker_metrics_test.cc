// WorkerMetrics::merge adds every field: the process's totals (SHOW, /metrics) are the workers' copies
// merged, so a field merge() forgets reads as the first worker's alone.
#include <gtest/gtest.h>

#include "proxy/core/stats.h"

namespace pgs::proxy {
namespace {

// Every field set, each to its own value (the size check below flags a field added since).
WorkerMetrics filled() {
  WorkerMetrics m;
  uint64_t v = 1;
  m.clients_accepted = v++;
  for (auto& x : m.login_failures) x = v++;
  for (auto& x : m.protocol_errors) x = v++;
  m.server_connects = v++;
  m.server_connect_failures = v++;
  m.servers_failed_check = v++;
  m.cancels_forwarded = v++;
  m.session_probes = v++;
  m.replica_retries = v++;
  for (auto& x : m.lsn_probes) x = v++;
  for (auto& x : m.pinned_clients) x = static_cast<int64_t>(v++);
  for (auto& h : m.query_duration) h.observe(0.001 * static_cast<double>(v++));
  for (auto& h : m.transaction_duration) h.observe(0.002 * static_cast<double>(v++));
  for (auto& x : m.queries_by_target) x = v++;
  m.errors_by_class["23"] = v++;
  m.errors_by_class["40"] = v++;
  for (auto& row : m.routing_decisions) {
    for (auto& x : row) x = v++;
  }
  m.classified_hits = v++;
  m.classified_shape_hits = v++;
  m.classified_parsed = v++;
  m.auth_query.cache_hits = v++;
  m.auth_query.joined = v++;
  m.auth_query.refused = v++;
  m.auth_query.found = v++;
  m.auth_query.unknown = v++;
  m.auth_query.failed = v++;
  m.auth_query_cached = v++;
  m.cache.workers_enabled = 1;
  m.cache.workers_ready = 1;
  CacheClassStats& c = m.cache.classes["hot"];
  c.hits = v++;
  c.misses = v++;
  c.stores = v++;
  c.not_stored = v++;
  c.invalidations = v++;
  c.evictions = v++;
  c.replica_behind = v++;
  for (auto& x : m.cache.bypass) x = v++;
  m.cache.redis_errors = v++;
  m.cache.redis_commands = v++;
  m.cache.corrupt = v++;
  m.cache.waits = v++;
  m.cache.wait_fallthroughs = v++;
  m.cache.bumps = v++;
  m.bytes_received = v++;
  m.bytes_sent = v++;
  return m;
}

TEST(WorkerMetrics, MergeAddsEveryField) {
  // A field added to WorkerMetrics or CacheStats changes these sizes: add it to merge() and to
  // filled() and the checks below, then update the sizes (Debian 12, x86-64, libstdc++ 12).
  static_assert(sizeof(WorkerMetrics) == 1968, "WorkerMetrics changed: see this test");
  static_assert(sizeof(CacheStats) == 232, "CacheStats changed: see this test");
  const WorkerMetrics one = filled();
  WorkerMetrics sum;
  sum.merge(one);
  sum.merge(one);
  EXPECT_EQ(sum.clients_accepted, 2 * one.clients_accepted);
  for (size_t i = 0; i < one.login_failures.size(); ++i) EXPECT_EQ(sum.login_failures[i], 2 * one.login_failures[i]);
  for (size_t i = 0; i < one.protocol_errors.size(); ++i) EXPECT_EQ(sum.protocol_errors[i], 2 * one.protocol_errors[i]);
  EXPECT_EQ(sum.server_connects, 2 * one.server_connects);
  EXPECT_EQ(sum.server_connect_failures, 2 * one.server_connect_failures);
  EXPECT_EQ(sum.servers_failed_check, 2 * one.servers_failed_check);
  EXPECT_EQ(sum.cancels_forwarded, 2 * one.cancels_forwarded);
  EXPECT_EQ(sum.session_probes, 2 * one.session_probes);
  EXPECT_EQ(sum.auth_query.cache_hits, 2 * one.auth_query.cache_hits);
  EXPECT_EQ(sum.auth_query.joined, 2 * one.auth_query.joined);
  EXPECT_EQ(sum.auth_query.refused, 2 * one.auth_query.refused);
  EXPECT_EQ(sum.auth_query.found, 2 * one.auth_query.found);
  EXPECT_EQ(sum.auth_query.unknown, 2 * one.auth_query.unknown);
  EXPECT_EQ(sum.auth_query.failed, 2 * one.auth_query.failed);
  EXPECT_EQ(sum.auth_query_cached, 2 * one.auth_query_cached);
  EXPECT_EQ(sum.replica_retries, 2 * one.replica_retries);
  for (size_t i = 0; i < one.lsn_probes.size(); ++i) EXPECT_EQ(sum.lsn_probes[i], 2 * one.lsn_probes[i]);
  for (size_t i = 0; i < one.pinned_clients.size(); ++i) EXPECT_EQ(sum.pinned_clients[i], 2 * one.pinned_clients[i]);
  for (size_t t = 0; t < one.query_duration.size(); ++t) {
    EXPECT_EQ(sum.query_duration[t].count, 2 * one.query_duration[t].count);
    EXPECT_DOUBLE_EQ(sum.query_duration[t].sum, 2 * one.query_duration[t].sum);
    EXPECT_EQ(sum.transaction_duration[t].count, 2 * one.transaction_duration[t].count);
    EXPECT_EQ(sum.queries_by_target[t], 2 * one.queries_by_target[t]);
  }
  EXPECT_EQ(sum.errors_by_class.at("23"), 2 * one.errors_by_class.at("23"));
  EXPECT_EQ(sum.errors_by_class.at("40"), 2 * one.errors_by_class.at("40"));
  for (size_t r = 0; r < one.routing_decisions.size(); ++r) {
    for (size_t i = 0; i < one.routing_decisions[r].size(); ++i) {
      EXPECT_EQ(sum.routing_decisions[r][i], 2 * one.routing_decisions[r][i]);
    }
  }
  EXPECT_EQ(sum.classified_hits, 2 * one.classified_hits);
  EXPECT_EQ(sum.classified_shape_hits, 2 * one.classified_shape_hits);
  EXPECT_EQ(sum.classified_parsed, 2 * one.classified_parsed);
  EXPECT_EQ(sum.cache.workers_enabled, 2);
  EXPECT_EQ(sum.cache.workers_ready, 2);
  const CacheClassStats& c = sum.cache.classes.at("hot");
  const CacheClassStats& c1 = one.cache.classes.at("hot");
  EXPECT_EQ(c.hits, 2 * c1.hits);
  EXPECT_EQ(c.misses, 2 * c1.misses);
  EXPECT_EQ(c.stores, 2 * c1.stores);
  EXPECT_EQ(c.not_stored, 2 * c1.not_stored);
  EXPECT_EQ(c.invalidations, 2 * c1.invalidations);
  EXPECT_EQ(c.evictions, 2 * c1.evictions);
  EXPECT_EQ(c.replica_behind, 2 * c1.replica_behind);
  for (size_t i = 0; i < one.cache.bypass.size(); ++i) EXPECT_EQ(sum.cache.bypass[i], 2 * one.cache.bypass[i]);
  EXPECT_EQ(sum.cache.redis_errors, 2 * one.cache.redis_errors);
  EXPECT_EQ(sum.cache.redis_commands, 2 * one.cache.redis_commands);
  EXPECT_EQ(sum.cache.corrupt, 2 * one.cache.corrupt);
  EXPECT_EQ(sum.cache.waits, 2 * one.cache.waits);
  EXPECT_EQ(sum.cache.wait_fallthroughs, 2 * one.cache.wait_fallthroughs);
  EXPECT_EQ(sum.cache.bumps, 2 * one.cache.bumps);
  EXPECT_EQ(sum.bytes_received, 2 * one.bytes_received);
  EXPECT_EQ(sum.bytes_sent, 2 * one.bytes_sent);
}

}  // namespace
}  // namespace pgs::proxy
