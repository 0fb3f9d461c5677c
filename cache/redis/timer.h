// A libuv timer owned by an object that may be destroyed at any moment: the uv_timer_t lives in a
// heap box that outlives its owner until libuv's close callback frees it (STYLE.md 6).
// Thread affinity: the loop's thread. After the owner is destroyed the loop must run once more.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>

namespace pgs::cache::redis {

class Timer {
 public:
  Timer(uv_loop_t* loop, std::function<void()> fire);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void start(std::chrono::milliseconds after);  // (re)arms, one shot
  void stop();
  bool active() const;

 private:
  struct Box {
    uv_timer_t handle;
    Timer* owner;
  };
  static void on_fire(uv_timer_t* handle) noexcept;
  Box* box_;
  std::function<void()> fire_;
};

}  // namespace pgs::cache::redis
