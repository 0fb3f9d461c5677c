// HealthMonitor: the replica health/lag monitor behind read/write routing. Its own thread checks the
// primary and every replica each `interval` (each `idle_interval` while nobody wants fresh
// positions: want_fresh()), all in parallel over persistent libpq connections, and
// publishes an immutable HealthSnapshot that worker threads read without waiting on the checks.
//
// Threads: snapshot(), generation() and wait_for_generation() from any thread; start() and stop()
// from the owner; on_change runs on the monitor thread (keep it short, never call stop() from it).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "proxy/monitor/health_types.h"

namespace pgs::monitor {

class NodeProbe;

class HealthMonitor {
 public:
  // Called after a snapshot is published, once per node whose `healthy` flipped or that got its first
  // verdict. The references live only during the call.
  using ChangeCallback = std::function<void(const NodeHealth& node, const HealthSnapshot& snapshot)>;

  // Throws std::system_error when it cannot make its eventfd (start-up only).
  HealthMonitor(MonitorOptions options, MonitorNode primary, std::vector<MonitorNode> replicas,
                ChangeCallback on_change = {});
  ~HealthMonitor();  // stop()
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  // Starts the thread; the first round begins at once. start() after stop() resumes checking.
  void start();
  // Wakes the thread out of any wait or check and joins it: bounded by one probe step (no blocking
  // libpq call is made, except a host name lookup). Idempotent. Connections are closed.
  void stop() noexcept;

  // The latest snapshot (generation 0 before the first round ends). Cheap: a lock and a refcount.
  std::shared_ptr<const HealthSnapshot> snapshot() const;
  // Rounds completed so far; lock-free, so a worker can re-read snapshot() only when it moved.
  uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }
  // Waits until a snapshot newer than `after` is published; nullptr on timeout or when stopped.
  std::shared_ptr<const HealthSnapshot> wait_for_generation(uint64_t after, Millis timeout) const;

  // Reload (SIGHUP): takes interval, idle_interval, check_timeout, max_lag, max_lag_bytes, rise, fall and
  // reconnect_backoff_max from `options` at the next wake-up of the monitor thread (the wait between
  // rounds is cut short; a round in progress finishes first). Login and node changes need a new
  // HealthMonitor. Any thread. Snapshots keep their hysteresis state across the change.
  void update_options(const MonitorOptions& options);
  MonitorOptions options() const;  // a copy of the options in force (or pending)

  // A read is waiting for a replica to be seen past its client's LSN floor, or a replica just failed:
  // rounds start every `interval` (not `idle_interval`) for the next idle_interval, and a wait for an
  // idle round is cut short. Any thread; a relaxed load when the fast period was renewed recently, so
  // a worker may call it for every such read.
  void want_fresh() noexcept;

  // pg_lsn text <-> integer ("16/B374D848" <-> 0x16B374D848), same as router/lsn.h.
  static std::optional<uint64_t> parse_lsn(std::string_view text);
  static std::string format_lsn(uint64_t lsn);

 private:
  void run() noexcept;
  // Waits for the next round; false when stopping. Applies pending options on the way.
  bool wait_next_round(std::chrono::steady_clock::time_point round_start, std::vector<std::unique_ptr<NodeProbe>>& probes);
  bool take_pending_options(std::vector<std::unique_ptr<NodeProbe>>& probes);  // true when something changed
  void drain_wake_fd() const;
  void set_fast_hold();  // from options_ (monitor thread, or the constructor)
  // The wait between round starts now: `interval` within a want_fresh() period, else idle_interval.
  std::chrono::steady_clock::duration period(std::chrono::steady_clock::time_point now) const;
  void publish(HealthSnapshot next);

  MonitorOptions options_;  // written under mutex_ by the monitor thread only; read there without it
  std::optional<MonitorOptions> pending_options_;  // guarded by mutex_
  MonitorNode primary_;
  std::vector<MonitorNode> replicas_;
  ChangeCallback on_change_;

  mutable std::mutex mutex_;
  mutable std::condition_variable published_;
  std::shared_ptr<const HealthSnapshot> snapshot_;  // guarded by mutex_
  std::atomic<uint64_t> generation_{0};
  // want_fresh(): rounds run every `interval` until this steady-clock tick count; its renewals extend it
  // by fast_hold_ (idle_interval; 0 when there is no idle cadence, so want_fresh() does nothing).
  std::atomic<int64_t> fast_until_{0};
  std::atomic<int64_t> fast_hold_{0};
  std::atomic<bool> stopping_{false};
  int wake_fd_ = -1;  // eventfd for the object's life: stop() and update_options() write it, the
                      // thread polls it with every wait
  std::thread thread_;
};

}  // namespace pgs::monitor
