#include "cache/redis/timer.h"

namespace pgs::cache::redis {

Timer::Timer(uv_loop_t* loop, std::function<void()> fire) : box_(new Box{}), fire_(std::move(fire)) {
  box_->owner = this;
  uv_timer_init(loop, &box_->handle);
  box_->handle.data = box_;
}

Timer::~Timer() {
  box_->owner = nullptr;
  uv_timer_stop(&box_->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&box_->handle),
           [](uv_handle_t* h) { delete static_cast<Box*>(h->data); });
}

void Timer::start(std::chrono::milliseconds after) {
  uint64_t ms = after.count() > 0 ? static_cast<uint64_t>(after.count()) : 0;
  uv_timer_start(&box_->handle, on_fire, ms, 0);
}

void Timer::stop() { uv_timer_stop(&box_->handle); }

bool Timer::active() const { return uv_is_active(reinterpret_cast<const uv_handle_t*>(&box_->handle)) != 0; }

void Timer::on_fire(uv_timer_t* handle) noexcept {
  Box* box = static_cast<Box*>(handle->data);
  if (box->owner == nullptr) return;
  try {
    box->owner->fire_();
  } catch (...) {
    // A callback must never throw into libuv; the owners' handlers do not throw, this is a backstop.
  }
}

}  // namespace pgs::cache::redis
