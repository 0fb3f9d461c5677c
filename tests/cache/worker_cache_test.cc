// The whole library flow one worker runs, against the dev Redis: classify -> decide -> key -> GET miss
// -> capture -> SET -> GET hit -> decode (same bytes) -> a bump (COMMIT of a write) -> new key -> miss.
#include <gtest/gtest.h>

#include <tuple>

#include <optional>

#include "cache/capture.h"
#include "cache/entry.h"
#include "cache/lookup.h"
#include "cache/policy.h"
#include "cache/redis/worker_cache.h"
#include "protocol/writer.h"
#include "redis_env.h"
#include "row_security_stub.h"
#include "router/classify.h"

namespace pgs::cache {
namespace {

using namespace std::chrono_literals;

class WorkerCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::SyncRedis(testing::kDevRedisHost, testing::kDevRedisPort).ok()) {
      GTEST_SKIP() << "dev Redis at 127.0.0.1:16379 is not running (./dev up)";
    }
    config_.enabled = true;
    config_.redis_port = testing::kDevRedisPort;
    config_.redis_timeout = 1000ms;
    config_.key_prefix = prefix_;
    config_.classes = {{"user_profile", 900000ms, {"core.users"}}};
    cache_.emplace(loop_.get(), config_);
    cache_->start();
    ASSERT_TRUE(loop_.run_until([&] { return cache_->ready() && cache_->store().connected(); }, 5s));
  }
  void TearDown() override {
    cache_.reset();
    testing::SyncRedis(testing::kDevRedisHost, testing::kDevRedisPort).delete_prefix(prefix_);
  }

  Lookup lookup(const CacheDecision& d) {
    KeyInput in;
    in.shape = ReplyShape::simple;
    in.database = "flopods";
    in.role = "flopods";
    in.search_path = facts_.search_path;
    in.statement = sql_;
    return make_lookup(d, in, cache_->names());
  }
  // The generations and the value, in one round trip.
  std::tuple<GetStatus, std::vector<uint64_t>, std::string> read(const Lookup& l) {
    std::optional<std::tuple<GetStatus, std::vector<uint64_t>, std::string>> out;
    EXPECT_TRUE(cache_->store().lookup(cache_->names().generations, l.generations, l.redis_key,
                                       [&](GetStatus s, std::vector<uint64_t> g, std::string v,
                                           std::optional<uint64_t> floor) {
                                         out.emplace(s, std::move(g), std::move(v));
                                         floor_ = floor;
                                       }));
    EXPECT_TRUE(loop_.run_until([&] { return out.has_value(); }, 5s));
    return out.value_or(std::make_tuple(GetStatus::error, std::vector<uint64_t>{}, std::string()));
  }
  std::pair<GetStatus, std::string> get(const std::string& key) {
    std::optional<std::pair<GetStatus, std::string>> out;
    EXPECT_TRUE(cache_->store().get(key, [&](GetStatus s, std::string v) { out.emplace(s, std::move(v)); }));
    EXPECT_TRUE(loop_.run_until([&] { return out.has_value(); }, 5s));
    return out.value_or(std::make_pair(GetStatus::error, std::string()));
  }

  std::optional<uint64_t> floor_;  // replica_floor of the last read()
  std::string prefix_ = testing::unique_prefix();
  conf::CacheConfig config_;
  SessionFacts facts_ = testing::known_facts();
  std::string sql_ = "SELECT id, name FROM core.users WHERE id = 1";
  testing::TestLoop loop_;
  std::optional<redis::WorkerCache> cache_;
};

TEST_F(WorkerCacheTest, MissStoreHitThenInvalidatedByABump) {
  facts_.generations_synced = cache_->ready();
  CacheDecision d = decide(router::classify(sql_), facts_, config_);
  ASSERT_TRUE(d.cacheable) << bypass_reason_name(d.reason);
  Lookup first = lookup(d);
  auto [status0, gens0, value0] = read(first);
  EXPECT_EQ(status0, GetStatus::miss);
  ASSERT_EQ(gens0.size(), 2u) << "core.users and *";
  uint64_t fp = generations_fingerprint(first, gens0);

  // Stampede: this worker's first miss leads, an identical one waits.
  auto now = Inflight::Clock::now();
  EXPECT_EQ(cache_->inflight().join(inflight_key(first, fp), 1, now), Inflight::Role::leader);
  EXPECT_EQ(cache_->inflight().join(inflight_key(first, fp), 2, now), Inflight::Role::wait);

  // The reply streams through the capture, then is stored with the generations it was read under.
  std::vector<std::string> reply(4);
  protocol::write_row_description(reply[0], {{"id", 23, 4}, {"name", 25, -1}});
  protocol::write_data_row(reply[1], {"1", "Ada"});
  protocol::write_command_complete(reply[2], "SELECT 1");
  protocol::write_ready_for_query(reply[3], 'I');
  ResultCapture cap(ReplyShape::simple, config_.max_result_bytes);
  for (const std::string& m : reply) {
    cap.feed(m[0], protocol::Bytes(reinterpret_cast<const uint8_t*>(m.data()), m.size()));
  }
  ASSERT_EQ(cap.state(), CaptureState::complete);
  std::string stored = cap.take();
  EntryMeta meta{ReplyShape::simple, first.class_name, 1, 900000, fp};
  ASSERT_TRUE(cache_->store().set(first.redis_key, encode_entry(meta, stored), first.ttl));
  EXPECT_EQ(cache_->inflight().finish(inflight_key(first, fp)), std::vector<uint64_t>{2});

  auto [status1, gens1, value1] = read(first);
  ASSERT_EQ(status1, GetStatus::hit);
  auto hit = decode_entry(value1, ReplyShape::simple);
  ASSERT_TRUE(hit.ok()) << hit.error().detail;
  EXPECT_EQ(hit->messages, reply[0] + reply[1] + reply[2]);
  EXPECT_EQ(hit->meta.class_name, "user_profile");
  EXPECT_EQ(hit->meta.generations, generations_fingerprint(first, gens1)) << "still current";

  // A committed UPDATE bumps core.users: the value is still there, but read under other generations.
  std::vector<std::string> bump = tables_to_bump(router::classify("UPDATE core.users SET name = 'Bea'"), facts_);
  std::optional<bool> ok;
  cache_->sync().bump(bump, [&](bool r) { ok = r; });
  ASSERT_TRUE(loop_.run_until([&] { return ok.has_value(); }, 5s));
  ASSERT_TRUE(*ok);
  auto [status2, gens2, value2] = read(first);
  ASSERT_EQ(status2, GetStatus::hit);
  EXPECT_GT(gens2[0], gens1[0]);
  EXPECT_NE(generations_fingerprint(first, gens2), hit->meta.generations) << "stale: served as a miss";
}

// No stale store (issue 12): the lookup returns, with the generations, the commit LSN a replica must
// have replayed. Never bumped: 0. A bump with an LSN: at least that LSN (the max over the writes whose
// bumps made the generation). A bump without one (an older sidecar, a lost probe): unknown.
TEST_F(WorkerCacheTest, LookupReturnsTheCommitLsnOfTheGenerationsRead) {
  facts_.generations_synced = cache_->ready();
  CacheDecision d = decide(router::classify(sql_), facts_, config_);
  ASSERT_TRUE(d.cacheable) << bypass_reason_name(d.reason);
  Lookup l = lookup(d);
  read(l);
  EXPECT_EQ(floor_, std::optional<uint64_t>(0)) << "never bumped";
  auto bump = [&](std::vector<std::string> tables, std::optional<uint64_t> lsn) {
    std::optional<bool> ok;
    cache_->sync().bump(std::move(tables), lsn, [&](bool r) { ok = r; });
    EXPECT_TRUE(loop_.run_until([&] { return ok.has_value(); }, 5s));
    EXPECT_TRUE(ok.value_or(false));
  };
  bump({"core.users"}, 5000);
  read(l);
  EXPECT_EQ(floor_, std::optional<uint64_t>(5000));
  // A second writer whose probe ran earlier (smaller LSN) bumps later: the first write stays covered.
  bump({"core.users"}, 4000);
  read(l);
  EXPECT_EQ(floor_, std::optional<uint64_t>(5000));
  bump({"*"}, 7000);  // kAllTables is read by every lookup
  read(l);
  EXPECT_EQ(floor_, std::optional<uint64_t>(7000));
  bump({"core.users"}, std::nullopt);  // unknown LSN: no replica's answer may be stored
  read(l);
  EXPECT_EQ(floor_, std::nullopt);
  // LSNs beyond 2^53 (Lua's exact doubles) are compared exactly.
  bump({"core.users"}, 18446744073709551000ull);
  bump({"core.users"}, 18446744073709550999ull);
  read(l);
  EXPECT_EQ(floor_, std::optional<uint64_t>(18446744073709551000ull));
}

TEST_F(WorkerCacheTest, ConnOptionsFromConfig) {
  redis::ConnOptions o = redis::conn_options(config_);
  EXPECT_EQ(o.port, testing::kDevRedisPort);
  EXPECT_EQ(o.timeout, 1000ms);
  EXPECT_EQ(cache_->names().base, prefix_ + "pgsc:v1:");
}

}  // namespace
}  // namespace pgs::cache
