// EventClock: the steady clock as of the libuv callback being run. A transaction reads the time about
// a dozen times (state changes of its client and server, a request's send time, a reply's arrival, the
// pool's checks); within one read callback they all mean "now, when these bytes arrived", and each read
// of the clock costs a vDSO call. Stream's read callback opens a scope that reads the clock once; every
// EventClock::now() inside it returns that instant. Outside any scope (timers, async wake-ups, start-up)
// now() reads the clock: a stale instant is never returned.
// Thread affinity: per thread (each worker's loop has its own scope).
#pragma once

#include <chrono>

namespace pgs::proxy {

struct EventClock {
  using duration = std::chrono::steady_clock::duration;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::steady_clock::time_point;
  static constexpr bool is_steady = true;

  static time_point now() noexcept {
    return scope_depth_ > 0 ? scoped_now_ : std::chrono::steady_clock::now();
  }

  // While alive (and nested ones inside it), now() is the instant the outermost scope was opened.
  class Scope {
   public:
    Scope() noexcept {
      if (scope_depth_++ == 0) scoped_now_ = std::chrono::steady_clock::now();
    }
    ~Scope() { --scope_depth_; }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
  };

 private:
  static inline thread_local int scope_depth_ = 0;
  static inline thread_local time_point scoped_now_{};
};

// The clock of the connection core (clients, servers, pools, workers).
using Clock = EventClock;

}  // namespace pgs::proxy
