// Issue 12 item 1 end to end: invalidation from the primary's own write stream. A write that passes
// through no sidecar (psql straight to the primary) reaches every sidecar's cache through the leader's
// logical replication slot; one sidecar leads at a time and another takes over when it dies; without a
// leader's heartbeat every lookup misses. Real pgsidecar processes, the dev primary (wal_level = logical)
// and the dev Redis (a key prefix per test). Each test's slots have their own names and are dropped after.
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include "cache/key.h"
#include "tests/cache/redis_env.h"
#include "tests/cache_proxy/cache_stream_fixture.h"
#include "tests/cache_proxy/cache_util.h"
#include "tests/session/session_util.h"

namespace pgs::it::cache_proxy {
namespace {

// The write goes straight to the primary, past every sidecar; the cached row is served from Redis until
// the stream's bump reaches the sidecar, which is within a second.
TEST_F(CacheStreamTest, AWriteStraightToThePrimaryIsSeenThroughTheCacheWithinASecond) {
  Proxy& p = start_sidecar();
  ASSERT_TRUE(wait_live(p)) << p.log_tail();
  Pg c{p.spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c.scalar(select_sql()), "v1");
  long before = statement_calls(table_);
  EXPECT_EQ(c.scalar(select_sql()), "v1");
  EXPECT_EQ(statement_calls(table_), before) << "the second read should be a hit";
  for (int i = 0; i < 3; ++i) {
    std::string v = "direct" + std::to_string(i);
    ASSERT_NO_FATAL_FAILURE(write_directly(v));
    EXPECT_EQ(wait_value(c, v, Millis(1000)), v) << "a write behind the proxy's back stayed cached";
    EXPECT_EQ(c.scalar(select_sql()), v);  // and is cached again
  }
  EXPECT_GE(metric(p, "pgsidecar_cache_stream_transactions_total"), 3);
  EXPECT_EQ(metric(p, "pgsidecar_cache_stream_leader"), 1);
}

// Over TLS (the suite's default to the dev nodes) the walsender sends every decoded change as a record of
// its own, and the leader reads ahead: one read of the socket takes many records, and those past the
// first wait in OpenSSL's buffer, where a poll() of the socket cannot see them. A burst of transactions
// straight to the primary, committed while the leader waits out its batch window, reaches it as one
// socketful; every record of it must be decoded in the rounds that follow at once, not one per later
// round (600 records would take minutes).
TEST_F(CacheStreamTest, ABurstOfWritesStraightToThePrimaryIsSeenWithinTheBoundOverTls) {
  Proxy& p = start_sidecar();
  ASSERT_TRUE(wait_live(p)) << p.log_tail();
  Pg su = superuser(kDatabase);
  ASSERT_TRUE(su.ok()) << su.error();
  const std::string over_tls = su.scalar(
      "SELECT bool_and(s.ssl) FROM pg_catalog.pg_replication_slots r JOIN pg_catalog.pg_stat_ssl s ON s.pid = r.active_pid "
      "WHERE r.slot_name LIKE '" + slot_ + "%'");
  if (over_tls != "t") GTEST_SKIP() << "the stream is not over TLS here (no dev CA?): " << over_tls;
  Pg c{p.spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c.scalar(select_sql()), "v1");
  ASSERT_TRUE(wait_cached(c, "v1"));
  // Seen: the leader has just bumped it and waits out its batch window while the burst commits.
  ASSERT_NO_FATAL_FAILURE(write_directly("primed"));
  ASSERT_EQ(wait_value(c, "primed", Millis(3000)), "primed");
  const double before = metric(p, "pgsidecar_cache_stream_transactions_total");
  constexpr int kBurst = 200;  // transactions of one simple Query: BEGIN; UPDATE; COMMIT; each
  std::string burst;
  for (int i = 0; i < kBurst; ++i) {
    burst += "BEGIN; UPDATE public." + table_ + "_direct SET v = 'burst" + std::to_string(i) + "' WHERE id = 1; COMMIT; ";
  }
  burst += "UPDATE public." + table_ + " SET v = 'after-the-burst' WHERE id = 1";
  su.must(burst);
  EXPECT_EQ(wait_value(c, "after-the-burst", Millis(3000)), "after-the-burst")
      << "the last write of a burst stayed cached";
  EXPECT_TRUE(wait_until([&] { return metric(p, "pgsidecar_cache_stream_transactions_total") - before >= kBurst + 1; },
                         Millis(3000), Millis(20)))
      << "the stream counted " << metric(p, "pgsidecar_cache_stream_transactions_total") - before << " transactions";
}

// "(commits that invalidated)" of SHOW CACHE: the COMMITs whose bump this sidecar sent to Redis.
long commits_that_bumped(const Proxy& p) {
  Pg admin{p.spec(kAdminUser, kAdminPassword, "pgsidecar")};
  PgResult show = admin.exec("SHOW CACHE");
  for (int r = 0; show.ok() && r < show.rows(); ++r) {
    if (show.value(r, 0) == "(commits that invalidated)") return std::stol(show.value(r, 8));
  }
  ADD_FAILURE() << "SHOW CACHE has no '(commits that invalidated)' row: " << show.error();
  return -1;
}

// With the stream on, a COMMIT bumps only the tables a class names: a table no class names is never
// cached by this sidecar, so the commit neither waits for Redis nor publishes to every sidecar. A
// sidecar whose classes do name it (a fleet configured otherwise) still sees the write within the
// stream's bound, as it does a write made straight to the primary.
TEST_F(CacheStreamTest, AWriteToATableNoClassNamesIsLeftToTheStream) {
  const std::string other = table_ + "_other";
  create_table(other);
  Proxy& a = start_sidecar();  // its classes: table_ and table_ + "_direct"
  ProxyOptions with_other = options("1s", {"o:10m:public." + other});
  proxies_.push_back(Proxy::start(with_other));
  Proxy& b = *proxies_.back();
  ASSERT_TRUE(wait_catalog_read(b)) << b.log_tail();
  ASSERT_TRUE(wait_live(a)) << a.log_tail();
  ASSERT_TRUE(wait_live(b)) << b.log_tail();
  Pg through_a{a.spec()}, through_b{b.spec()};
  ASSERT_TRUE(through_a.ok()) << through_a.error();
  ASSERT_TRUE(through_b.ok()) << through_b.error();
  const std::string read_other = "SELECT v FROM public." + other + " WHERE id = 1";
  EXPECT_EQ(through_b.scalar(read_other), "v1");
  long before = statement_calls(other);
  EXPECT_EQ(through_b.scalar(read_other), "v1");
  EXPECT_EQ(statement_calls(other), before) << "sidecar B caches the table its classes name";

  long bumped = commits_that_bumped(a);
  through_a.must("UPDATE public." + other + " SET v = 'through-a' WHERE id = 1");
  std::string seen;
  EXPECT_TRUE(wait_until([&] { return (seen = through_b.scalar(read_other)) == "through-a"; }, Millis(1000),
                         Millis(10)))
      << "sidecar B still serves the old row: " << seen;

  // The worker's counts reach SHOW CACHE in the order they were made: once the second commit's bump
  // shows, the first one's would have too.
  through_a.must("UPDATE public." + table_ + " SET v = 'named' WHERE id = 1");
  EXPECT_TRUE(wait_until([&] { return commits_that_bumped(a) > bumped; }, Millis(5000), Millis(20)))
      << "a table a class names is bumped at COMMIT";
  EXPECT_EQ(commits_that_bumped(a), bumped + 1) << "a commit bumped a table no class of sidecar A names";
  drop_table(other);
}

// Issue 12 item 3, the case a fence in Redis cannot close: the writer's sidecar cannot reach Redis at all
// (its bump is refused at once) while the others can. The client still hears its COMMIT; the other
// sidecars stop serving the old row within the stream's bound, because the leader (which reaches Redis,
// or it could not hold the lease) bumps every committed write. With the stream off this read stays
// stale until the TTL.
TEST_F(CacheStreamTest, AWriterCutOffFromRedisIsInvalidatedByTheStream) {
  Proxy& reader = start_sidecar();
  ASSERT_TRUE(wait_live(reader)) << reader.log_tail();
  ProxyOptions cut_off = options();
  const std::string live_port = "redis_port = " + std::to_string(kRedisPort);
  const size_t at = cut_off.cache_toml.find(live_port);
  ASSERT_NE(at, std::string::npos) << cut_off.cache_toml;
  cut_off.cache_toml.replace(at, live_port.size(), "redis_port = " + std::to_string(free_port()));
  proxies_.push_back(Proxy::start(cut_off));
  Proxy& writer = *proxies_.back();
  Pg r{reader.spec()}, w{writer.spec()};
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_TRUE(w.ok()) << w.error();
  EXPECT_EQ(r.scalar(select_sql()), "v1");
  long before = statement_calls(table_);
  EXPECT_EQ(r.scalar(select_sql()), "v1");
  EXPECT_EQ(statement_calls(table_), before) << "the reader's second read should be a hit";
  w.must("UPDATE public." + table_ + " SET v = 'cut-off' WHERE id = 1");  // COMMIT heard, bump refused
  EXPECT_EQ(wait_value(r, "cut-off", Millis(1000)), "cut-off") << "the reader serves the old row";
}

// DDL is not in the logical stream: a table dropped and created again (empty) behind the proxy's back,
// or given a new column, must not be answered from the cache either.
TEST_F(CacheStreamTest, ATableCreatedAgainOrAlteredBehindTheProxyIsNotServedFromTheCache) {
  Proxy& p = start_sidecar();
  ASSERT_TRUE(wait_live(p)) << p.log_tail();
  Pg c{p.spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  const std::string count_sql = "SELECT count(*) FROM public." + table_;
  EXPECT_EQ(c.scalar(count_sql), "10");
  EXPECT_EQ(c.scalar(count_sql), "10");  // cached
  {
    Pg su = superuser(kDatabase);
    ASSERT_TRUE(su.ok()) << su.error();
    su.must("DROP TABLE public." + table_);
    su.must("CREATE TABLE public." + table_ + " (id int PRIMARY KEY, v text)");
    su.must("ALTER TABLE public." + table_ + " OWNER TO " + std::string(kUser));
  }
  std::string seen;
  EXPECT_TRUE(wait_until([&] { return (seen = c.scalar(count_sql)) == "0"; }, Millis(1000), Millis(10)))
      << "the dropped table's count is still served: " << seen;
  const std::string star_sql = "SELECT * FROM public." + table_ + " LIMIT 0";
  EXPECT_EQ(c.exec(star_sql).columns(), 2);
  EXPECT_EQ(c.exec(star_sql).columns(), 2);  // cached
  {
    Pg su = superuser(kDatabase);
    su.must("ALTER TABLE public." + table_ + " ADD COLUMN w int");
  }
  int columns = 0;
  EXPECT_TRUE(wait_until([&] { return (columns = c.exec(star_sql).columns()) == 3; }, Millis(1000), Millis(10)))
      << "SELECT * still has " << columns << " columns after ADD COLUMN";
}

// With a replica, reads are answered there, and a result is stored only once the replica replayed past
// every bump of its tables (no stale store). The stream's own bumps (the first one of a slot, DDL read from
// the catalog) carry the primary's WAL position too, so such reads are cached, not skipped forever.
TEST_F(CacheStreamTest, ReadsAnsweredByAReplicaAreCachedWithTheStreamOn) {
  ProxyOptions o = options();
  o.with_replica = true;
  proxies_.push_back(Proxy::start(o));
  Proxy& p = *proxies_.back();
  ASSERT_TRUE(wait_catalog_read(p));
  ASSERT_TRUE(wait_live(p)) << p.log_tail();
  // Until the monitor's first round says the replica is healthy, reads go to the primary.
  ASSERT_TRUE(wait_until([&] { return metric_sum(scrape_metrics(p), "pgsidecar_replica_healthy", "") >= 1; },
                         Millis(10000), Millis(20)))
      << p.log_tail();
  Pg c{p.spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  auto hits = [&] {
    return metric_value(scrape_metrics(p), "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\"");
  };
  EXPECT_TRUE(wait_until([&] {
    (void)c.scalar(select_sql());
    return hits() >= 1;
  }, Millis(5000), Millis(20)))
      << "no read was ever stored; replica_behind: "
      << metric_value(scrape_metrics(p), "pgsidecar_cache_stores_total", "class=\"t\",result=\"replica_behind\"");
  EXPECT_GE(metric_value(scrape_metrics(p), "pgsidecar_routing_decisions_total", "target=\"replica\",reason=\"read_only\""),
            1)
      << "the reads did not go to the replica";
}

// Two sidecars: one leads. Killed, the other takes over within the lease (1 s) and the next write behind
// their backs is seen through it.
TEST_F(CacheStreamTest, WhenTheLeaderDiesAnotherSidecarTakesOver) {
  auto [leader_of_two, other_of_two] = start_two_sidecars();
  ASSERT_NE(leader_of_two, nullptr);
  Proxy& leader = *leader_of_two;
  Proxy& other = *other_of_two;
  Pg c{other.spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c.scalar(select_sql()), "v1");
  ASSERT_EQ(::kill(leader.pid(), SIGKILL), 0);
  ASSERT_TRUE(leader.wait_exit(Millis(5000)));
  EXPECT_TRUE(wait_until([&] { return metric(other, "pgsidecar_cache_stream_leader") == 1; }, Millis(5000),
                         Millis(20)))
      << other.log_tail();
  ASSERT_TRUE(wait_live(other, Millis(5000))) << other.log_tail();
  ASSERT_NO_FATAL_FAILURE(write_directly("after takeover"));
  EXPECT_EQ(wait_value(c, "after takeover", Millis(1000)), "after takeover");
}

// The bound of a takeover. The leader is killed just after it renewed its heartbeat (when it is trusted
// longest) and a write straight to the primary follows at once: nobody streams it until a follower
// leads. The follower must stop serving the cached old row when that heartbeat expires (stream_max_delay,
// 1 s here, after it was issued), not at its next look at Redis after that: a follower polls each
// quarter of stream_max_delay, so trusting a heartbeat until the next poll stretched the window by up
// to 250 ms. Three takeovers, each to a follower started afresh.
TEST_F(CacheStreamTest, AWriteWhileTheLeaderIsDeadIsServedStaleUntilItsLastHeartbeatExpires) {
  Proxy* leader = &start_sidecar();
  ASSERT_TRUE(wait_live(*leader)) << leader->log_tail();
  const std::string beat = cache::RedisNames(prefix_).stream_key("stream:beat");
  auto beat_pttl = [&] {
    RunResult r = run_program({"redis-cli", "-p", std::to_string(redis_port_), "PTTL", beat}, {}, Millis(5000));
    try {
      return std::stol(r.out);
    } catch (const std::exception&) {
      return -3L;
    }
  };
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("takeover " + std::to_string(round));
    // The follower starts (and first polls) about 150 ms into one of the leader's 250 ms rounds, so its
    // polls fall well after each renewal: a follower that trusts a heartbeat until its next poll then
    // serves the old row for that long past the heartbeat's expiry.
    ASSERT_TRUE(wait_until([&] { return beat_pttl() >= 900; }, Millis(5000), Millis(1))) << "no fresh heartbeat";
    ASSERT_TRUE(wait_until([&] { return beat_pttl() <= 850; }, Millis(5000), Millis(1)));
    Proxy& follower = start_sidecar();
    ASSERT_TRUE(wait_live(follower)) << follower.log_tail();
    ASSERT_EQ(metric(follower, "pgsidecar_cache_stream_leader"), 0);
    Pg c{follower.spec()};
    ASSERT_TRUE(c.ok()) << c.error();
    const std::string before = round == 0 ? "v1" : "while leaderless " + std::to_string(round - 1);
    ASSERT_TRUE(wait_cached(c, before)) << "the row was not cached";
    // Heartbeats of 1 s renewed each 250 ms: one just renewed has at least 900 ms left. It expires by
    // `beat_expires` at the latest (PTTL was read at some instant before `asked_by`).
    long pttl = -3;
    auto asked_by = std::chrono::steady_clock::now();
    ASSERT_TRUE(wait_until([&] {
      pttl = beat_pttl();
      asked_by = std::chrono::steady_clock::now();
      return pttl >= 900;
    }, Millis(5000), Millis(1))) << "no fresh heartbeat";
    ASSERT_EQ(::kill(leader->pid(), SIGKILL), 0);
    const auto beat_expires = asked_by + Millis(pttl);
    const std::string after = "while leaderless " + std::to_string(round);
    ASSERT_NO_FATAL_FAILURE(write_directly(after));
    const auto committed = std::chrono::steady_clock::now();
    EXPECT_EQ(wait_value(c, after, Millis(3000)), after);
    const auto fresh_at = std::chrono::steady_clock::now();
    const long stale_for = std::chrono::duration_cast<Millis>(fresh_at - committed).count();
    const long past_expiry = std::chrono::duration_cast<Millis>(fresh_at - beat_expires).count();
    // Reads polled each 10 ms (from the primary once the cache is off; a busy CI machine may take tens of
    // ms for one): 100 ms of slack on both bounds. The old code served the row 175-186 ms past expiry.
    EXPECT_LE(stale_for, 1000 + 100) << "the cache served the old row " << stale_for << " ms after the commit";
    EXPECT_LE(past_expiry, 100) << "the old row was served " << past_expiry << " ms after the heartbeat expired";
    ASSERT_TRUE(leader->wait_exit(Millis(5000)));
    ASSERT_TRUE(wait_until([&] { return metric(follower, "pgsidecar_cache_stream_leader") == 1; }, Millis(5000),
                           Millis(20)))
        << follower.log_tail();
    ASSERT_TRUE(wait_live(follower)) << follower.log_tail();
    leader = &follower;
  }
}

// A leader that freezes without dying (SIGSTOP: a stuck process or VM) keeps its walsender on the slot.
// Once its lease lapsed the other sidecar leads, ends that walsender, takes the slot over and the next
// write behind their backs is seen; the frozen one, resumed, finds its lease gone and follows.
TEST_F(CacheStreamTest, AFrozenLeaderIsReplacedAndItsSlotTakenOver) {
  auto [leader_of_two, other_of_two] = start_two_sidecars();
  ASSERT_NE(leader_of_two, nullptr);
  Proxy& leader = *leader_of_two;
  Proxy& other = *other_of_two;
  Pg c{other.spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c.scalar(select_sql()), "v1");
  ASSERT_EQ(::kill(leader.pid(), SIGSTOP), 0);
  bool took_over = wait_until([&] {
    return metric(other, "pgsidecar_cache_stream_leader") == 1 && metric(other, "pgsidecar_cache_stream_live") == 1;
  }, Millis(10000), Millis(20));
  if (!took_over) ::kill(leader.pid(), SIGCONT);
  ASSERT_TRUE(took_over) << other.log_tail();
  ASSERT_NO_FATAL_FAILURE(write_directly("after a freeze"));
  EXPECT_EQ(wait_value(c, "after a freeze", Millis(1000)), "after a freeze");
  ASSERT_EQ(::kill(leader.pid(), SIGCONT), 0);
  EXPECT_TRUE(wait_until([&] { return metric(leader, "pgsidecar_cache_stream_leader") == 0; }, Millis(5000),
                         Millis(20)))
      << leader.log_tail();
  EXPECT_EQ(metric(other, "pgsidecar_cache_stream_leader"), 1);
  ASSERT_NO_FATAL_FAILURE(write_directly("after the resume"));
  EXPECT_EQ(wait_value(c, "after the resume", Millis(1000)), "after the resume");
}

// The leader is killed while writes behind every sidecar's back keep coming and the other sidecar keeps
// caching: once the other took over, no cached row differs from the primary's — no write was missed
// between the dead leader's last bump and the new leader's first.
TEST_F(CacheStreamTest, ALeaderKilledMidStreamLosesNoWrite) {
  auto [leader_of_two, other_of_two] = start_two_sidecars();
  ASSERT_NE(leader_of_two, nullptr);
  Proxy& leader = *leader_of_two;
  Proxy& other = *other_of_two;
  Pg c{other.spec()};
  Pg su = superuser(kDatabase);
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_TRUE(su.ok()) << su.error();
  auto row_sql = [&](int id) { return "SELECT v FROM public." + table_ + " WHERE id = " + std::to_string(id); };
  constexpr int kRows = 10, kWrites = 300;
  for (int k = 0; k < kWrites; ++k) {
    int id = 1 + k % kRows;
    su.must("UPDATE public." + table_ + " SET v = 'w" + std::to_string(k) + "' WHERE id = " + std::to_string(id));
    (void)c.scalar(row_sql(1 + (k * 7) % kRows));  // keeps rows cached through the other sidecar
    if (k == kWrites / 2) {
      ASSERT_EQ(::kill(leader.pid(), SIGKILL), 0);
      ASSERT_TRUE(leader.wait_exit(Millis(5000)));
    }
  }
  ASSERT_TRUE(wait_until([&] { return metric(other, "pgsidecar_cache_stream_leader") == 1; }, Millis(5000),
                         Millis(20)))
      << other.log_tail();
  ASSERT_TRUE(wait_live(other, Millis(5000))) << other.log_tail();
  for (int id = 1; id <= kRows; ++id) {
    std::string truth = su.scalar(row_sql(id));
    std::string seen;
    EXPECT_TRUE(wait_until([&] { return (seen = c.scalar(row_sql(id))) == truth; }, Millis(1000), Millis(10)))
        << "row " << id << ": the cache answers " << seen << ", the primary " << truth;
  }
}

// Randomized, bounded (PGS_STALENESS_SECONDS, default 20 s): writers through sidecar A and through sidecar
// B bump per-row versions (v = v + 1) of one table, a writer straight to the primary those of another
// table that no sidecar writes (so only the stream can invalidate it); readers through A and B read rows
// of both, which the cache answers. A read must see every version committed through a sidecar before it
// started (the COMMIT's bump is confirmed before the writer hears of it), and every version committed
// directly at least 1.5 s before (the stream's bound, with margin). Zero stale reads, and the cache served.
TEST_F(CacheStreamTest, RandomWritersAndReadersThroughTwoSidecarsNeverReadStale) {
  const int seconds = std::max(5, std::atoi(std::getenv("PGS_STALENESS_SECONDS") != nullptr
                                                 ? std::getenv("PGS_STALENESS_SECONDS")
                                                 : "20"));
  constexpr int kRows = 8;
  {
    Pg su = superuser(kDatabase);
    ASSERT_TRUE(su.ok()) << su.error();
    su.must("UPDATE public." + table_ + " SET v = '0'");
    su.must("UPDATE public." + table_ + "_direct SET v = '0'");
  }
  Proxy& a = start_sidecar();
  Proxy& b = start_sidecar();
  ASSERT_TRUE(wait_live(a)) << a.log_tail();
  ASSERT_TRUE(wait_live(b)) << b.log_tail();
  using Clock = std::chrono::steady_clock;
  std::mutex mu;
  std::vector<long> committed(kRows + 1, 0);                             // through a sidecar, acknowledged
  std::vector<std::vector<std::pair<Clock::time_point, long>>> direct(kRows + 1);  // (acknowledged at, version)
  std::atomic<bool> stop{false};
  std::atomic<long> reads{0}, stale{0}, writes{0}, errors{0};
  std::string first_stale;
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  auto table_of = [&](bool direct_table) { return "public." + table_ + (direct_table ? "_direct" : ""); };
  auto writer = [&](ConnSpec spec, bool through_sidecar, unsigned seed) {
    Pg c{spec};
    if (!c.ok()) {
      ++errors;
      return;
    }
    std::mt19937 rng(seed);
    while (!stop && Clock::now() < deadline) {
      int id = 1 + static_cast<int>(rng() % kRows);
      PgResult r = c.exec("UPDATE " + table_of(!through_sidecar) + " SET v = (v::int + 1)::text WHERE id = " +
                          std::to_string(id) + " RETURNING v::int");
      if (!r.ok() || r.rows() != 1) {
        ++errors;
        continue;
      }
      long v = std::stol(r.value(0, 0));
      ++writes;
      std::lock_guard<std::mutex> lock(mu);
      if (through_sidecar) {
        committed[id] = std::max(committed[id], v);
      } else {
        direct[id].emplace_back(Clock::now(), v);
      }
    }
  };
  auto reader = [&](ConnSpec spec, unsigned seed) {
    Pg c{spec};
    if (!c.ok()) {
      ++errors;
      return;
    }
    std::mt19937 rng(seed);
    while (!stop && Clock::now() < deadline) {
      int id = 1 + static_cast<int>(rng() % kRows);
      const bool direct_table = rng() % 2 == 0;
      long floor = 0;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (direct_table) {
          auto settled = Clock::now() - std::chrono::milliseconds(1500);
          for (const auto& [at, v] : direct[id]) {
            if (at <= settled) floor = std::max(floor, v);
          }
        } else {
          floor = committed[id];
        }
      }
      std::string got = c.scalar("SELECT v FROM " + table_of(direct_table) + " WHERE id = " + std::to_string(id));
      ++reads;
      if (got.empty() || std::stol(got) < floor) {
        if (stale++ == 0) {
          std::lock_guard<std::mutex> lock(mu);
          first_stale = table_of(direct_table) + " row " + std::to_string(id) + " read " + got + " after version " +
                        std::to_string(floor);
        }
      }
    }
  };
  std::vector<std::thread> threads;
  threads.emplace_back(writer, a.spec(), true, 1u);
  threads.emplace_back(writer, b.spec(), true, 2u);
  threads.emplace_back(writer, ConnSpec{}, false, 3u);  // ConnSpec{}: the app role, straight to the primary
  for (unsigned i = 0; i < 2; ++i) {
    threads.emplace_back(reader, a.spec(), 10u + i);
    threads.emplace_back(reader, b.spec(), 20u + i);
  }
  for (auto& th : threads) th.join();
  double hits = 0;
  for (const Proxy* p : {&a, &b}) {
    std::string page = scrape_metrics(*p);
    for (const char* cls : {"t", "d"}) {
      hits += metric_value(page, "pgsidecar_cache_requests_total", std::string("class=\"") + cls + "\",result=\"hit\"");
    }
  }
  RecordProperty("reads", static_cast<int>(reads));
  RecordProperty("writes", static_cast<int>(writes));
  RecordProperty("hits", static_cast<int>(hits));
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(stale, 0) << "stale reads out of " << reads << "; first: " << first_stale;
  EXPECT_GT(writes, 100);
  EXPECT_GT(hits, 100) << "the cache served too little for the test to mean anything (" << reads << " reads)";
}

// Another sidecar holds the lease and gives no heartbeat (stuck, or too far behind): nothing proves the
// cache current, so every lookup misses — the rows come from Postgres every time. Once the lease is free,
// this sidecar leads and the cache serves again.
TEST_F(CacheStreamTest, WithoutALeadersHeartbeatEveryLookupMisses) {
  cache::testing::SyncRedis redis(cache::testing::kDevRedisHost, cache::testing::kDevRedisPort);
  ASSERT_TRUE(redis.ok());
  ASSERT_EQ(redis.run({"SET", lease_key(), "a-sidecar-that-hangs", "PX", "60000"}), "OK");
  Proxy& p = start_sidecar();
  Pg c{p.spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  long before = statement_calls(table_);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(c.scalar(select_sql()), "v1");
  EXPECT_EQ(statement_calls(table_) - before, 4) << "a lookup was answered while the stream was not live";
  EXPECT_EQ(metric(p, "pgsidecar_cache_stream_live"), 0);
  EXPECT_EQ(metric(p, "pgsidecar_cache_stream_leader"), 0);
  ASSERT_EQ(redis.run({"DEL", lease_key()}), "1");
  ASSERT_TRUE(wait_live(p, Millis(5000))) << p.log_tail();
  EXPECT_EQ(c.scalar(select_sql()), "v1");
  before = statement_calls(table_);
  EXPECT_EQ(c.scalar(select_sql()), "v1");
  EXPECT_EQ(statement_calls(table_), before) << "live again: the second read should be a hit";
}

}  // namespace
}  // namespace pgs::it::cache_proxy
