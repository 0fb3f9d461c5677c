// Redis trouble is a miss: a private redis-server the test starts, SIGSTOPs (slow Redis), restarts
// (reconnect with backoff) and fills (OOM on SET). Every wait has a deadline.
#include <gtest/gtest.h>

#include <optional>

#include "cache/redis/generation_sync.h"
#include "cache/redis/redis_store.h"
#include "redis_env.h"

namespace pgs::cache {
namespace {

using namespace std::chrono_literals;
using testing::private_options;
using testing::TestLoop;

class RedisFailureTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.running()) << "could not start redis-server"; }

  std::optional<std::pair<GetStatus, std::string>> get(redis::RedisStore& store, const std::string& key) {
    std::optional<std::pair<GetStatus, std::string>> out;
    if (!store.get(key, [&](GetStatus s, std::string v) { out.emplace(s, std::move(v)); })) return std::nullopt;
    EXPECT_TRUE(loop_.run_until([&] { return out.has_value(); }, 5s));
    return out;
  }

  testing::PrivateRedis server_;
  TestLoop loop_;
};

TEST_F(RedisFailureTest, StoppedRedisTimesOutThenRecovers) {
  redis::RedisStore store(loop_.get(), private_options(server_.port()));
  store.start();
  ASSERT_TRUE(loop_.run_until([&] { return store.connected(); }, 5s));
  ASSERT_EQ(get(store, "k")->first, GetStatus::miss);

  server_.stop_process();
  int calls = 0;
  std::optional<GetStatus> status;
  auto sent = std::chrono::steady_clock::now();
  ASSERT_TRUE(store.get("k", [&](GetStatus s, std::string) {
    ++calls;
    status = s;
  }));
  ASSERT_TRUE(loop_.run_until([&] { return status.has_value(); }, 5s));
  auto waited = std::chrono::steady_clock::now() - sent;
  EXPECT_EQ(*status, GetStatus::error);
  EXPECT_GE(waited, 45ms);
  EXPECT_LT(waited, 1000ms);  // the timeout (50 ms) plus scheduling slack, not Redis' pace
  EXPECT_EQ(store.conn_stats().timeouts, 1u);

  // Still stuck after stuck_after: the connection is dropped; lookups are refused (misses) meanwhile.
  ASSERT_TRUE(loop_.run_until([&] { return store.conn_stats().disconnects >= 1; }, 5s));
  server_.continue_process();
  ASSERT_TRUE(loop_.run_until([&] { return store.connected(); }, 5s));
  auto again = get(store, "k");
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->first, GetStatus::miss);
  EXPECT_EQ(calls, 1);  // the timed-out request's callback ran once, the late reply was ignored
}

TEST_F(RedisFailureTest, LateReplyIsIgnored) {
  redis::ConnOptions o = private_options(server_.port());
  o.stuck_after = 10s;  // keep the connection: the reply arrives after SIGCONT
  redis::RedisStore store(loop_.get(), o);
  store.start();
  ASSERT_TRUE(loop_.run_until([&] { return store.connected(); }, 5s));
  server_.stop_process();
  int calls = 0;
  ASSERT_TRUE(store.get("late", [&](GetStatus s, std::string) {
    ++calls;
    EXPECT_EQ(s, GetStatus::error);
  }));
  ASSERT_TRUE(loop_.run_until([&] { return calls == 1; }, 5s));
  server_.continue_process();
  ASSERT_TRUE(loop_.run_until([&] { return store.conn_stats().late_replies == 1; }, 5s));
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(store.connected());
}

TEST_F(RedisFailureTest, ReconnectsAfterRestart) {
  redis::RedisStore store(loop_.get(), private_options(server_.port()));
  GenerationMap map;
  redis::GenerationSync sync(loop_.get(), private_options(server_.port()), RedisNames("t:"), map);
  store.start();
  sync.start();
  ASSERT_TRUE(loop_.run_until([&] { return store.connected() && sync.synced(); }, 5s));

  server_.kill_server();
  ASSERT_TRUE(loop_.run_until([&] { return !store.connected() && !sync.synced(); }, 5s));
  EXPECT_FALSE(get(store, "k").has_value());  // refused at once: a miss for the caller
  EXPECT_FALSE(store.set("k", "v", 1s));
  std::optional<bool> bumped;
  sync.bump({"core.users"}, [&](bool ok) { bumped = ok; });
  ASSERT_TRUE(loop_.run_until([&] { return bumped.has_value(); }, 5s));
  EXPECT_FALSE(*bumped);
  uint64_t failures = store.conn_stats().connect_failures;
  ASSERT_TRUE(loop_.run_until([&] { return store.conn_stats().connect_failures >= failures + 2; }, 5s));

  ASSERT_TRUE(server_.start());
  ASSERT_TRUE(loop_.run_until([&] { return store.connected() && sync.synced(); }, 5s));
  ASSERT_TRUE(store.set("k", "v", 10s));
  ASSERT_TRUE(loop_.run_until([&] { return store.stats().stores == 1; }, 5s));
  EXPECT_EQ(get(store, "k")->second, "v");
  // The failed bump was retried once Redis came back.
  testing::SyncRedis direct("127.0.0.1", server_.port());
  EXPECT_NE(direct.run({"HGET", "t:pgsc:v1:gens", "core.users"}), "");
  EXPECT_GT(map.get("core.users"), 0u);
}

// AUTH: an ACL login that Redis refuses keeps the connection from being used (every command refused:
// a miss), is counted with Redis's message, and is tried again; the right one connects.
TEST_F(RedisFailureTest, AclLoginRefusedThenAccepted) {
  {
    testing::SyncRedis admin("127.0.0.1", server_.port());
    ASSERT_TRUE(admin.ok());
    ASSERT_EQ(admin.run({"ACL", "SETUSER", "pgs_conn", "on", ">good", "~*", "&*", "+@all"}), "OK");
  }
  redis::ConnOptions wrong = private_options(server_.port());
  wrong.user = "pgs_conn";
  wrong.password = "bad";
  redis::RedisStore refused(loop_.get(), wrong);
  refused.start();
  ASSERT_TRUE(loop_.run_until([&] { return refused.conn_stats().auth_failures >= 2; }, 5s)) << "retried";
  EXPECT_FALSE(refused.connected());
  EXPECT_NE(refused.conn().last_error().find("WRONGPASS"), std::string::npos) << refused.conn().last_error();
  EXPECT_FALSE(refused.get("k", [](GetStatus, std::string) {})) << "refused while not logged in";

  redis::ConnOptions right = wrong;
  right.password = "good";
  redis::RedisStore store(loop_.get(), right);
  store.start();
  ASSERT_TRUE(loop_.run_until([&] { return store.connected(); }, 5s));
  EXPECT_EQ(store.conn_stats().auth_failures, 0u);
  ASSERT_EQ(get(store, "k")->first, GetStatus::miss);
}

TEST_F(RedisFailureTest, FullRedisIsAStoreErrorNotAFailure) {
  testing::SyncRedis direct("127.0.0.1", server_.port());
  ASSERT_EQ(direct.run({"SET", "existing", "x"}), "OK");
  ASSERT_EQ(direct.run({"CONFIG", "SET", "maxmemory-policy", "noeviction"}), "OK");
  ASSERT_EQ(direct.run({"CONFIG", "SET", "maxmemory", "1"}), "OK");
  redis::RedisStore store(loop_.get(), private_options(server_.port()));
  store.start();
  ASSERT_TRUE(loop_.run_until([&] { return store.connected(); }, 5s));
  ASSERT_TRUE(store.set("k", std::string(1000, 'x'), 10s));
  ASSERT_TRUE(loop_.run_until([&] { return store.stats().store_errors == 1; }, 5s));
  EXPECT_EQ(get(store, "existing")->second, "x");  // reads still work
  EXPECT_EQ(get(store, "k")->first, GetStatus::miss);
}

}  // namespace
}  // namespace pgs::cache
