// Inflight (stampede control) and GenerationMap: pure tables, time passed in by the test.
#include <gtest/gtest.h>

#include "cache/generations.h"
#include "cache/inflight.h"
#include "cache/policy.h"

namespace pgs::cache {
namespace {

using std::chrono::milliseconds;
using Clock = Inflight::Clock;

TEST(Inflight, FirstLeadsOthersWaitThenFinish) {
  Inflight in(Inflight::Options{3, 100, milliseconds(500)});
  CacheKey k{1, 2}, other{3, 4};
  Clock::time_point t0{};
  EXPECT_EQ(in.join(k, 10, t0), Inflight::Role::leader);
  EXPECT_EQ(in.join(k, 11, t0), Inflight::Role::wait);
  EXPECT_EQ(in.join(k, 12, t0), Inflight::Role::wait);
  EXPECT_EQ(in.join(other, 20, t0), Inflight::Role::leader);
  EXPECT_EQ(in.waiters(), 2u);
  EXPECT_EQ(in.finish(k), (std::vector<uint64_t>{11, 12}));
  EXPECT_EQ(in.keys(), 1u);
  // After finish the next miss leads again.
  EXPECT_EQ(in.join(k, 13, t0), Inflight::Role::leader);
  EXPECT_TRUE(in.finish(CacheKey{9, 9}).empty());
}

TEST(Inflight, BoundedWaitersAndKeys) {
  Inflight in(Inflight::Options{2, 2, milliseconds(500)});
  Clock::time_point t0{};
  CacheKey k{1, 1};
  EXPECT_EQ(in.join(k, 1, t0), Inflight::Role::leader);
  EXPECT_EQ(in.join(k, 2, t0), Inflight::Role::wait);
  EXPECT_EQ(in.join(k, 3, t0), Inflight::Role::wait);
  EXPECT_EQ(in.join(k, 4, t0), Inflight::Role::fall_through);
  EXPECT_EQ(in.join(CacheKey{2, 2}, 5, t0), Inflight::Role::leader);
  EXPECT_EQ(in.join(CacheKey{3, 3}, 6, t0), Inflight::Role::fall_through);
}

TEST(Inflight, WaitersExpireAndLeave) {
  Inflight in(Inflight::Options{8, 8, milliseconds(100)});
  Clock::time_point t0{};
  CacheKey k{1, 1};
  EXPECT_EQ(in.join(k, 1, t0), Inflight::Role::leader);
  EXPECT_EQ(in.join(k, 2, t0), Inflight::Role::wait);
  EXPECT_EQ(in.join(k, 3, t0 + milliseconds(50)), Inflight::Role::wait);
  EXPECT_EQ(in.join(k, 4, t0 + milliseconds(60)), Inflight::Role::wait);
  EXPECT_EQ(in.next_deadline(), t0 + milliseconds(100));
  EXPECT_TRUE(in.leave(k, 4));
  EXPECT_FALSE(in.leave(k, 4));
  EXPECT_TRUE(in.expire(t0 + milliseconds(99)).empty());
  EXPECT_EQ(in.expire(t0 + milliseconds(100)), std::vector<uint64_t>{2});
  EXPECT_EQ(in.next_deadline(), t0 + milliseconds(150));
  EXPECT_EQ(in.expire(t0 + milliseconds(200)), std::vector<uint64_t>{3});
  EXPECT_FALSE(in.next_deadline().has_value());
  EXPECT_TRUE(in.finish(k).empty());  // the leader still finishes; nobody left to wake
}

TEST(GenerationMap, MonotonicAndMessages) {
  GenerationMap m;
  EXPECT_EQ(m.get("core.users"), 0u);
  EXPECT_TRUE(m.apply("core.users", 5));
  EXPECT_FALSE(m.apply("core.users", 4));  // a late, older value never goes back
  EXPECT_FALSE(m.apply("core.users", 5));
  EXPECT_EQ(m.get("core.users"), 5u);
  EXPECT_TRUE(m.apply_message("documents.documents 1700000000000001"));
  EXPECT_EQ(m.get("documents.documents"), 1700000000000001u);
  EXPECT_TRUE(m.apply_message("weird name.with space 7"));  // the last space splits
  EXPECT_EQ(m.get("weird name.with space"), 7u);
  for (const char* bad : {"", "core.users", "core.users x", " 5", "core.users 5x", "core.users -1", "core.users "}) {
    EXPECT_FALSE(m.apply_message(bad)) << bad;
  }
  EXPECT_EQ(m.get("core.users"), 5u);
}

}  // namespace
}  // namespace pgs::cache
