#include "proxy/monitor/health_monitor.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "proxy/monitor/health_eval.h"
#include "proxy/monitor/node_probe.h"
#include "router/lsn.h"

namespace pgs::monitor {

using Clock = std::chrono::steady_clock;

HealthMonitor::HealthMonitor(MonitorOptions options, MonitorNode primary, std::vector<MonitorNode> replicas,
                             ChangeCallback on_change)
    : options_(std::move(options)),
      primary_(std::move(primary)),
      replicas_(std::move(replicas)),
      on_change_(std::move(on_change)) {
  if (options_.interval.count() <= 0) options_.interval = Millis{1000};
  if (options_.check_timeout.count() <= 0) options_.check_timeout = Millis{1000};
  set_fast_hold();
  snapshot_ = std::make_shared<const HealthSnapshot>(initial_snapshot(primary_, replicas_));
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

HealthMonitor::~HealthMonitor() {
  stop();
  ::close(wake_fd_);
}

void HealthMonitor::start() {
  if (thread_.joinable()) return;
  drain_wake_fd();  // a restart after stop(): forget the old wake-ups
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void HealthMonitor::stop() noexcept {
  if (thread_.joinable()) {
    stopping_ = true;
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
    (void)ignored;
    {
      std::lock_guard lock(mutex_);  // wakes wait_for_generation() callers
    }
    published_.notify_all();
    thread_.join();
  }
}

std::shared_ptr<const HealthSnapshot> HealthMonitor::snapshot() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

std::shared_ptr<const HealthSnapshot> HealthMonitor::wait_for_generation(uint64_t after, Millis timeout) const {
  std::unique_lock lock(mutex_);
  bool ok = published_.wait_for(lock, timeout, [&] { return snapshot_->generation > after || stopping_.load(); });
  if (!ok || snapshot_->generation <= after) return nullptr;
  return snapshot_;
}

std::optional<uint64_t> HealthMonitor::parse_lsn(std::string_view text) { return router::parse_lsn(text); }

std::string HealthMonitor::format_lsn(uint64_t lsn) { return router::format_lsn(lsn); }

void HealthMonitor::update_options(const MonitorOptions& options) {
  {
    std::lock_guard lock(mutex_);
    pending_options_ = options;
  }
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
  (void)ignored;
}

MonitorOptions HealthMonitor::options() const {
  std::lock_guard lock(mutex_);
  return pending_options_ ? *pending_options_ : options_;
}

void HealthMonitor::drain_wake_fd() const {
  uint64_t count = 0;
  ssize_t ignored = ::read(wake_fd_, &count, sizeof count);
  (void)ignored;
}

bool HealthMonitor::take_pending_options(std::vector<std::unique_ptr<NodeProbe>>& probes) {
  std::lock_guard lock(mutex_);
  if (!pending_options_) return false;
  const MonitorOptions& o = *pending_options_;
  if (o.interval.count() > 0) options_.interval = o.interval;
  if (o.check_timeout.count() > 0) options_.check_timeout = o.check_timeout;
  options_.max_lag = o.max_lag;
  options_.max_lag_bytes = o.max_lag_bytes;
  options_.rise = o.rise;
  options_.fall = o.fall;
  options_.reconnect_backoff_max = o.reconnect_backoff_max;
  options_.idle_interval = o.idle_interval;
  set_fast_hold();
  pending_options_.reset();
  for (auto& p : probes) p->update_timing(options_);
  return true;
}

void HealthMonitor::set_fast_hold() {
  const bool idle_cadence = options_.idle_interval > options_.interval;
  fast_hold_.store(idle_cadence ? std::chrono::duration_cast<Clock::duration>(options_.idle_interval).count() : 0,
                   std::memory_order_relaxed);
}

void HealthMonitor::want_fresh() noexcept {
  const int64_t hold = fast_hold_.load(std::memory_order_relaxed);
  if (hold == 0) return;
  const int64_t now = Clock::now().time_since_epoch().count();
  // Renewed less than half a hold ago: nothing to do (no shared store per read under steady demand).
  if (fast_until_.load(std::memory_order_relaxed) - now > hold / 2) return;
  if (fast_until_.exchange(now + hold, std::memory_order_relaxed) <= now) {
    uint64_t one = 1;  // the monitor may be sleeping out an idle period: let it re-plan
    ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
    (void)ignored;
  }
}

Clock::duration HealthMonitor::period(Clock::time_point now) const {
  const bool fast = options_.idle_interval <= options_.interval ||
                    now.time_since_epoch().count() < fast_until_.load(std::memory_order_relaxed);
  return fast ? options_.interval : options_.idle_interval;
}

bool HealthMonitor::wait_next_round(Clock::time_point round_start, std::vector<std::unique_ptr<NodeProbe>>& probes) {
  take_pending_options(probes);
  for (;;) {
    if (stopping_) return false;
    auto now = Clock::now();
    auto when = round_start + period(now);
    if (now >= when) return true;
    pollfd fd{wake_fd_, POLLIN, 0};
    auto left = std::chrono::ceil<Millis>(when - now).count();
    if (::poll(&fd, 1, static_cast<int>(std::min<int64_t>(left, 60000))) > 0) {
      if (stopping_) return false;
      drain_wake_fd();
      take_pending_options(probes);  // the loop re-plans: a new interval, or want_fresh()
    }
  }
}

void HealthMonitor::publish(HealthSnapshot next) {
  auto fresh = std::make_shared<const HealthSnapshot>(std::move(next));
  std::shared_ptr<const HealthSnapshot> prev;
  {
    std::lock_guard lock(mutex_);
    prev = snapshot_;
    snapshot_ = fresh;
    generation_.store(fresh->generation, std::memory_order_release);
  }
  published_.notify_all();
  if (!on_change_) return;
  for (int i : changed_nodes(*prev, *fresh)) {
    const NodeHealth& node = i < 0 ? fresh->primary : fresh->replicas[static_cast<size_t>(i)];
    try {
      on_change_(node, *fresh);
    } catch (...) {
      // A logging callback must not take the monitor down; nothing useful to do with its failure.
    }
  }
}

// Rounds start every interval (idle_interval while nobody wants fresh positions), measured from the
// start of the previous one, or at once when it overran (missed rounds are skipped, not made up).
void HealthMonitor::run() noexcept {
  pthread_setname_np(pthread_self(), "pgs-health");  // names in top -H, ps -L, perf: 15 bytes at most
  std::vector<std::unique_ptr<NodeProbe>> probes;
  probes.push_back(std::make_unique<NodeProbe>(primary_, options_));
  for (const MonitorNode& r : replicas_) probes.push_back(std::make_unique<NodeProbe>(r, options_));
  while (!stopping_) {
    take_pending_options(probes);
    auto round_start = Clock::now();
    for (auto& p : probes) p->begin(round_start);
    if (!run_round(probes, round_start + options_.check_timeout, wake_fd_, stopping_)) break;
    std::vector<ProbeResult> results;
    results.reserve(probes.size());
    for (auto& p : probes) results.push_back(p->finish(round_start));
    std::span<const ProbeResult> replica_results(results.data() + 1, results.size() - 1);
    publish(apply_round(*snapshot(), results[0], replica_results, options_, Clock::now()));
    if (!wait_next_round(round_start, probes)) break;
  }
}

}  // namespace pgs::monitor
