// Whether the primary accepts connections, for /readyz, without blocking the HTTP thread.
//
// A ping (libpq PQpingParams, postgres_reachable()) can take its whole connect timeout when the
// primary accepts TCP and never answers, and the HTTP server runs its handlers one at a time: a ping
// on the HTTP thread would stall /metrics too. So the ping runs on this object's own thread, and a
// caller only reads the latest answer, asking for a fresh one when it is older than `max_age`.
//
// Threads: reachable() from any thread; the constructor and destructor from the owner.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace pgs::proxy::admin {

class ReachabilityProbe {
 public:
  using Millis = std::chrono::milliseconds;
  using Ping = std::function<bool(const std::string& host, uint16_t port)>;

  // `ping` blocks for at most its own timeout (default: postgres_reachable with 2 s). The thread
  // starts at once and pings only when asked.
  explicit ReachabilityProbe(Ping ping = {}, Millis max_age = Millis(1000));
  ~ReachabilityProbe();  // joins the thread: waits for a ping in progress (at most its timeout)
  ReachabilityProbe(const ReachabilityProbe&) = delete;
  ReachabilityProbe& operator=(const ReachabilityProbe&) = delete;

  // The latest answer for host:port. Asks for a new ping when there is none for this target or it is
  // older than max_age (and none is running). Waits only while this target has no answer at all,
  // and then only until `first_wait` after the target was first asked for (so a hung first ping
  // costs callers that much once, not per call); no answer yet counts as unreachable.
  bool reachable(const std::string& host, uint16_t port, Millis first_wait = Millis(250));

 private:
  using Clock = std::chrono::steady_clock;
  void run();

  Ping ping_;
  Millis max_age_;
  std::mutex mutex_;
  std::condition_variable wake_;      // the thread: a ping was asked for, or stop
  std::condition_variable answered_;  // callers waiting for a first answer
  std::string host_;                  // the target of the answer below (guarded by mutex_)
  uint16_t port_ = 0;
  Clock::time_point target_since_{};  // when host_:port_ was first asked for
  std::optional<bool> answer_;
  Clock::time_point answered_at_{};
  bool asked_ = false;    // a ping is wanted
  bool running_ = false;  // a ping is in progress
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace pgs::proxy::admin
