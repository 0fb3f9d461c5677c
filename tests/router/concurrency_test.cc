// classify(), fingerprint() and normalize() from 4 threads at once: libpg_query keeps its state per
// thread, and the router has no shared mutable state. Each thread checks every answer against the one
// computed single-threaded, so a data race that corrupts results fails the test (and TSan sees it).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "router/classifier_cache.h"
#include "router/fingerprint.h"

namespace pgs::router {
namespace {

const std::vector<std::string>& corpus() {
  static const std::vector<std::string> c = {
      "SELECT * FROM a JOIN b ON a.id = b.id WHERE a.x = 1",
      "WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM x",
      "INSERT INTO s.t VALUES (1, 'two')",
      "SELECT nextval('s')",
      "SET search_path = app, public",
      "SELEC broken",
      "SELECT pg_advisory_lock(7); LISTEN ch",
      "EXPLAIN ANALYZE DELETE FROM t",
      "/* pgsidecar: replica */ SELECT * FROM r FOR SHARE",
      "BEGIN READ ONLY",
  };
  return c;
}

struct Expected {
  Kind kind;
  bool read_only;
  size_t tables;
  size_t changes;
  uint64_t fp;
  std::string normalized;
};

Expected expected_for(const std::string& sql) {
  Classification c = classify(sql);
  return Expected{c.kind, c.read_only, c.tables_read.size() + c.tables_written.size(), c.session_changes.size(),
                  fingerprint(sql).value, normalize(sql)};
}

TEST(Concurrency, FourThreadsClassifyAtOnce) {
  std::vector<Expected> expected;
  for (const auto& sql : corpus()) expected.push_back(expected_for(sql));

  std::atomic<int> mismatches{0};
  std::atomic<int> ready{0};
  auto work = [&](int seed) {
    ClassifierCache cache(4);  // smaller than the corpus: hits, misses and evictions all happen
    ready.fetch_add(1);
    while (ready.load() < 4) std::this_thread::yield();  // start together
    for (int round = 0; round < 300; ++round) {
      size_t i = static_cast<size_t>(seed + round) % corpus().size();
      const std::string& sql = corpus()[i];
      Classification c = classify(sql);
      auto cached = cache.classify(sql);
      const Expected& e = expected[i];
      bool ok = c.kind == e.kind && c.read_only == e.read_only &&
                c.tables_read.size() + c.tables_written.size() == e.tables &&
                c.session_changes.size() == e.changes && cached->kind == e.kind &&
                cached->read_only == e.read_only;
      if (round % 10 == 0) ok = ok && fingerprint(sql).value == e.fp && normalize(sql) == e.normalized;
      if (!ok) mismatches.fetch_add(1);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(work, t * 3);
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace pgs::router
