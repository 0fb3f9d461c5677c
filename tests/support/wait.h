// Waiting on a condition with a deadline. Tests never sleep a fixed time: they poll a condition at a
// short interval inside a loop bounded by a deadline.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace pgs::test {

using Millis = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Polls `pred` every `interval` until it returns true (-> true) or `deadline` passes (-> false).
// `pred` is called at least once, and once more when the deadline passes during an interval.
bool wait_until(const std::function<bool()>& pred, Millis deadline, Millis interval = Millis(20));

// The same, but throws std::runtime_error("timed out after N ms waiting for <what>") at the deadline.
void wait_until(const std::function<bool()>& pred, Millis deadline, const std::string& what,
                Millis interval = Millis(20));

// Time left until `end`, never negative (for poll() timeouts inside a deadline-bounded loop).
Millis time_left(Clock::time_point end);
// The same in whole milliseconds as an int, for poll().
int ms_left(Clock::time_point end);

}  // namespace pgs::test
