// cache::LiveUntil: a liveness that lapses by itself at the instant last vouched for.
#include "cache/live_until.h"

#include <gtest/gtest.h>

namespace pgs::cache {
namespace {

using Clock = LiveUntil::Clock;
using std::chrono::milliseconds;

TEST(LiveUntilTest, NotLiveUntilSomebodyVouches) {
  LiveUntil live;
  EXPECT_FALSE(live.live(Clock::now()));
  EXPECT_FALSE(live.live(Clock::time_point{}));
}

TEST(LiveUntilTest, LiveBeforeTheInstantVouchedForAndNotFromIt) {
  LiveUntil live;
  const Clock::time_point t0 = Clock::now();
  live.until(t0 + milliseconds(1000));
  EXPECT_TRUE(live.live(t0));
  EXPECT_TRUE(live.live(t0 + milliseconds(999)));
  EXPECT_FALSE(live.live(t0 + milliseconds(1000))) << "a heartbeat that expired proves nothing";
  EXPECT_FALSE(live.live(t0 + milliseconds(5000)));
}

TEST(LiveUntilTest, EndAndAnEarlierInstantTakeEffectAtOnce) {
  LiveUntil live;
  const Clock::time_point t0 = Clock::now();
  live.until(t0 + milliseconds(1000));
  live.until(t0 + milliseconds(10));  // a later heartbeat with less left is believed as it is
  EXPECT_FALSE(live.live(t0 + milliseconds(500)));
  live.until(t0 + milliseconds(1000));
  live.end();
  EXPECT_FALSE(live.live(t0));
}

}  // namespace
}  // namespace pgs::cache
