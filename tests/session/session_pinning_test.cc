// Issue 3, pinning: state that cannot be shared (LISTEN, session advisory locks, temp tables) keeps a
// client on its server until released (UNLISTEN *, unlock, DISCARD ALL, disconnect); while pinned, the
// server is not lent to anyone else (pool of 1: another client times out with 57014). With
// [session] pinning = "refuse" such statements fail with 0A000 and the connection stays usable.
#include <poll.h>

#include <gtest/gtest.h>

#include <string>

#include "tests/session/session_util.h"

namespace pgs::it::session {
namespace {

using PinningTest = ProxyTest;

// Waits (deadline) for a notification on `channel`; its payload, or nullopt.
std::optional<std::string> wait_notify(Pg& c, const std::string& channel, Millis deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (PQconsumeInput(c.get()) == 0) return std::nullopt;
    while (PGnotify* n = PQnotifies(c.get())) {
      std::string ch = n->relname, payload = n->extra;
      PQfreemem(n);
      if (ch == channel) return payload;
    }
    pollfd pfd{PQsocket(c.get()), POLLIN, 0};
    poll(&pfd, 1, 50);
  }
  return std::nullopt;
}

// LISTEN pins A to its server; a NOTIFY from B (another server of the pool) reaches A while A is
// idle, and again after A ran other transactions.
TEST_F(PinningTest, ListenNotifyDeliveredToPinnedClient) {
  Proxy& p = start_proxy(small_pool(2));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  a.must("LISTEN pgs_session_ch");
  b.must("NOTIFY pgs_session_ch, 'first'");
  EXPECT_EQ(wait_notify(a, "pgs_session_ch", Millis(10000)).value_or("<none>"), "first");
  const int pid = backend_pid(a);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(backend_pid(a), pid) << "a listening client stays on its server";
  b.must("SELECT pg_notify('pgs_session_ch', 'second')");
  EXPECT_EQ(wait_notify(a, "pgs_session_ch", Millis(10000)).value_or("<none>"), "second");
}

// A notification that reaches A's server while the proxy runs its own query there (the session
// probe after A's LISTEN, racing B's NOTIFY) is A's: none is ever lost.
TEST_F(PinningTest, NotificationDuringSessionProbeIsDelivered) {
  Proxy& p = start_proxy(small_pool(2));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  for (int i = 0; i < 40; ++i) {
    a.must("LISTEN pgs_session_probe_ch");  // each LISTEN is followed by a session probe
    b.must("NOTIFY pgs_session_probe_ch, '" + std::to_string(i) + "'");
    ASSERT_EQ(wait_notify(a, "pgs_session_probe_ch", Millis(5000)).value_or("<none>"), std::to_string(i))
        << "notification " << i;
  }
}

// Pool of 1: while A listens, B cannot get the only server (57014 after query_wait_timeout);
// UNLISTEN * releases it.
TEST_F(PinningTest, UnlistenAllUnpins) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start_proxy(small_pool(1, "1s"));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  a.must("LISTEN pgs_session_ch");
  EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "57014") << "the only server is pinned to A";
  EXPECT_EQ(PQstatus(b.get()), CONNECTION_OK) << "B's connection stays open after the timeout";
  a.must("UNLISTEN *");
  EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "");
}

// Pinned clients are visible: pgsidecar_pinned_clients{reason} on /metrics follows pin and release.
TEST_F(PinningTest, PinnedClientsAreCountedInMetrics) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start_proxy(small_pool(2));
  auto pinned = [&](const char* reason) {
    return metric_value(scrape_metrics(p), "pgsidecar_pinned_clients",
                        std::string("reason=\"") + reason + "\"");
  };
  ASSERT_NE(scrape_metrics(p), "") << "nothing served on the metrics port " << p.metrics_port();
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  a.must("LISTEN pgs_session_ch");
  b.must("SELECT pg_advisory_lock(99)");
  // The gauges are published periodically: wait for them (deadline) rather than read once.
  EXPECT_TRUE(wait_until([&] { return pinned("listen") == 1 && pinned("advisory_lock") == 1; },
                         Millis(5000)))
      << "listen=" << pinned("listen") << " advisory_lock=" << pinned("advisory_lock");
  a.must("UNLISTEN *");
  b.must("SELECT pg_advisory_unlock(99)");
  EXPECT_TRUE(wait_until([&] { return pinned("listen") == 0 && pinned("advisory_lock") == 0; },
                         Millis(5000)))
      << "listen=" << pinned("listen") << " advisory_lock=" << pinned("advisory_lock");
}

// A session advisory lock pins; pg_advisory_unlock releases the pin; a lock still held when the
// client disconnects is released on the server (pg_locks), and the server is usable by others.
TEST_F(PinningTest, AdvisoryLocksPinAndAreReleasedOnDisconnect) {
  Proxy& p = start_proxy(small_pool(1, "1s"));
  constexpr long kKey = 424242;
  {
    Pg a = connect(p.spec());
    Pg b = connect(p.spec());
    EXPECT_EQ(a.scalar("SELECT pg_advisory_lock(424242)::text"), "");
    EXPECT_EQ(advisory_lock_rows(kKey), 1);
    if (!p.direct()) {
      EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "57014") << "the only server is pinned to A";
    }
    EXPECT_EQ(a.scalar("SELECT pg_advisory_unlock(424242)"), "t");
    EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "") << "unlock unpins";
    EXPECT_EQ(a.scalar("SELECT pg_advisory_lock(424242)::text"), "");
    EXPECT_EQ(advisory_lock_rows(kKey), 1);
  }  // both disconnect while A holds the lock
  EXPECT_TRUE(wait_until([&] { return advisory_lock_rows(kKey) == 0; }, Millis(10000)))
      << "the advisory lock of a disconnected client must be released";
  Pg c = connect(p.spec());
  EXPECT_EQ(c.scalar("SELECT pg_try_advisory_lock(424242)"), "t");
  EXPECT_EQ(c.scalar("SELECT pg_advisory_unlock(424242)"), "t");
}

// A temp table pins A (its later transactions see the table); DISCARD ALL releases the pin.
TEST_F(PinningTest, TempTablePinsUntilDiscardAll) {
  Proxy& p = start_proxy(small_pool(1, "1s"));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  a.must("CREATE TEMP TABLE pgs_session_tmp (x int)");
  a.must("INSERT INTO pgs_session_tmp VALUES (1), (2)");
  EXPECT_EQ(a.scalar("SELECT count(*) FROM pgs_session_tmp"), "2");
  if (!p.direct()) {
    EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "57014") << "the only server is pinned to A";
  }
  a.must("DISCARD ALL");
  EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "") << "DISCARD ALL unpins";
  EXPECT_EQ(sqlstate_of(b, "SELECT * FROM pgs_session_tmp"), "42P01") << "B must not see A's temp table";
  EXPECT_EQ(sqlstate_of(a, "SELECT * FROM pgs_session_tmp"), "42P01") << "DISCARD ALL dropped it";
}

// DROP TABLE of the client's only temp table releases the pin (the name gives no hint that the
// statement touches session state: the proxy must still notice).
TEST_F(PinningTest, DroppingTheTempTableUnpins) {
  Proxy& p = start_proxy(small_pool(1, "1s"));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  a.must("CREATE TEMP TABLE scratch (x int)");
  if (!p.direct()) {
    EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "57014") << "the only server is pinned to A";
  }
  a.must("DROP TABLE scratch");
  EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "") << "no temp table left: A must be unpinned";
}

// A WITH HOLD cursor outlives its transaction: the client stays on its server until CLOSE.
TEST_F(PinningTest, WithHoldCursorPinsUntilClose) {
  Proxy& p = start_proxy(small_pool(1, "1s"));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  a.must("DECLARE pgs_cur CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 10) g");
  EXPECT_EQ(a.scalar("FETCH 1 FROM pgs_cur"), "1");
  if (!p.direct()) {
    EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "57014") << "the only server is pinned to A";
  }
  EXPECT_EQ(a.scalar("FETCH 1 FROM pgs_cur"), "2");
  a.must("CLOSE pgs_cur");
  EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "") << "CLOSE unpins";
  a.must("DECLARE c2 CURSOR WITH HOLD FOR SELECT 1");
  a.must("CLOSE ALL");
  EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "") << "CLOSE ALL unpins";
}

// A pinned client disconnects with everything held: whoever gets that server next (pool of 1) sees
// no LISTEN channel, temp table, WITH HOLD cursor or SQL prepared statement of it.
TEST_F(PinningTest, DisconnectedPinnedClientLeavesNothingBehind) {
  Proxy& p = start_proxy(small_pool(1, "5s"));
  {
    Pg a = connect(p.spec());
    a.must("LISTEN pgs_leak_ch");
    a.must("CREATE TEMP TABLE leak_tmp (x int)");
    a.must("DECLARE leak_cur CURSOR WITH HOLD FOR SELECT 1");
    a.must("PREPARE leak_q AS SELECT 1");
  }
  Pg b = connect(p.spec());
  PgResult r = b.exec(
      "SELECT (SELECT count(*) FROM pg_listening_channels()), to_regclass('pg_temp.leak_tmp') IS NULL, "
      "(SELECT count(*) FROM pg_cursors), (SELECT count(*) FROM pg_prepared_statements "
      "WHERE name = 'leak_q')");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(0, 0), "0") << "LISTEN left behind";
  EXPECT_EQ(r.value(0, 1), "t") << "temp table left behind";
  EXPECT_EQ(r.value(0, 2), "0") << "cursor left behind";
  EXPECT_EQ(r.value(0, 3), "0") << "SQL prepared statement left behind";
}

// pinning = "refuse": statements that would pin fail with 0A000 and nothing is left behind.
TEST_F(PinningTest, RefuseModeRejectsWith0A000AndStaysUsable) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o = small_pool(1, "1s");
  o.extra_toml = "[session]\npinning = \"refuse\"\n";
  Proxy& p = start_proxy(o);
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  for (const char* sql : {"LISTEN pgs_session_ch", "SELECT pg_advisory_lock(77)",
                          "CREATE TEMP TABLE pgs_refused (x int)",
                          "DECLARE c CURSOR WITH HOLD FOR SELECT 1"}) {
    EXPECT_EQ(sqlstate_of(a, sql), "0A000") << sql;
    EXPECT_EQ(a.scalar("SELECT 1"), "1") << "usable after refusing " << sql;
    EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "") << "not pinned after refusing " << sql;
  }
  EXPECT_EQ(advisory_lock_rows(77), 0);
  a.must("BEGIN");
  EXPECT_EQ(sqlstate_of(a, "LISTEN pgs_session_ch"), "0A000");
  a.must("ROLLBACK");
  EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "");
}

}  // namespace
}  // namespace pgs::it::session
