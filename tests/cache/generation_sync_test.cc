// GenerationSync against the dev Redis: initial load, bumps applied locally before done(), and a bump
// by one "sidecar" (its own loop and thread) visible to another within a deadline.
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>

#include "cache/redis/generation_sync.h"
#include "redis_env.h"

namespace pgs::cache {
namespace {

using namespace std::chrono_literals;
using testing::TestLoop;

redis::ConnOptions dev_options() {
  redis::ConnOptions o;
  o.port = testing::kDevRedisPort;
  o.timeout = 1000ms;
  return o;
}

class GenerationSyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!redis_.ok()) GTEST_SKIP() << "dev Redis at 127.0.0.1:16379 is not running (./dev up)";
  }
  void TearDown() override { redis_.delete_prefix(prefix_); }

  // Bumps and waits for done(); returns ok.
  bool bump(TestLoop& loop, redis::GenerationSync& sync, std::vector<std::string> tables) {
    std::optional<bool> ok;
    sync.bump(std::move(tables), [&](bool r) { ok = r; });
    EXPECT_TRUE(loop.run_until([&] { return ok.has_value(); }, 5s));
    return ok.value_or(false);
  }

  std::string prefix_ = testing::unique_prefix();
  RedisNames names_{prefix_};
  testing::SyncRedis redis_{testing::kDevRedisHost, testing::kDevRedisPort};
};

TEST_F(GenerationSyncTest, LoadsExistingGenerationsOnConnect) {
  redis_.run({"HSET", names_.generations, "core.users", "42", "documents.documents", "7"});
  TestLoop loop;
  GenerationMap map;
  redis::GenerationSync sync(loop.get(), dev_options(), names_, map);
  EXPECT_FALSE(sync.synced());
  sync.start();
  ASSERT_TRUE(loop.run_until([&] { return sync.synced(); }, 5s));
  EXPECT_EQ(map.get("core.users"), 42u);
  EXPECT_EQ(map.get("documents.documents"), 7u);
  EXPECT_EQ(map.get("canvas.flows"), 0u);
}

TEST_F(GenerationSyncTest, BumpIsAppliedLocallyBeforeDone) {
  TestLoop loop;
  GenerationMap map;
  redis::GenerationSync sync(loop.get(), dev_options(), names_, map);
  sync.start();
  ASSERT_TRUE(loop.run_until([&] { return sync.synced(); }, 5s));
  std::optional<bool> ok;
  uint64_t seen_in_done = 0;
  sync.bump({"core.users", "canvas.flows"}, [&](bool r) {
    ok = r;
    seen_in_done = map.get("core.users");
  });
  ASSERT_TRUE(loop.run_until([&] { return ok.has_value(); }, 5s));
  EXPECT_TRUE(*ok);
  EXPECT_GT(seen_in_done, 0u);
  EXPECT_GT(map.get("canvas.flows"), 0u);
  EXPECT_EQ(std::to_string(map.get("core.users")), redis_.run({"HGET", names_.generations, "core.users"}));
  EXPECT_EQ(sync.stats().bumps, 2u);
}

// calls=N of `cmdstat_<command>` in INFO commandstats (0 when Redis has not run it).
uint64_t command_calls(testing::SyncRedis& redis, const std::string& command) {
  std::string info = redis.run({"INFO", "commandstats"});
  std::string key = "cmdstat_" + command + ":calls=";
  size_t at = info.find(key);
  if (at == std::string::npos) return 0;
  return std::stoull(info.substr(at + key.size()));
}

// A bump names the script by its SHA1 (EVALSHA) rather than sending its body every time; after Redis
// forgot its scripts (SCRIPT FLUSH, a restart), the next bump still succeeds: it is sent once more as EVAL.
TEST_F(GenerationSyncTest, BumpsNameTheScriptByItsDigestAndSurviveAScriptFlush) {
  TestLoop loop;
  GenerationMap map;
  redis::GenerationSync sync(loop.get(), dev_options(), names_, map);
  sync.start();
  ASSERT_TRUE(loop.run_until([&] { return sync.synced(); }, 5s));
  ASSERT_EQ(redis_.run({"SCRIPT", "FLUSH"}), "OK");
  uint64_t evalsha_before = command_calls(redis_, "evalsha");
  uint64_t eval_before = command_calls(redis_, "eval");
  uint64_t previous = 0;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(bump(loop, sync, {"core.users"})) << "bump " << i;
    EXPECT_GT(map.get("core.users"), previous);
    previous = map.get("core.users");
    EXPECT_EQ(std::to_string(previous), redis_.run({"HGET", names_.generations, "core.users"}));
  }
  EXPECT_GE(command_calls(redis_, "evalsha"), evalsha_before + 3) << "the first one answered NOSCRIPT";
  EXPECT_GE(command_calls(redis_, "eval"), eval_before + 1) << "the script was loaded again";
  EXPECT_EQ(sync.stats().bump_failures, 0u);
}

TEST_F(GenerationSyncTest, GenerationsNeverRepeatEvenIfTheHashIsLost) {
  TestLoop loop;
  GenerationMap map;
  redis::GenerationSync sync(loop.get(), dev_options(), names_, map);
  sync.start();
  ASSERT_TRUE(loop.run_until([&] { return sync.synced(); }, 5s));
  ASSERT_TRUE(bump(loop, sync, {"core.users"}));
  uint64_t first = map.get("core.users");
  ASSERT_TRUE(bump(loop, sync, {"core.users"}));
  uint64_t second = map.get("core.users");
  EXPECT_GT(second, first);
  redis_.run({"DEL", names_.generations});  // as if evicted or flushed
  GenerationMap fresh;  // a sidecar started after the loss
  ASSERT_TRUE(bump(loop, sync, {"core.users"}));
  uint64_t third = std::stoull(redis_.run({"HGET", names_.generations, "core.users"}));
  EXPECT_GT(third, second);
  EXPECT_EQ(fresh.get("core.users"), 0u);
}

// Sidecar B runs on its own thread and loop; it publishes what its map holds through an atomic.
class Sidecar {
 public:
  Sidecar(RedisNames names, std::string table) : names_(std::move(names)), table_(std::move(table)) {
    thread_ = std::thread([this] { run(); });
  }
  ~Sidecar() {
    stop_ = true;
    thread_.join();
  }
  std::atomic<bool> synced{false};
  std::atomic<uint64_t> generation{0};

 private:
  void run() {
    TestLoop loop;
    GenerationMap map;
    {
      redis::GenerationSync sync(loop.get(), dev_options(), names_, map);
      sync.start();
      loop.run_until(
          [&] {
            synced = sync.synced();
            generation = map.get(table_);
            return stop_.load();
          },
          120s);
    }
    loop.drain();
  }
  RedisNames names_;
  std::string table_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_F(GenerationSyncTest, BumpOnOneSidecarIsSeenByAnotherWithinADeadline) {
  Sidecar b(names_, "core.users");
  TestLoop loop;
  GenerationMap map;
  redis::GenerationSync a(loop.get(), dev_options(), names_, map);
  a.start();
  ASSERT_TRUE(loop.run_until([&] { return a.synced() && b.synced.load(); }, 10s));
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(bump(loop, a, {"core.users"}));
    uint64_t now = map.get("core.users");
    auto seen = [&] { return b.generation.load() >= now; };
    auto start = std::chrono::steady_clock::now();
    // B's thread polls its loop itself; this thread only waits for the atomic, with a deadline.
    while (!seen() && std::chrono::steady_clock::now() - start < 2s) std::this_thread::yield();
    ASSERT_TRUE(seen()) << "bump " << i << " not seen by sidecar B within 2 s";
  }
}

}  // namespace
}  // namespace pgs::cache
