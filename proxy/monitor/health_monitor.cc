#include "proxy/monitor/health_monitor.h"

#include <poll.h>
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
  snapshot_ = std::make_shared<const HealthSnapshot>(initial_snapshot(primary_, replicas_));
}

HealthMonitor::~HealthMonitor() { stop(); }

void HealthMonitor::start() {
  if (thread_.joinable()) return;
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
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
  if (wake_fd_ >= 0) ::close(wake_fd_);
  wake_fd_ = -1;
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

bool HealthMonitor::wait_until(Clock::time_point when) const {
  for (;;) {
    if (stopping_) return false;
    auto now = Clock::now();
    if (now >= when) return true;
    pollfd fd{wake_fd_, POLLIN, 0};
    auto left = std::chrono::ceil<Millis>(when - now).count();
    int n = ::poll(&fd, 1, static_cast<int>(std::min<int64_t>(left, 60000)));
    if (n > 0) return false;
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

// Fixed-rate rounds: round k starts at start + k * interval, or at once when the previous one
// overran (missed rounds are skipped, not made up).
void HealthMonitor::run() noexcept {
  std::vector<std::unique_ptr<NodeProbe>> probes;
  probes.push_back(std::make_unique<NodeProbe>(primary_, options_));
  for (const MonitorNode& r : replicas_) probes.push_back(std::make_unique<NodeProbe>(r, options_));
  auto next_round = Clock::now();
  while (!stopping_) {
    auto round_start = Clock::now();
    for (auto& p : probes) p->begin(round_start);
    if (!run_round(probes, round_start + options_.check_timeout, wake_fd_)) break;
    std::vector<ProbeResult> results;
    results.reserve(probes.size());
    for (auto& p : probes) results.push_back(p->finish(round_start));
    std::span<const ProbeResult> replica_results(results.data() + 1, results.size() - 1);
    publish(apply_round(*snapshot(), results[0], replica_results, options_, Clock::now()));
    next_round += options_.interval;
    if (next_round < Clock::now()) next_round = Clock::now();
    if (!wait_until(next_round)) break;
  }
}

}  // namespace pgs::monitor
