// HealthMonitor against the dev primary (127.0.0.1:15432) and hot standby (127.0.0.1:15433). Waits are
// on published snapshots with deadlines. The replay-pause test always resumes replay, even on failure.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "proxy/monitor/health_monitor.h"
#include "tests/monitor/pg_helpers.h"

namespace pgs::monitor {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Snap = std::shared_ptr<const HealthSnapshot>;
using test::Conn;

MonitorOptions dev_options(Millis interval) {
  MonitorOptions o;
  o.user = ::pgs::test::kAdminUser;
  o.password = ::pgs::test::kAdminPassword;
  o.dbname = ::pgs::test::kDatabase;
  o.interval = interval;
  o.check_timeout = 1000ms;
  o.extra_conninfo = {{"sslmode", "disable"}};
  return o;
}

MonitorNode node(std::string name, uint16_t port) { return MonitorNode{std::move(name), "127.0.0.1", port, 1}; }

// A loopback TCP socket that is bound but never listens (connects are refused) or that listens but
// never accepts (connects complete in the kernel, then nothing answers). Held open so no one else
// takes the port during the test.
class FakeServer {
 public:
  explicit FakeServer(bool listen_silently) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
        (listen_silently && ::listen(fd_, 16) != 0)) {
      ADD_FAILURE() << "fake server socket";
    }
    port_ = ntohs(a.sin_port);
  }
  ~FakeServer() {
    if (fd_ >= 0) ::close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// The first snapshot newer than `after` that satisfies `pred`, or nullptr when `within` passes first.
Snap wait_for(const HealthMonitor& m, const std::function<bool(const HealthSnapshot&)>& pred, Millis within,
              uint64_t after = 0) {
  auto deadline = Clock::now() + within;
  uint64_t seen = after;
  while (Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    Snap s = m.wait_for_generation(seen, std::max(left, 1ms));
    if (!s) return nullptr;
    if (pred(*s)) return s;
    seen = s->generation;
  }
  return nullptr;
}

std::string describe(const NodeHealth& n) {
  return n.node.name + ": healthy=" + std::to_string(n.healthy) + " reachable=" + std::to_string(n.reachable) +
         " reason=" + std::string(reason_name(n.reason)) + " lag_bytes=" + std::to_string(n.lag_bytes) +
         " lag_ms=" + std::to_string(n.lag.count()) + " replay=" + HealthMonitor::format_lsn(n.replay_lsn) +
         " error='" + n.error + "'";
}

std::string describe(const Snap& s) {
  if (!s) return "(no snapshot)";
  std::string out = "gen " + std::to_string(s->generation) + "; " + describe(s->primary);
  for (const auto& r : s->replicas) out += "; " + describe(r);
  return out;
}

// Records the on_change calls (monitor thread) for the test thread.
struct ChangeLog {
  std::mutex mu;
  std::vector<std::pair<std::string, bool>> events;
  HealthMonitor::ChangeCallback callback() {
    return [this](const NodeHealth& n, const HealthSnapshot&) {
      std::lock_guard lock(mu);
      events.emplace_back(n.node.name, n.healthy);
    };
  }
  std::vector<bool> flips_of(const std::string& name) {
    std::lock_guard lock(mu);
    std::vector<bool> out;
    for (const auto& [n, h] : events) {
      if (n == name) out.push_back(h);
    }
    return out;
  }
};

class MonitorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (uint16_t port : {test::kPrimaryPort, test::kReplicaPort}) {
      Conn c = test::connect(test::superuser_conninfo(port));
      ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK) << "dev Postgres on :" << port << ": " << PQerrorMessage(c.get());
    }
    // A run killed mid-test (SIGKILL skips the guard) could have left replay paused: only this suite
    // pauses it, so a paused standby here is ours to resume.
    Conn su = test::connect(test::superuser_conninfo(test::kReplicaPort));
    if (test::scalar(su.get(), "SELECT pg_is_wal_replay_paused()") == "t") resume_replay();
  }

  // ALWAYS resumes replay (this suite is the only one that pauses it), whatever the test did.
  static void resume_replay() {
    Conn su = test::connect(test::superuser_conninfo(test::kReplicaPort), 10s);
    bool ok = false;
    test::scalar(su.get(), "SELECT pg_wal_replay_resume()", &ok);
    EXPECT_TRUE(ok) << "could not resume replay on the dev replica: " << PQerrorMessage(su.get());
  }

  // Emits `count` transactional logical messages of `bytes` each on the primary: WAL without tables.
  // Returns the primary's WAL LSN after the last commit.
  static Lsn write_wal(int count, int bytes) {
    Conn c = test::connect(test::app_conninfo(test::kPrimaryPort));
    EXPECT_EQ(PQstatus(c.get()), CONNECTION_OK) << PQerrorMessage(c.get());
    for (int i = 0; i < count; ++i) {
      bool ok = false;
      test::scalar(c.get(), "SELECT pg_logical_emit_message(true, 'pgs-monitor-test', repeat('x', " +
                                std::to_string(bytes) + "))", &ok);
      EXPECT_TRUE(ok) << PQerrorMessage(c.get());
    }
    return HealthMonitor::parse_lsn(test::scalar(c.get(), "SELECT pg_current_wal_lsn()")).value_or(0);
  }
};

TEST_F(MonitorTest, ReplicaHealthyInRecoveryPrimaryNot) {
  ChangeLog log;
  HealthMonitor m(dev_options(200ms), node("primary", test::kPrimaryPort), {node("replica1", test::kReplicaPort)},
                  log.callback());
  EXPECT_EQ(m.snapshot()->generation, 0u);
  EXPECT_FALSE(m.snapshot()->replicas[0].healthy);
  m.start();
  Snap s = wait_for(m, [](const HealthSnapshot& s) { return s.replicas[0].healthy; }, 10s);
  ASSERT_TRUE(s) << describe(m.snapshot());
  EXPECT_TRUE(s->primary_reachable);
  EXPECT_TRUE(s->primary.healthy);
  EXPECT_FALSE(s->primary.in_recovery);
  EXPECT_GT(s->primary.current_lsn, 0u);
  EXPECT_EQ(s->primary.reason, Reason::ok);
  const NodeHealth& r = s->replicas[0];
  EXPECT_TRUE(r.reachable);
  EXPECT_TRUE(r.in_recovery);
  EXPECT_FALSE(r.replay_paused);
  EXPECT_GT(r.replay_lsn, 0u);
  EXPECT_EQ(r.reason, Reason::ok);
  EXPECT_TRUE(r.error.empty());
  EXPECT_EQ(m.generation(), m.snapshot()->generation);
  m.stop();
  EXPECT_EQ(log.flips_of("primary"), std::vector<bool>{true});
  // The first verdict may be lagging_time: a write from another test may arrive just before the first
  // probe after a primary idle for over max_lag, and with no catch-up seen yet the replay age stands
  // (ApplyRound.ReplayAgeAfterAnIdlePrimaryIsBoundedByTheLastCatchUp). Then healthy, and it stays so.
  const std::vector<bool> flips = log.flips_of("replica1");
  ASSERT_FALSE(flips.empty());
  EXPECT_TRUE(flips.back());
  EXPECT_LE(flips.size(), 2u);
}

TEST_F(MonitorTest, LagBytesGoToZeroAfterAWrite) {
  HealthMonitor m(dev_options(100ms), node("primary", test::kPrimaryPort), {node("replica1", test::kReplicaPort)});
  m.start();
  ASSERT_TRUE(wait_for(m, [](const HealthSnapshot& s) { return s.replicas[0].healthy; }, 10s)) << describe(m.snapshot());
  Lsn written = write_wal(1, 200000);
  ASSERT_GT(written, 0u);
  // Replayed past the 200 kB write, and at most a few pages behind the primary: ~0, with room for the
  // traffic of other tests sharing the dev primary (a checkpoint's full-page images are 8 kB each).
  Snap s = wait_for(m, [&](const HealthSnapshot& s) {
    return s.primary_lsn >= written && s.replicas[0].replay_lsn >= written && s.replicas[0].lag_bytes <= 65536;
  }, 15s);
  ASSERT_TRUE(s) << "written " << HealthMonitor::format_lsn(written) << "; " << describe(m.snapshot());
  EXPECT_TRUE(s->replicas[0].healthy);
  EXPECT_LE(s->replicas[0].lag, 1000ms);
}

TEST_F(MonitorTest, DeadReplicasAreDownWithinTwoIntervalsOthersUnaffected) {
  FakeServer refusing(false);
  FakeServer silent(true);
  MonitorOptions o = dev_options(300ms);
  o.check_timeout = 800ms;  // the live nodes must log in (SCRAM) within it, even on a busy machine
  ChangeLog log;
  HealthMonitor m(o, node("primary", test::kPrimaryPort),
                  {node("refusing", refusing.port()), node("replica1", test::kReplicaPort), node("silent", silent.port())},
                  log.callback());
  auto started = Clock::now();
  m.start();
  // The first round (generation 1, well within two intervals) already has every verdict.
  Snap s = wait_for(m, [](const HealthSnapshot& s) { return s.generation >= 1; }, 5s);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->generation, 1u);
  auto first_round = s->taken_at - started;
  EXPECT_LT(first_round, o.check_timeout + 1000ms) << "a silent node must not stall the round past its deadline";
  EXPECT_FALSE(s->replicas[0].healthy);
  EXPECT_FALSE(s->replicas[0].reachable);
  EXPECT_EQ(s->replicas[0].reason, Reason::unreachable) << describe(s);
  EXPECT_FALSE(s->replicas[0].error.empty());
  EXPECT_FALSE(s->replicas[2].healthy);
  EXPECT_EQ(s->replicas[2].reason, Reason::timeout) << describe(s);
  EXPECT_TRUE(s->replicas[1].healthy) << describe(s);
  EXPECT_TRUE(s->primary_reachable) << describe(s);
  // Two intervals later they are still down (reconnect backoff), and the real replica still up.
  s = wait_for(m, [](const HealthSnapshot& s) { return s.generation >= 3; }, 5s);
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->replicas[0].healthy);
  EXPECT_FALSE(s->replicas[2].healthy);
  EXPECT_TRUE(s->replicas[1].healthy) << describe(s);
  m.stop();
  EXPECT_EQ(log.flips_of("refusing"), std::vector<bool>{false});
  EXPECT_EQ(log.flips_of("silent"), std::vector<bool>{false});
  EXPECT_EQ(log.flips_of("replica1"), std::vector<bool>{true});
}

TEST_F(MonitorTest, StopIsPromptDuringASilentCheck) {
  FakeServer silent(true);
  MonitorOptions o = dev_options(100ms);
  o.check_timeout = 10s;
  HealthMonitor m(o, node("primary", test::kPrimaryPort), {node("silent", silent.port())});
  m.start();
  ASSERT_TRUE(wait_for(m, [](const HealthSnapshot&) { return true; }, 300ms) == nullptr);  // stuck on "silent"
  auto t0 = Clock::now();
  m.stop();
  EXPECT_LT(Clock::now() - t0, 1s);
  EXPECT_EQ(m.generation(), 0u);
}

TEST_F(MonitorTest, UpdateOptionsCutsTheWaitShort) {
  HealthMonitor m(dev_options(60s), node("primary", test::kPrimaryPort), {node("replica1", test::kReplicaPort)});
  m.start();
  ASSERT_TRUE(wait_for(m, [](const HealthSnapshot& s) { return s.generation >= 1; }, 5s));
  MonitorOptions faster = dev_options(100ms);
  faster.rise = 3;
  m.update_options(faster);
  EXPECT_EQ(m.options().interval, 100ms);
  EXPECT_EQ(m.options().rise, 3);
  // Without the update the next round would be a minute away.
  Snap s = wait_for(m, [](const HealthSnapshot& s) { return s.generation >= 3; }, 5s);
  ASSERT_TRUE(s) << describe(m.snapshot());
  EXPECT_TRUE(s->replicas[0].healthy) << describe(s);
  m.stop();
  m.start();  // restart after stop: checks resume, the snapshot history carries on
  ASSERT_TRUE(wait_for(m, [](const HealthSnapshot& s) { return s.generation >= 4; }, 5s));
}

// With an idle cadence the monitor probes every idle_interval until someone wants fresh positions;
// then every `interval` for the next idle_interval, and back. Rounds never start early, so "no round
// within 1 s of a 3 s idle period" holds on any machine; the fast rounds get generous deadlines that
// are still well inside one idle period.
TEST_F(MonitorTest, IdleCadenceUntilFreshPositionsAreWanted) {
  MonitorOptions o = dev_options(20ms);
  o.idle_interval = 3s;
  HealthMonitor m(o, node("primary", test::kPrimaryPort), {node("replica1", test::kReplicaPort)});
  m.start();
  Snap first = wait_for(m, [](const HealthSnapshot& s) { return s.generation >= 1; }, 5s);
  ASSERT_TRUE(first) << describe(m.snapshot());
  EXPECT_EQ(m.wait_for_generation(first->generation, 1s), nullptr) << "a round within 1 s of a 3 s idle period";

  auto asked = Clock::now();
  m.want_fresh();  // cuts the idle wait short: the next round starts at once
  Snap woken = m.wait_for_generation(first->generation, 1500ms);
  ASSERT_TRUE(woken) << "want_fresh() did not start a round";
  // Then rounds every 20 ms: ten more well within one idle period.
  Snap fast = wait_for(m, [&](const HealthSnapshot& s) { return s.generation >= woken->generation + 10; }, 2s,
                       woken->generation);
  ASSERT_TRUE(fast) << describe(m.snapshot());
  EXPECT_LT(Clock::now() - asked, 2500ms);

  // Nobody asks again: one idle period after the last want_fresh() the cadence is idle again.
  Snap idle = wait_for(
      m, [&](const HealthSnapshot& s) { return s.taken_at > asked + 3s + 100ms; }, 8s, fast->generation);
  ASSERT_TRUE(idle) << describe(m.snapshot());
  EXPECT_EQ(m.wait_for_generation(idle->generation, 1s), nullptr) << "still fast after the hold ended";
  m.stop();
}

// A reload that sets idle_interval takes effect at the monitor's next wake-up; one that clears it
// brings back a round every interval.
TEST_F(MonitorTest, AReloadSetsAndClearsTheIdleCadence) {
  HealthMonitor m(dev_options(20ms), node("primary", test::kPrimaryPort), {node("replica1", test::kReplicaPort)});
  m.start();
  ASSERT_TRUE(wait_for(m, [](const HealthSnapshot& s) { return s.generation >= 2; }, 5s)) << describe(m.snapshot());
  MonitorOptions idle = dev_options(20ms);
  idle.idle_interval = 3s;
  m.update_options(idle);
  EXPECT_EQ(m.options().idle_interval, 3s);
  // The round that may already be under way when the reload lands, then none for a second.
  Snap settled = wait_for(m, [](const HealthSnapshot&) { return true; }, 1s, m.generation());
  uint64_t g = settled ? settled->generation : m.generation();
  EXPECT_EQ(m.wait_for_generation(g, 1s), nullptr) << "a round within 1 s of a 3 s idle period";
  m.update_options(dev_options(20ms));  // idle_interval 0 again
  ASSERT_TRUE(wait_for(m, [&](const HealthSnapshot& s) { return s.generation >= g + 5; }, 2s))
      << "no round every 20 ms after the idle cadence was cleared: " << describe(m.snapshot());
  m.stop();
}

// Without idle_interval (0, or not above interval) want_fresh() changes nothing: every interval.
TEST_F(MonitorTest, NoIdleCadenceByDefault) {
  HealthMonitor m(dev_options(50ms), node("primary", test::kPrimaryPort), {node("replica1", test::kReplicaPort)});
  m.start();
  ASSERT_TRUE(wait_for(m, [](const HealthSnapshot& s) { return s.generation >= 5; }, 5s)) << describe(m.snapshot());
  m.want_fresh();
  uint64_t g = m.generation();
  ASSERT_TRUE(wait_for(m, [&](const HealthSnapshot& s) { return s.generation >= g + 5; }, 5s));
  m.stop();
}

TEST_F(MonitorTest, SurvivesItsConnectionBeingKilled) {
  MonitorOptions o = dev_options(100ms);
  o.application_name = "pgs-monitor-kill-test";
  ChangeLog log;
  HealthMonitor m(o, node("primary", test::kPrimaryPort), {node("replica1", test::kReplicaPort)}, log.callback());
  m.start();
  ASSERT_TRUE(wait_for(m, [](const HealthSnapshot& s) { return s.replicas[0].healthy; }, 10s)) << describe(m.snapshot());
  Conn su = test::connect(test::superuser_conninfo(test::kReplicaPort));
  const std::string pid_sql = "SELECT string_agg(pid::text, ',') FROM pg_stat_activity "
                              "WHERE application_name = 'pgs-monitor-kill-test'";
  std::string before = test::scalar(su.get(), pid_sql);
  ASSERT_FALSE(before.empty()) << "one persistent monitor connection on the replica";
  std::string killed = test::scalar(su.get(), "SELECT pg_terminate_backend(" + before + ")");
  EXPECT_EQ(killed, "t");
  uint64_t after = m.generation();
  Snap s = wait_for(m, [&](const HealthSnapshot& s) { return s.generation >= after + 3; }, 5s);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->replicas[0].healthy) << describe(s);
  std::string now = test::scalar(su.get(), pid_sql);
  EXPECT_FALSE(now.empty());
  EXPECT_NE(now, before) << "a new connection replaced the killed one";
  m.stop();
  EXPECT_EQ(log.flips_of("replica1"), std::vector<bool>{true}) << "a broken idle connection is redialled in the same round";
}

TEST_F(MonitorTest, PausedReplayMakesTheReplicaLaggingThenHealthyAgain) {
  MonitorOptions o = dev_options(100ms);
  o.max_lag_bytes = 64 * 1024;
  ChangeLog log;
  HealthMonitor m(o, node("primary", test::kPrimaryPort), {node("replica1", test::kReplicaPort)}, log.callback());
  m.start();
  ASSERT_TRUE(wait_for(m, [](const HealthSnapshot& s) { return s.replicas[0].healthy; }, 10s)) << describe(m.snapshot());

  struct ResumeOnExit {
    ~ResumeOnExit() { resume_replay(); }
  } resume_guard;
  {
    Conn su = test::connect(test::superuser_conninfo(test::kReplicaPort));
    bool ok = false;
    test::scalar(su.get(), "SELECT pg_wal_replay_pause()", &ok);
    ASSERT_TRUE(ok) << PQerrorMessage(su.get());
  }
  Lsn written = write_wal(20, 100000);  // ~2 MB of WAL the standby receives but does not replay
  Snap s = wait_for(m, [&](const HealthSnapshot& s) { return !s.replicas[0].healthy; }, 10s);
  ASSERT_TRUE(s) << describe(m.snapshot());
  EXPECT_EQ(s->replicas[0].reason, Reason::lagging_bytes) << describe(s);
  EXPECT_GT(s->replicas[0].lag_bytes, o.max_lag_bytes);
  EXPECT_TRUE(s->replicas[0].reachable);
  EXPECT_TRUE(s->primary_reachable);
  EXPECT_TRUE(wait_for(m, [](const HealthSnapshot& s) { return s.replicas[0].replay_paused; }, 5s));

  resume_replay();
  s = wait_for(m, [&](const HealthSnapshot& s) { return s.replicas[0].healthy; }, 20s);
  ASSERT_TRUE(s) << describe(m.snapshot());
  EXPECT_GE(s->replicas[0].replay_lsn, written);
  EXPECT_GE(s->replicas[0].consecutive_ok, 2u) << "comes back only after rise = 2 good checks";
  m.stop();
  EXPECT_EQ(log.flips_of("replica1"), (std::vector<bool>{true, false, true}));
}

}  // namespace
}  // namespace pgs::monitor
