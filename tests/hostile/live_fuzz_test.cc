// A protocol fuzzer against the live proxy: several connections log in properly (some mutate their
// startup or authentication instead) and then send mutated sequences of valid frontend messages
// (type bytes changed, lengths changed, truncated, spliced, repeated, bit-flipped, random bytes
// inserted), reading replies with deadlines, while an honest client runs marked queries. After the
// run: the proxy is alive, the honest client works and sees none of the fuzzers' state, no server
// is leaked (SHOW POOLS, TCP count), RSS is back within start + 64 MB, and no fuzz connection ever
// received an honest row.
//
// Environment: FUZZ_LIVE_SEED (default 20261206; printed), FUZZ_LIVE_SECONDS (default 20),
// FUZZ_LIVE_CONNS (concurrent fuzz connections, default 4).
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "tests/hostile/hostile_fixture.h"

namespace pgs::it::hostile {
namespace {

using Clock = std::chrono::steady_clock;

uint32_t get_be32(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) | (uint32_t(uint8_t(s[at + 2])) << 8) |
         uint32_t(uint8_t(s[at + 3]));
}

std::string hex(const std::string& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char ch : bytes) {
    out += kDigits[ch >> 4];
    out += kDigits[ch & 15];
  }
  return out;
}

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

// What all fuzz threads saw (guarded by mu).
struct Tally {
  std::mutex mu;
  uint64_t sessions = 0, batches = 0, bytes = 0, closes = 0, send_stalls = 0, login_failures = 0;
  uint64_t probes = 0, hangs = 0;  // end-of-session liveness probes, and those never answered
  std::map<std::string, uint64_t> sqlstates;
  std::string connection_errors;  // the first message of each class-08 SQLSTATE but 08P01
  std::string foreign;     // first honest marker a fuzz connection received
  std::string first_hang;  // hex of the first hanging session's bytes
  std::string foreign_session, foreign_replies;  // what that session sent (hex) and received
  std::FILE* trace = nullptr;  // FUZZ_LIVE_TRACE: every session's bytes and ending, for a replay
};

class Fuzzer {
 public:
  Fuzzer(Proxy& p, uint64_t seed, Tally& tally) : p_(p), rng_(seed), tally_(tally) {}

  void run_until(Clock::time_point end) {
    while (Clock::now() < end) session(end);
  }

 private:
  uint32_t pick(uint32_t n) { return std::uniform_int_distribution<uint32_t>(0, n - 1)(rng_); }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }

  std::string random_sql() {
    static const char* const kSql[] = {
        "SELECT 1",
        "SELECT 'fuzz-own', g FROM generate_series(1, 50) g",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "SELECT 1/0",
        "SET application_name = 'fuzz'",
        "SET statement_timeout = '7777ms'",
        "COPY hostile_rows FROM STDIN",
        "COPY (SELECT g FROM generate_series(1, 100) g) TO STDOUT",
        "SELECT pg_sleep(0.02)",
        "",
        "PREPARE fuzz_p AS SELECT 'hostile-secret'",
        "EXECUTE fuzz_p",
        "DEALLOCATE ALL",
        "DISCARD ALL",
        "LISTEN fuzz_chan",
        "SELECT pg_try_advisory_lock(424242)",
        "SELECT $1::int",
        "INSERT INTO hostile_rows VALUES (1, 'hostile-secret')",
    };
    return kSql[pick(sizeof kSql / sizeof kSql[0])];
  }

  // One valid frontend message (or a small valid group).
  std::string valid_message() {
    static const char* const kNames[] = {"", "s1", "pgsidecar_1", "fuzz_p"};
    std::string name = kNames[pick(4)];
    switch (pick(12)) {
      case 0: case 1: return query_message(random_sql());
      case 2: return parse_msg(name, random_sql(), chance(0.5) ? std::vector<uint32_t>{} : std::vector<uint32_t>{23});
      case 3: return bind_msg("", name, chance(0.5) ? std::vector<std::optional<std::string>>{}
                                                    : std::vector<std::optional<std::string>>{std::string("7")});
      case 4: return describe_msg(chance(0.5) ? 'S' : 'P', name);
      case 5: return execute_msg("", int32_t(pick(3)));
      case 6: case 7: return sync_msg();
      case 8: return chance(0.5) ? flush_msg() : close_msg(chance(0.5) ? 'S' : 'P', name);
      case 9: return chance(0.6) ? copy_data_msg(std::to_string(pick(100)) + "\tfuzz\n")
                                 : (chance(0.5) ? copy_done_msg() : copy_fail_msg("fuzz"));
      case 10: return function_call_msg(chance(0.8) ? 2026 : pick(5000), {});
      default:
        return parse_msg("", random_sql()) + bind_msg("", "") + describe_msg('P', "") + execute_msg("") + sync_msg();
    }
  }

  void set_length(std::string& m, uint32_t len) {
    if (m.size() >= 5) {
      std::string l = be32(len);
      m.replace(1, 4, l);
    }
  }

  // Mutates one message in place; false when the message's framing (type byte, length, size) may no
  // longer be what a server expects, so later bytes can be read as part of it.
  bool mutate(std::string& m, const std::string& other) {
    if (m.empty()) {
      m = other;
      return false;
    }
    uint32_t r = pick(100);
    if (r < 30) {  // bit flip in the first message's body (m may hold several): framing intact
      size_t first_end = m.size() < 5 ? m.size() : std::min(m.size(), size_t(1) + get_be32(m, 1));
      if (first_end > 5) m[5 + pick(uint32_t(first_end - 5))] ^= char(1u << pick(8));
      return true;
    }
    if (r < 45) {  // repeat the whole message
      std::string once = m;
      for (uint32_t k = pick(40); k > 0; --k) m += once;
      return true;
    }
    if (r < 55) {  // a whole other message first
      m = other + m;
      return true;
    }
    if (r < 65) {  // type byte
      m[0] = char(pick(256));
      return true;  // unknown types end the connection; known ones keep the framing
    }
    if (r < 75) {  // length field
      static const uint32_t kLens[] = {0, 1, 3, 4, 5, 0x7fffffffu, 0xffffffffu, 0x40000001u};
      set_length(m, chance(0.5) ? kLens[pick(8)] : uint32_t(m.size() - 1 + pick(33) - 16));
      return false;
    }
    if (r < 85) {  // truncate
      m.resize(pick(uint32_t(m.size())));
      return false;
    }
    if (r < 93) {  // splice part of another message inside
      m.insert(pick(uint32_t(m.size())), other.substr(0, pick(uint32_t(other.size()) + 1)));
      return false;
    }
    m.insert(pick(uint32_t(m.size())), std::string(pick(16) + 1, char(pick(256))));  // random bytes
    return false;
  }

  // With the framing intact, the connection must answer a probe (or close) within a deadline: ends a
  // COPY, an extended batch and a failed transaction first. False on silence (a hang).
  bool probe_answers(RawConn& c) {
    std::string bytes = copy_fail_msg("fuzz") + sync_msg() + query_message("ROLLBACK") + query_message("SELECT 'fuzz-probe'");
    if (send_within(c, bytes, Millis(2000)) == SendResult::timed_out) return false;
    auto end = Clock::now() + Millis(5000);
    while (true) {
      auto left = std::chrono::duration_cast<Millis>(end - Clock::now());
      Verdict v = read_verdict(c, std::max(left, Millis(0)));
      note(v);
      if (v.closed) return true;
      if (v.timed_out) return false;
      for (const Row& r : data_rows(v.messages)) {
        if (!r.empty() && r[0] == "fuzz-probe") return true;
      }
    }
  }

  void note(const Verdict& v) {
    session_replies_ += all_bodies(v.messages).substr(0, 4000);
    std::lock_guard<std::mutex> lock(tally_.mu);
    if (v.error && tally_.sqlstates[v.error->sqlstate()]++ == 0 && v.error->sqlstate().rfind("08", 0) == 0 &&
        v.error->sqlstate() != "08P01") {
      tally_.connection_errors += v.error->describe() + "; ";  // first of each: worth a look
    }
    if (v.closed) ++tally_.closes;
    std::string bodies = all_bodies(v.messages);
    size_t at = bodies.find("honest-secret");
    if (at != std::string::npos && tally_.foreign.empty()) {
      tally_.foreign = bodies.substr(at, 40);
      tally_.foreign_session = hex(sent_.substr(0, 3000));
      tally_.foreign_replies = session_replies_.substr(0, 3000);
    }
  }

  // A startup or authentication phase with one mutation; the proxy must answer or close.
  void mutated_login() {
    RawConn c(p_.host(), p_.port());
    std::string startup = startup_packet({{"user", kUser}, {"database", kDatabase}});
    sent_.clear();
    if (chance(0.5)) {
      (void)mutate(startup, query_message("SELECT 1"));
      send_within(c, startup, Millis(1000));
      sent_ = startup;
    } else {
      send_within(c, startup, Millis(1000));
      c.read_message(Millis(2000));  // AuthenticationSASL
      std::string bad = password_msg("SCRAM-SHA-256");
      (void)mutate(bad, startup);
      send_within(c, bad, Millis(1000));
      sent_ = startup + bad;
    }
    note(read_verdict(c, Millis(500)));
    if (tally_.trace != nullptr) {
      std::lock_guard<std::mutex> lock(tally_.mu);
      auto ms = std::chrono::duration_cast<Millis>(Clock::now().time_since_epoch()).count();
      std::fprintf(tally_.trace, "%lld login end=3 framing=0 sent=%s\n", static_cast<long long>(ms), hex(sent_).c_str());
    }
  }

  void session(Clock::time_point end) {
    {
      std::lock_guard<std::mutex> lock(tally_.mu);
      ++tally_.sessions;
    }
    if (chance(0.1)) {
      mutated_login();
      return;
    }
    RawConn c(p_.host(), p_.port());
    if (tally_.trace != nullptr) {
      std::lock_guard<std::mutex> lock(tally_.mu);
      auto ms = std::chrono::duration_cast<Millis>(Clock::now().time_since_epoch()).count();
      std::fprintf(tally_.trace, "%lld START\n", static_cast<long long>(ms));
    }
    LoginOutcome l = login(c, kUser, kPassword, kDatabase, {{"application_name", "fuzz"}}, Millis(10000));
    if (!l.ok) {
      std::lock_guard<std::mutex> lock(tally_.mu);
      ++tally_.login_failures;
      return;
    }
    auto session_end = std::min(end, Clock::now() + Millis(200 + pick(1800)));
    bool framing_intact = true;
    std::string& sent = sent_;  // this session's bytes after login (reported for the first hang)
    sent.clear();
    session_replies_.clear();
    for (uint32_t b = pick(40) + 1; b > 0 && Clock::now() < session_end && !c.closed(); --b) {
      std::vector<std::string> msgs;
      for (uint32_t n = pick(6) + 1; n > 0; --n) msgs.push_back(valid_message());
      if (chance(0.6)) {
        for (uint32_t k = pick(2) + 1; k > 0; --k) {
          framing_intact &= mutate(msgs[pick(uint32_t(msgs.size()))], msgs[pick(uint32_t(msgs.size()))]);
        }
      }
      std::string bytes;
      for (const auto& m : msgs) bytes += m;
      sent += bytes;
      SendResult sent = send_within(c, bytes, Millis(1000));
      {
        std::lock_guard<std::mutex> lock(tally_.mu);
        ++tally_.batches;
        tally_.bytes += bytes.size();
        if (sent == SendResult::timed_out) ++tally_.send_stalls;
      }
      if (sent != SendResult::ok) break;
      note(read_verdict(c, Millis(300)));
    }
    if (framing_intact && !c.closed() && chance(0.5)) {
      bool answered = probe_answers(c);
      std::lock_guard<std::mutex> lock(tally_.mu);
      ++tally_.probes;
      if (!answered) {
        if (tally_.hangs++ == 0) tally_.first_hang = hex(sent.substr(0, 1500));
        return;
      }
    }
    uint32_t ending = pick(4);
    if (tally_.trace != nullptr) {
      std::lock_guard<std::mutex> lock(tally_.mu);
      auto ms = std::chrono::duration_cast<Millis>(Clock::now().time_since_epoch()).count();
      std::fprintf(tally_.trace, "%lld session end=%u framing=%d sent=%s\n", static_cast<long long>(ms), ending,
                   int(framing_intact), hex(sent).c_str());
    }
    switch (ending) {
      case 0: c.send(terminate_message()); break;
      case 1: c.close_with_reset(); break;
      case 2: ::shutdown(c.fd(), SHUT_WR); break;
      default: break;  // plain close
    }
  }

  Proxy& p_;
  std::string sent_, session_replies_;  // the current session's bytes sent and reply bodies
  std::mt19937_64 rng_;
  Tally& tally_;
};

// What the servers of the pool and the proxy's clients were doing (for a failure message).
std::string diagnose(Proxy& p) {
  std::string out;
  try {
    Pg su = superuser(kDatabase);
    PgResult r = su.exec(
        "SELECT pid, state, backend_xid IS NOT NULL, left(query, 60), application_name FROM pg_stat_activity "
        "WHERE datname = 'flopods' AND usename = 'flopods' AND pid <> pg_backend_pid()");
    for (int i = 0; i < r.rows(); ++i) {
      out += "  backend";
      for (int c = 0; c < 5; ++c) out += " | " + r.value(i, c);
      out += "\n";
    }
    Pg admin(p.conninfo(kAdminUser, kAdminPassword, "pgsidecar"));
    for (const char* show : {"SHOW SERVERS", "SHOW CLIENTS"}) {
      PgResult a = admin.exec(show);
      for (int i = 0; i < a.rows(); ++i) {
        out += std::string("  ") + show + ":";
        for (int c = 0; c < PQnfields(a.get()); ++c) out += std::string(" ") + PQfname(a.get(), c) + "=" + a.value(i, c);
        out += "\n";
      }
    }
  } catch (const std::exception& e) {
    out += std::string("  (diagnosis failed: ") + e.what() + ")\n";
  }
  return out;
}

class LiveFuzzTest : public ProxyTest {
 protected:
  // The whole run. `strict`: the honest client's answers during the run must all be its own and
  // arrive in time, and no fuzz connection may receive an honest row (see BUG-1 below); otherwise
  // such symptoms are counted and printed, and the honest client carries on on a new connection.
  void run(bool strict);
};

void LiveFuzzTest::run(bool strict) {
  const uint64_t seed = env_u64("FUZZ_LIVE_SEED", 20261206);
  const uint64_t seconds = env_u64("FUZZ_LIVE_SECONDS", 20);
  const uint64_t conns = std::max<uint64_t>(1, env_u64("FUZZ_LIVE_CONNS", 4));
  std::cout << "[ FUZZ     ] FUZZ_LIVE_SEED=" << seed << " FUZZ_LIVE_SECONDS=" << seconds
            << " FUZZ_LIVE_CONNS=" << conns << "\n";
  ProxyOptions o;
  o.pool_size = 2;
  o.workers = 1;
  o.query_wait_timeout = "5s";
  o.client_login_timeout = "3s";
  o.max_message_bytes = kMaxMessage;
  Proxy& p = start_proxy(o);
  {
    Pg pg(p.spec());
    ASSERT_TRUE(pg.ok()) << pg.error();
    pg.must("CREATE TABLE IF NOT EXISTS hostile_rows(id int, v text)");
  }
  HonestReport warm = check_honest(p, 2);
  ASSERT_TRUE(warm.ok()) << warm.describe();
  const long start_kb = p.rss_kb();

  Tally tally;
  if (const char* path = std::getenv("FUZZ_LIVE_TRACE")) tally.trace = std::fopen(path, "w");
  std::atomic<bool> stop{false};
  std::atomic<int> honest_ok{0}, honest_waits{0};
  std::atomic<long> honest_max_ms{0};
  std::atomic<int> honest_lost{0};
  std::string honest_problem;
  std::mutex honest_mu;
  std::atomic<int> honest_broken{0};  // lost or foreign answers (non-strict runs carry on)
  std::thread honest([&] {
    for (int n = 0; !stop.load(); ++n) {
      try {
        RawConn c(p.host(), p.port());
        LoginOutcome l = login(c, kUser, kPassword, kDatabase, {{"application_name", "honest"}});
        if (!l.ok) throw std::runtime_error("honest login: " + l.describe());
        for (int k = 0; k < 20 && !stop.load(); ++k) {
          std::string marker = "honest-secret-" + std::to_string(n) + "-" + std::to_string(k);
          auto t0 = Clock::now();
          QueryOutcome q = simple_query(c, "SELECT '" + marker + "', current_setting('application_name')", Millis(10000));
          long ms = long(std::chrono::duration_cast<Millis>(Clock::now() - t0).count());
          if (ms > honest_max_ms.load()) honest_max_ms = ms;
          if (q.error && q.error->message().find("query_wait_timeout") != std::string::npos) {
            ++honest_waits;  // the fuzzers held both servers (open transactions, LISTEN): allowed
            continue;
          }
          if (q.error && (q.error->sqlstate() == "08006" || q.error->sqlstate() == "57P01")) {
            ++honest_lost;  // the shared dev Postgres ended the server (other suites terminate backends)
            break;          // log in again
          }
          auto rows = data_rows(q.messages);
          if (q.error || q.status != 'I' || rows.size() != 1 || rows[0][0] != marker || rows[0][1] != "honest") {
            auto ms = std::chrono::duration_cast<Millis>(t0.time_since_epoch()).count();
            throw std::runtime_error("honest query (sent at " + std::to_string(ms) + ") got " +
                                     (q.error ? q.error->describe() : rows.empty() ? std::string("no rows") : rows[0][0].value_or("NULL")) +
                                     (q.status == 0 ? (q.closed ? " and the connection closed" : " and no ReadyForQuery within 10 s") : "") +
                                     " (marker " + marker + ")");
          }
          ++honest_ok;
        }
      } catch (const std::exception& e) {
        ++honest_broken;
        std::lock_guard<std::mutex> lock(honest_mu);
        if (honest_problem.empty()) honest_problem = std::string(e.what()) + "\n" + diagnose(p);
        if (strict) return;
      }
    }
  });
  const auto end = Clock::now() + std::chrono::seconds(seconds);
  std::vector<std::thread> fuzzers;
  for (uint64_t i = 0; i < conns; ++i) {
    fuzzers.emplace_back([&, i] {
      try {
        Fuzzer(p, seed + i, tally).run_until(end);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(tally.mu);
        ++tally.login_failures;
        std::cerr << "fuzz thread " << i << ": " << e.what() << "\n";
      }
    });
  }
  long peak_kb = start_kb;
  wait_until([&] { peak_kb = std::max(peak_kb, p.rss_kb()); return Clock::now() >= end || !p.alive(); },
             std::chrono::duration_cast<Millis>(end - Clock::now()) + Millis(1000), Millis(200));
  for (auto& t : fuzzers) t.join();
  if (tally.trace != nullptr) std::fclose(tally.trace);
  stop = true;
  honest.join();

  ASSERT_TRUE(p.alive()) << "the proxy died (seed " << seed << ")";
  // Nothing of the fuzz connections is visible, SQL-prepared statements included.
  HonestReport after = check_honest(p, 2, Millis(10000));
  EXPECT_TRUE(after.ok()) << "after the fuzz run (seed " << seed << "):" << after.describe();
  const long bound_kb = start_kb + 64 * 1024;
  long after_kb = p.rss_kb();
  bool within = wait_until([&] { return (after_kb = p.rss_kb()) <= bound_kb; }, Millis(10000), Millis(200));
  std::optional<PoolCounts> pools;
  bool idle = wait_until(
      [&] {
        pools = show_pools(p);
        return pools && pools->sv_active == 0 && pools->cl_active == 0 && pools->cl_waiting == 0;
      },
      Millis(5000), Millis(200));
  {
    std::lock_guard<std::mutex> lock(tally.mu);
    std::cout << "[ FUZZ     ] sessions " << tally.sessions << ", batches " << tally.batches << ", bytes " << tally.bytes
              << ", closes seen " << tally.closes << ", probes " << tally.probes << ", hangs " << tally.hangs << ", send stalls " << tally.send_stalls << ", honest ok "
              << honest_ok.load() << " (query_wait_timeout " << honest_waits.load() << ", slowest " << honest_max_ms.load() << " ms, server lost " << honest_lost.load() << ")\n[ FUZZ     ] SQLSTATEs:";
    for (const auto& [code, n] : tally.sqlstates) std::cout << ' ' << code << '=' << n;
    if (!tally.connection_errors.empty()) std::cout << "\n[ FUZZ     ] first connection errors: " << tally.connection_errors;
    std::cout << "\n[ RSS      ] pgsidecar VmRSS start " << start_kb << " kB, peak seen " << peak_kb << " kB, after "
              << after_kb << " kB (bound " << bound_kb << " kB)\n";
    EXPECT_EQ(tally.login_failures, 0u) << "proper logins failed during the run";
    EXPECT_EQ(tally.hangs, 0u) << "connections with intact framing that answered nothing (seed " << seed
                               << "); the first one sent (hex): " << tally.first_hang;
    if (strict) {
      EXPECT_EQ(tally.foreign, "") << "a fuzz connection received an honest client's row; it had sent (hex) "
                                   << tally.foreign_session << "\nand received the bodies " << tally.foreign_replies;
    } else if (!tally.foreign.empty()) {
      std::cout << "[ BUG-1    ] a fuzz connection received an honest client's row: " << tally.foreign << "\n";
    }
  }
  if (strict) {
    EXPECT_EQ(honest_problem, "") << "seed " << seed;
  } else if (!honest_problem.empty()) {
    std::cout << "[ BUG-1    ] " << honest_broken.load() << " honest answer(s) lost or wrong during the run; first: "
              << honest_problem << "\n";
  }
  EXPECT_GT(honest_ok.load(), 0) << "the honest client never got a query through";
  EXPECT_TRUE(within) << "RSS " << after_kb << " kB > start " << start_kb << " kB + 64 MB";
  EXPECT_TRUE(idle) << "SHOW POOLS after the run: "
                    << (pools ? "sv_active " + std::to_string(pools->sv_active) + " cl_active " +
                                    std::to_string(pools->cl_active) + " cl_waiting " + std::to_string(pools->cl_waiting)
                              : std::string("no answer"))
                    << "\n" << (idle ? std::string() : diagnose(p));
}

// The CI run: every invariant except the honest client's answers during the run (BUG-1).
TEST_F(LiveFuzzTest, MutatedFrontendTraffic) {
  PGS_IT_REQUIRE_PROXY();
  run(false);
}

// Was BUG-1 (critical; fixed — cause and a direct reproducer: hostile_session_test.cc
// NoStrayReadyForQueryForTheNextClient): under this fuzz load an honest client's Query is sometimes lost: it gets no
// answer at all (10 s; SHOW CLIENTS then shows it `idle` with no server link, and the pool has no
// server left), and with several fuzz connections its RowDescription/DataRow/CommandComplete/
// ReadyForQuery (and a ParameterStatus application_name=honest) were delivered to a fuzz
// connection instead: another client's rows. Seen with the default seed (about 1 run in 3), with
// FUZZ_LIVE_SEED=2 (4 connections, most runs) and FUZZ_LIVE_SEED=4 FUZZ_LIVE_CONNS=1. No log line.
// FUZZ_LIVE_TRACE=file writes every fuzz session's bytes for a replay.
TEST_F(LiveFuzzTest, HonestTrafficUntouchedDuringFuzz) {
  PGS_IT_REQUIRE_PROXY();
  run(true);
}

}  // namespace
}  // namespace pgs::it::hostile
