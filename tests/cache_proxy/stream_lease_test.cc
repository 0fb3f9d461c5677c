// The invalidation stream's lease and heartbeat (proxy/stream/stream_lease.h) against a real, private
// redis-server: a renewal that Redis runs only after the leader gave up on it (Redis was frozen with
// SIGSTOP for longer than the command timeout) neither renews the lease nor sets a heartbeat, so no
// follower trusts a leadership that stopped streaming. Waits have deadlines; the freeze lasts exactly one
// command timeout, spent by the leader waiting for its reply.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "cache/redis/blocking_redis.h"
#include "proxy/stream/stream_lease.h"
#include "tests/cache/redis_env.h"
#include "tests/support/wait.h"

namespace pgs::proxy {
namespace {

using Millis = std::chrono::milliseconds;
constexpr Millis kMaxDelay{10000};
constexpr Millis kTimeout{150};    // the leader's command timeout
constexpr Millis kLateAfter{75};   // the lease's late_after (StreamInvalidator: half the timeout)

class StreamLeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.running()) << redis_.log_tail();
    leader_ = std::make_unique<cache::redis::BlockingRedis>(options());
    observer_ = std::make_unique<cache::redis::BlockingRedis>(options(Millis(2000)));
  }
  cache::redis::ConnOptions options(Millis timeout = kTimeout) const {
    cache::redis::ConnOptions o = cache::testing::private_options(redis_.port());
    o.timeout = timeout;
    o.connect_timeout = Millis(2000);
    return o;
  }
  static StreamLease::Command command_of(cache::redis::BlockingRedis& conn) {
    return [&conn](const std::vector<std::string>& args) -> std::optional<StreamLease::Reply> {
      if (!conn.connected() && !conn.connect()) return std::nullopt;
      std::vector<std::string_view> views(args.begin(), args.end());
      return conn.command(views);
    };
  }
  // An integer reply of the observer (-3 when there is none).
  long long observe(const std::vector<std::string>& args) {
    auto r = command_of(*observer_)(args);
    return r && (*r)->type == REDIS_REPLY_INTEGER ? (*r)->integer : -3;
  }
  // How many EVAL calls Redis has run (INFO commandstats).
  long evals_run() {
    auto r = command_of(*observer_)({"INFO", "commandstats"});
    if (!r || (*r)->type != REDIS_REPLY_STRING) return -1;
    std::string info((*r)->str, (*r)->len);
    auto at = info.find("cmdstat_eval:calls=");
    if (at == std::string::npos) return 0;
    return std::stol(info.substr(at + 19));
  }

  cache::testing::PrivateRedis redis_;
  std::unique_ptr<cache::redis::BlockingRedis> leader_, observer_;
  const std::string prefix_ = cache::testing::unique_prefix();
  const StreamLease::Keys keys_{prefix_ + "{stream}leader", prefix_ + "{stream}beat"};
};

TEST_F(StreamLeaseTest, AnOnTimeRenewalSetsAHeartbeatThatEndsMaxDelayAfterItWasIssued) {
  StreamLease lease(keys_, kMaxDelay, kLateAfter);
  auto redis = command_of(*leader_);
  ASSERT_EQ(lease.acquire(redis, "a#1"), StreamLease::Outcome::done);
  ASSERT_TRUE(lease.redis_now_ms().has_value()) << "the reply teaches Redis's clock";
  EXPECT_EQ(StreamLease::live_heartbeat(redis, keys_), std::nullopt) << "no heartbeat before the first round";
  ASSERT_EQ(lease.renew(redis, "a#1", true), StreamLease::Outcome::done);
  const long long beat_ttl = observe({"PTTL", keys_.beat});
  EXPECT_GT(beat_ttl, 0);
  EXPECT_LE(beat_ttl, kMaxDelay.count());
  // A follower learns whose heartbeat it is and how long it has left (it is live that long, no longer).
  std::optional<StreamLease::Heartbeat> seen = StreamLease::live_heartbeat(command_of(*observer_), keys_);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->token, "a#1");
  EXPECT_GT(seen->remaining.count(), 0);
  EXPECT_LE(seen->remaining.count(), beat_ttl);
  // Another sidecar's lease attempt and renewal are refused while a#1 holds it.
  StreamLease other(keys_, kMaxDelay, kLateAfter);
  EXPECT_EQ(other.acquire(command_of(*observer_), "b#1"), StreamLease::Outcome::refused);
  EXPECT_EQ(other.renew(command_of(*observer_), "b#1", true), StreamLease::Outcome::refused);
  EXPECT_EQ(lease.release(redis, "a#1"), StreamLease::Outcome::done);
  EXPECT_EQ(observe({"EXISTS", keys_.lease}), 0);
}

TEST_F(StreamLeaseTest, ARenewalRedisRunsAfterTheLeaderGaveUpOnItDoesNothing) {
  StreamLease lease(keys_, kMaxDelay, kLateAfter);
  auto redis = command_of(*leader_);
  ASSERT_EQ(lease.acquire(redis, "a#1"), StreamLease::Outcome::done);
  const long evals_before = evals_run();
  ASSERT_GE(evals_before, 1);

  redis_.stop_process();
  // The leader's renewal waits its whole timeout for a reply that does not come, then gives up.
  EXPECT_EQ(lease.renew(redis, "a#1", true), StreamLease::Outcome::no_reply);
  redis_.continue_process();
  // Redis runs the renewal it had received once it resumes.
  ASSERT_TRUE(pgs::test::wait_until([&] { return evals_run() >= evals_before + 1; }, Millis(5000), Millis(5)))
      << "Redis never ran the late renewal";

  EXPECT_EQ(observe({"EXISTS", keys_.beat}), 0) << "a late renewal set a heartbeat: followers would trust it";
  EXPECT_EQ(StreamLease::live_heartbeat(command_of(*observer_), keys_), std::nullopt);
  const long long lease_ttl = observe({"PTTL", keys_.lease});
  EXPECT_LE(lease_ttl, (kMaxDelay - kTimeout).count()) << "a late renewal extended the lease";
}

}  // namespace
}  // namespace pgs::proxy
