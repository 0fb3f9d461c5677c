#include "proxy/admin/reachability.h"

#include <pthread.h>

#include "proxy/admin/http_endpoints.h"

namespace pgs::proxy::admin {

ReachabilityProbe::ReachabilityProbe(Ping ping, Millis max_age) : ping_(std::move(ping)), max_age_(max_age) {
  if (!ping_) ping_ = [](const std::string& host, uint16_t port) { return postgres_reachable(host, port, 2); };
  thread_ = std::thread([this] { run(); });
}

ReachabilityProbe::~ReachabilityProbe() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  answered_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool ReachabilityProbe::reachable(const std::string& host, uint16_t port, Millis first_wait) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (host != host_ || port != port_) {  // a new target (first call, or a changed config)
    host_ = host;
    port_ = port;
    answer_.reset();
    target_since_ = Clock::now();
  }
  const bool stale = !answer_ || Clock::now() - answered_at_ >= max_age_;
  if (stale && !running_ && !asked_) {
    asked_ = true;
    wake_.notify_one();
  }
  if (!answer_ && first_wait.count() > 0) {
    answered_.wait_until(lock, target_since_ + first_wait, [&] { return answer_.has_value() || stopping_; });
  }
  return answer_.value_or(false);
}

void ReachabilityProbe::run() {
  pthread_setname_np(pthread_self(), "pgs-reachable");  // names in top -H, ps -L, perf: 15 bytes at most
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return asked_ || stopping_; });
    if (stopping_) return;
    asked_ = false;
    running_ = true;
    const std::string host = host_;
    const uint16_t port = port_;
    lock.unlock();
    const bool ok = ping_(host, port);
    lock.lock();
    running_ = false;
    if (host == host_ && port == port_) {  // else the target changed meanwhile: the answer is not its
      answer_ = ok;
      answered_at_ = Clock::now();
    }
    answered_.notify_all();
  }
}

}  // namespace pgs::proxy::admin
