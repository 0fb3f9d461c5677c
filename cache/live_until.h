// LiveUntil: a liveness that lapses by itself (the invalidation stream's, issue 12).
//
// One thread vouches for an instant of the steady clock (until()): "nothing is stale before then"; any
// thread asks live(). A vouching thread that stops vouching (stuck in a call, its process's other threads
// still serving) leaves nothing live past the last instant it vouched for: no one has to notice that it
// stopped. Lock-free; one atomic load per live().
#pragma once

#include <atomic>
#include <chrono>
#include <limits>

namespace pgs::cache {

class LiveUntil {
 public:
  using Clock = std::chrono::steady_clock;

  void until(Clock::time_point t) { until_.store(t.time_since_epoch().count(), std::memory_order_release); }
  void end() { until_.store(kNever, std::memory_order_release); }
  bool live(Clock::time_point now) const {
    return now.time_since_epoch().count() < until_.load(std::memory_order_acquire);
  }
  bool live() const { return live(Clock::now()); }

 private:
  static constexpr Clock::rep kNever = std::numeric_limits<Clock::rep>::min();
  std::atomic<Clock::rep> until_{kNever};
};

}  // namespace pgs::cache
