// One monitored node's libpq connection and its check, driven without blocking: the monitor thread
// runs every node's check at once in one poll() loop (run_round), so a dead or silent node costs the
// others nothing beyond the round's deadline. Thread affinity: the monitor thread only.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "proxy/monitor/health_eval.h"
#include "proxy/monitor/health_types.h"

typedef struct pg_conn PGconn;

namespace pgs::monitor {

class NodeProbe {
 public:
  using Clock = std::chrono::steady_clock;
  NodeProbe(const MonitorNode& node, const MonitorOptions& options);
  ~NodeProbe();
  NodeProbe(const NodeProbe&) = delete;
  NodeProbe& operator=(const NodeProbe&) = delete;

  // New interval / timeouts / backoff limit after a reload (the conninfo stays as constructed).
  void update_timing(const MonitorOptions& options) { options_ = options; }
  // Starts this round's check: reuses the open connection, or connects when the reconnect backoff
  // has passed, or finishes at once with Reason::backoff.
  void begin(Clock::time_point round_start);
  bool active() const { return phase_ == Phase::connecting || phase_ == Phase::querying; }
  int socket() const;   // valid while active()
  short events() const; // POLLIN / POLLOUT wanted while active()
  void on_ready();      // the socket is ready (or errored): advance as far as possible without blocking
  void expire();        // the round's deadline passed: abandon the check (Reason::timeout)
  // The check's outcome; on failure closes the connection and schedules the next attempt.
  ProbeResult finish(Clock::time_point round_start);

 private:
  enum class Phase { idle, connecting, querying, done };
  void start_connect();
  void send_query();
  void read_results();
  void fail(Reason reason, std::string error);
  void drop();
  bool retry_fresh();  // a reused connection broke: reconnect once within this round

  std::vector<std::string> keys_;
  std::vector<std::string> values_;
  MonitorOptions options_;
  PGconn* conn_ = nullptr;
  Phase phase_ = Phase::idle;
  short want_ = 0;
  bool reused_ = false;
  bool retried_ = false;
  ProbeResult result_;
  std::optional<ProbeResult> row_;  // the probe row, once read (the final result may still be pending)
  std::string row_error_;
  std::string last_error_;
  Millis backoff_{0};
  Clock::time_point next_connect_{};
};

// Runs one round: polls every active probe until all are done or `deadline` passes (the rest expire).
// Returns false at once when `wake_fd` becomes readable with `stopping` set; other wake-ups (an
// options update) are drained here, and the caller applies the update after the round.
bool run_round(std::span<const std::unique_ptr<NodeProbe>> probes, NodeProbe::Clock::time_point deadline,
               int wake_fd, const std::atomic<bool>& stopping);

}  // namespace pgs::monitor
