#include "tests/support/wait.h"

#include <stdexcept>
#include <thread>

namespace pgs::test {

bool wait_until(const std::function<bool()>& pred, Millis deadline, Millis interval) {
  auto end = Clock::now() + deadline;
  while (true) {
    if (pred()) return true;
    if (Clock::now() >= end) return false;
    std::this_thread::sleep_for(std::min(interval, time_left(end)));  // poll interval inside the deadline
  }
}

void wait_until(const std::function<bool()>& pred, Millis deadline, const std::string& what, Millis interval) {
  if (!wait_until(pred, deadline, interval)) {
    throw std::runtime_error("timed out after " + std::to_string(deadline.count()) + " ms waiting for " + what);
  }
}

Millis time_left(Clock::time_point end) {
  auto left = std::chrono::duration_cast<Millis>(end - Clock::now());
  return left < Millis(0) ? Millis(0) : left;
}

int ms_left(Clock::time_point end) { return static_cast<int>(time_left(end).count()); }

}  // namespace pgs::test
