// RedisStore against the dev Redis (127.0.0.1:16379): GET/SET round trips, TTL expiry, binary values,
// refusals. Keys live under a per-run prefix and are deleted afterwards.
#include <gtest/gtest.h>

#include <optional>

#include "cache/entry.h"
#include "cache/redis/redis_store.h"
#include "protocol/writer.h"
#include "redis_env.h"

namespace pgs::cache {
namespace {

using namespace std::chrono_literals;
using testing::TestLoop;

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::SyncRedis probe(testing::kDevRedisHost, testing::kDevRedisPort);
    if (!probe.ok()) GTEST_SKIP() << "dev Redis at 127.0.0.1:16379 is not running (./dev up)";
    store_.emplace(loop_.get(), options());
    store_->start();
    ASSERT_TRUE(loop_.run_until([&] { return store_->connected(); }, 5s));
  }
  void TearDown() override {
    store_.reset();
    testing::SyncRedis(testing::kDevRedisHost, testing::kDevRedisPort).delete_prefix(prefix_);
  }
  static redis::ConnOptions options() {
    redis::ConnOptions o;
    o.port = testing::kDevRedisPort;
    o.timeout = 500ms;  // a shared, busy machine: generous, the failure tests use a private server
    return o;
  }
  // GET and wait for the answer.
  std::pair<GetStatus, std::string> get(const std::string& key) {
    std::optional<std::pair<GetStatus, std::string>> out;
    EXPECT_TRUE(store_->get(key, [&](GetStatus s, std::string v) { out.emplace(s, std::move(v)); }));
    EXPECT_TRUE(loop_.run_until([&] { return out.has_value(); }, 5s));
    return out.value_or(std::make_pair(GetStatus::error, std::string()));
  }

  TestLoop loop_;
  std::string prefix_ = testing::unique_prefix();
  std::optional<redis::RedisStore> store_;
};

TEST_F(RedisStoreTest, SetThenGetReturnsTheSameBytes) {
  std::string key = RedisNames(prefix_).result_key(CacheKey{1, 2}, "test");
  std::string value("PGSC\0\1binary\xff\x00 value", 20);
  ASSERT_TRUE(store_->set(key, value, 60s));
  ASSERT_TRUE(loop_.run_until([&] { return store_->stats().stores == 1; }, 5s));
  auto [status, got] = get(key);
  EXPECT_EQ(status, GetStatus::hit);
  EXPECT_EQ(got, value);
  long pttl = std::stol(testing::SyncRedis(testing::kDevRedisHost, testing::kDevRedisPort).run({"PTTL", key}));
  EXPECT_GT(pttl, 0);
  EXPECT_LE(pttl, 60000);
}

TEST_F(RedisStoreTest, UnknownKeyIsAMiss) {
  auto [status, got] = get(prefix_ + "absent");
  EXPECT_EQ(status, GetStatus::miss);
  EXPECT_EQ(store_->stats().misses, 1u);
}

TEST_F(RedisStoreTest, EntryExpiresAfterItsTtl) {
  std::string key = prefix_ + "short";
  ASSERT_TRUE(store_->set(key, "v", 150ms));
  ASSERT_TRUE(loop_.run_until([&] { return store_->stats().stores == 1; }, 5s));
  auto started = std::chrono::steady_clock::now();
  // Poll with GETs (each waits for its answer) until the miss, with a deadline.
  GetStatus last = GetStatus::hit;
  while (last != GetStatus::miss && std::chrono::steady_clock::now() - started < 5s) last = get(key).first;
  EXPECT_EQ(last, GetStatus::miss);
}

TEST_F(RedisStoreTest, RefusedBeyondMaxInflight) {
  redis::ConnOptions o = options();
  o.max_inflight = 2;
  redis::RedisStore small(loop_.get(), o);
  EXPECT_FALSE(small.get("x", [](GetStatus, std::string) {}));  // not started: refused, no callback
  small.start();
  ASSERT_TRUE(loop_.run_until([&] { return small.connected(); }, 5s));
  int answered = 0;
  auto count = [&](GetStatus, std::string) { ++answered; };
  EXPECT_TRUE(small.get(prefix_ + "a", count));
  EXPECT_TRUE(small.get(prefix_ + "b", count));
  EXPECT_FALSE(small.get(prefix_ + "c", count));
  EXPECT_EQ(answered, 0);  // never synchronously
  ASSERT_TRUE(loop_.run_until([&] { return answered == 2; }, 5s));
  EXPECT_EQ(small.stats().refused, 2u);
  EXPECT_TRUE(small.get(prefix_ + "d", count));
  ASSERT_TRUE(loop_.run_until([&] { return answered == 3; }, 5s));
}

TEST_F(RedisStoreTest, StoredEntryDecodes) {
  std::string messages;
  protocol::write_row_description(messages, {{"a", 25, -1}});
  protocol::write_data_row(messages, {"x"});
  protocol::write_command_complete(messages, "SELECT 1");
  std::string key = prefix_ + "entry";
  ASSERT_TRUE(store_->set(key, encode_entry({ReplyShape::simple, "user_profile", 1, 60000}, messages), 60s));
  auto [status, got] = get(key);
  ASSERT_EQ(status, GetStatus::hit);
  auto decoded = decode_entry(got, ReplyShape::simple);
  ASSERT_TRUE(decoded.ok()) << decoded.error().detail;
  EXPECT_EQ(decoded->messages, messages);
}

}  // namespace
}  // namespace pgs::cache
