// Issue 12 item 1 under faults, end to end: the Redis under the stream's leader freezes or dies, and the
// walsender itself falls behind the primary's WAL. In both, no client sees an error or a stale row (the
// cache goes off: every lookup a miss), the metrics say so, and a write made straight to the primary
// meanwhile is seen once the cache is back on. Real pgsidecar processes, the dev primary, and a private
// redis-server (frozen with SIGSTOP, killed with SIGKILL) or the dev Redis (a key prefix per test).
#include <gtest/gtest.h>
#include <sys/types.h>

#include <csignal>

#include "tests/cache/redis_env.h"
#include "tests/cache_proxy/cache_stream_fixture.h"

namespace pgs::it::cache_proxy {
namespace {

class CacheStreamRedisTest : public CacheStreamTest {
 protected:
  void SetUp() override {
    CacheStreamTest::SetUp();
    if (IsSkipped()) return;
    ASSERT_TRUE(redis_.running()) << redis_.log_tail();
    redis_port_ = redis_.port();
  }
  // The leader's Redis is gone (frozen or dead): a direct write is read back at once, from Postgres
  // (every lookup a miss, no error), and the sidecar shows it neither leads nor is live.
  void expect_off_without_redis(Proxy& p, Pg& c, const std::string& v) {
    ASSERT_NO_FATAL_FAILURE(write_directly(v));
    const long before = statement_calls(table_);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(c.scalar(select_sql()), v) << "read " << i << " without Redis";
    EXPECT_EQ(statement_calls(table_) - before, 5) << "every read without Redis reaches Postgres";
    EXPECT_TRUE(wait_until([&] {
      return metric(p, "pgsidecar_cache_stream_live") == 0 && metric(p, "pgsidecar_cache_stream_leader") == 0;
    }, Millis(5000), Millis(20)))
        << p.log_tail();
    EXPECT_EQ(c.scalar(select_sql()), v);
  }
  // Redis is back: the sidecar leads again (a new leadership), is live, serves `v` (never the row cached
  // before) and caches it again.
  void expect_back(Proxy& p, Pg& c, const std::string& v, double leaderships_before) {
    ASSERT_TRUE(wait_live(p, Millis(10000))) << p.log_tail();
    EXPECT_EQ(metric(p, "pgsidecar_cache_stream_leader"), 1) << p.log_tail();
    EXPECT_GT(metric(p, "pgsidecar_cache_stream_leaderships_total"), leaderships_before);
    EXPECT_EQ(c.scalar(select_sql()), v);
    EXPECT_TRUE(wait_cached(c, v)) << "not cached again";
  }

  pgs::test::PrivateRedis redis_;
};

// Frozen (SIGSTOP: the cached entries survive in it), then killed (SIGKILL) and started again empty.
TEST_F(CacheStreamRedisTest, RedisGoingAwayUnderTheLeaderTurnsTheCacheOffAndADirectWriteMeanwhileIsSeenAfter) {
  Proxy& p = start_sidecar();
  ASSERT_TRUE(wait_live(p)) << p.log_tail();
  ASSERT_EQ(metric(p, "pgsidecar_cache_stream_leader"), 1);
  Pg c{p.spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_TRUE(wait_cached(c, "v1")) << "not cached";
  const double errors = metric(p, "pgsidecar_cache_stream_errors_total");

  double leaderships = metric(p, "pgsidecar_cache_stream_leaderships_total");
  redis_.stop_process();
  ASSERT_NO_FATAL_FAILURE(expect_off_without_redis(p, c, "while frozen"));
  EXPECT_GT(metric(p, "pgsidecar_cache_stream_errors_total"), errors);
  redis_.continue_process();
  // "v1" is still stored under the generations it was read with: only the new leadership's first bump
  // (every table: what happened unwatched is unknown) keeps it from being served.
  ASSERT_NO_FATAL_FAILURE(expect_back(p, c, "while frozen", leaderships));

  leaderships = metric(p, "pgsidecar_cache_stream_leaderships_total");
  redis_.kill_server();
  ASSERT_NO_FATAL_FAILURE(expect_off_without_redis(p, c, "while dead"));
  ASSERT_TRUE(redis_.start()) << redis_.log_tail();
  ASSERT_NO_FATAL_FAILURE(expect_back(p, c, "while dead", leaderships));
}

// The walsender stops (SIGSTOP on its backend): it sends nothing more, so the positions it reported look
// current, while the primary's WAL moves on by more than stream_max_lag_bytes. The leader reads the
// primary's own position once a round: the cache goes off, and the direct write is read from Postgres.
TEST_F(CacheStreamTest, AStreamBehindThePrimarysWalTurnsTheCacheOff) {
  more_toml_ = "stream_max_lag_bytes = \"1MB\"\n";
  Proxy& p = start_sidecar();
  ASSERT_TRUE(wait_live(p)) << p.log_tail();
  Pg c{p.spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_TRUE(wait_cached(c, "v1")) << "not cached";
  Pg su = superuser(kDatabase);
  ASSERT_TRUE(su.ok()) << su.error();
  const pid_t walsender = static_cast<pid_t>(std::stol(su.scalar(
      "SELECT active_pid FROM pg_replication_slots WHERE slot_name LIKE '" + slot_ + "%' AND active_pid IS NOT NULL")));
  struct Resume {
    pid_t pid;
    ~Resume() { ::kill(pid, SIGCONT); }
  } resume{walsender};
  ASSERT_EQ(::kill(walsender, SIGSTOP), 0);
  ASSERT_NO_FATAL_FAILURE(write_directly("behind"));
  // About 5 MB of WAL (8000 rows of 500 bytes), far past the 1 MB limit.
  su.must("INSERT INTO public." + table_ + "_direct SELECT g, repeat('x', 500) FROM generate_series(100, 8099) g");
  EXPECT_EQ(wait_value(c, "behind", Millis(3000)), "behind") << "served stale while the walsender was stopped";
  EXPECT_EQ(metric(p, "pgsidecar_cache_stream_live"), 0);
  EXPECT_GE(metric(p, "pgsidecar_cache_stream_lag_bytes"), 1 << 20);
  ASSERT_EQ(::kill(walsender, SIGCONT), 0);
  ASSERT_TRUE(wait_live(p, Millis(10000))) << p.log_tail();  // caught up: within the limit again
  EXPECT_EQ(c.scalar(select_sql()), "behind");
  EXPECT_TRUE(wait_cached(c, "behind")) << "not cached again";
}

// Commits straight to the primary (a batch job, a backfill in small transactions) arrive faster than
// one read of the leader's socket a batch window: libpq reads 16 kB or so at a time, which at one read
// per 10-50 ms window drains a few hundred kB to 1.6 MB a second. The leader must read all its socket
// holds each round; otherwise it falls behind, its lag stays under the 1 GB default limit, the cache
// stays live, and a write after the load is served stale for as long as the backlog takes (seconds),
// past the stream's bound. Two seconds of single-row commits of 2 kB each (a few MB a second of
// test_decoding text), then the write.
TEST_F(CacheStreamTest, AWriteAfterSustainedCommitsStraightToThePrimaryIsSeenWithinHalfASecond) {
  Proxy& p = start_sidecar();
  ASSERT_TRUE(wait_live(p)) << p.log_tail();
  Pg c{p.spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_TRUE(wait_cached(c, "v1")) << "not cached";
  Pg su = superuser(kDatabase);
  ASSERT_TRUE(su.ok()) << su.error();
  int commits = 0;
  for (auto until = std::chrono::steady_clock::now() + Millis(2000); std::chrono::steady_clock::now() < until;) {
    su.must("INSERT INTO public." + table_ + "_direct VALUES (" + std::to_string(100 + commits) + ", repeat('x', 2000))");
    ++commits;
  }
  ASSERT_NO_FATAL_FAILURE(write_directly("after-the-load"));
  EXPECT_EQ(wait_value(c, "after-the-load", Millis(500)), "after-the-load")
      << "served stale after " << commits << " commits straight to the primary";
  EXPECT_EQ(metric(p, "pgsidecar_cache_stream_live"), 1) << "the stream is within its lag limit";
}

}  // namespace
}  // namespace pgs::it::cache_proxy
