// Read-your-writes through the proxy with a private replica that applies WAL 500ms late: a client that
// inserts and at once selects always sees its row (its reads go to the primary until the replica has
// replayed its commit), while another (database, user) — with no writes of its own — keeps reading
// from the replica.
#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/routing/private_env.h"
#include "tests/routing/routing_support.h"

namespace pgs::it::routing {
namespace {

constexpr const char* kOtherUser = "pgs_routing_other";
constexpr const char* kOtherPassword = "routing-other-dev";
constexpr int kTries = 1000;

class ReadYourWritesTest : public ProxyTest {
 protected:
  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "needs the pgsidecar process";
    Pg su = superuser(kDatabase);
    ASSERT_TRUE(su.ok()) << su.error();
    su.must("DROP TABLE IF EXISTS pgs_routing_ryw");
    su.must("DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pgs_routing_other') THEN "
            "CREATE ROLE pgs_routing_other LOGIN PASSWORD 'routing-other-dev'; END IF; END$$");
    su.must("CREATE TABLE pgs_routing_ryw (id int PRIMARY KEY)");
    su.must("ALTER TABLE pgs_routing_ryw OWNER TO flopods");
    su.must("GRANT SELECT ON pgs_routing_ryw TO pgs_routing_other");
    PrivateReplica& replica = private_replica();
    replica.set_apply_delay(0);
    replica.wait_caught_up(Millis(30000));
    replica.set_apply_delay(500);
    ProxyOptions o = routing_options({{"private1", replica.port()}}, routing_keys());
    o.users.push_back({kOtherUser, kOtherPassword, "", false});
    start_proxy(o);
  }

  virtual std::string routing_keys() const { return "consistency = \"session\"\n"; }

  void TearDown() override {
    proxy_.reset();
    if (!is_direct()) {
      Pg su = superuser(kDatabase);
      if (su.ok()) {
        su.exec("DROP TABLE IF EXISTS pgs_routing_ryw");
        su.exec("DROP OWNED BY pgs_routing_other");
        su.exec("DROP ROLE IF EXISTS pgs_routing_other");
      }
      private_replica().set_apply_delay(0);
    }
    ProxyTest::TearDown();
  }
};

TEST_F(ReadYourWritesTest, WriterSeesItsRowsOtherUserStillReadsReplica) {
  Pg writer(proxy_->spec());
  Pg other(proxy_->spec(kOtherUser, kOtherPassword));
  ASSERT_TRUE(writer.ok()) << writer.error();
  ASSERT_TRUE(other.ok()) << other.error();
  ASSERT_TRUE(wait_node(writer, "replica", Millis(15000))) << node_of(writer);
  ASSERT_TRUE(wait_node(other, "replica", Millis(15000))) << node_of(other);

  int missing = 0, writer_on_replica = 0, other_on_primary = 0, other_checks = 0;
  std::string first_miss;
  for (int i = 1; i <= kTries; ++i) {
    std::string id = std::to_string(i);
    writer.must("INSERT INTO pgs_routing_ryw VALUES (" + id + ")");
    PgResult r = writer.exec("SELECT count(*), pg_is_in_recovery() FROM pgs_routing_ryw WHERE id = " + id);
    ASSERT_TRUE(r.ok()) << "try " << i << ": " << r.error();
    if (r.value(0, 0) != "1") {
      if (missing++ == 0) first_miss = "try " + id + " answered by " + (r.value(0, 1) == "t" ? "replica" : "primary");
    }
    if (r.value(0, 1) == "t") ++writer_on_replica;
    if (i % 20 == 0) {
      ++other_checks;
      if (node_of(other) != "replica") ++other_on_primary;
    }
  }
  EXPECT_EQ(missing, 0) << "reads that did not see the row just inserted; first: " << first_miss;
  // Every read of the writer that went to the primary was kept off the replica by its LSN floor, and is
  // counted so: pgsidecar_routing_decisions_total{target="primary",reason="lsn_floor"}.
  EXPECT_EQ(wait_decisions(*proxy_, {{"primary", "lsn_floor", static_cast<double>(kTries - writer_on_replica)}},
                           Millis(10000)),
            "");
  EXPECT_EQ(routing_decisions(*proxy_, "primary", "lsn_floor"), kTries - writer_on_replica);
  EXPECT_EQ(other_on_primary, 0) << "of " << other_checks
                                 << " reads by another user (no writes of its own), this many left the replica";
  // Informational: with a 500ms apply delay, practically every read of the writer went to the primary.
  RecordProperty("writer_reads_on_replica", writer_on_replica);

  // Once the replica has replayed the writes, the writer's reads go back to it.
  EXPECT_TRUE(wait_node(writer, "replica", Millis(15000))) << node_of(writer);
  PgResult all = writer.exec("SELECT count(*), pg_is_in_recovery() FROM pgs_routing_ryw");
  ASSERT_TRUE(all.ok()) << all.error();
  EXPECT_EQ(all.value(0, 0), std::to_string(kTries));
}

// The same over the extended protocol (Parse/Bind/Execute/Sync per statement), fewer tries.
TEST_F(ReadYourWritesTest, WriterSeesItsRowsExtendedProtocol) {
  Pg writer(proxy_->spec());
  ASSERT_TRUE(writer.ok()) << writer.error();
  ASSERT_TRUE(wait_node(writer, "replica", Millis(15000))) << node_of(writer);
  int missing = 0;
  for (int i = 1; i <= 300; ++i) {
    std::string id = std::to_string(i);
    PgResult w = writer.exec_params("INSERT INTO pgs_routing_ryw VALUES ($1)", {id});
    ASSERT_TRUE(w.ok()) << "try " << i << ": " << w.error();
    PgResult r = writer.exec_params("SELECT count(*) FROM pgs_routing_ryw WHERE id = $1", {id});
    ASSERT_TRUE(r.ok()) << "try " << i << ": " << r.error();
    if (r.value(0, 0) != "1") ++missing;
  }
  EXPECT_EQ(missing, 0) << "extended-protocol reads that did not see the row just inserted";
}

// How the floor scales with read_your_writes (consistency = "session"): "client" (default) — another
// connection of the same user is not held back by the writer's floor and keeps reading the (500ms late)
// replica; "user" — every connection of the same (database, user) shares the floor, so a read on another
// connection right after the write sees the row, and goes to the primary until the replica caught up.
class ReadYourWritesScopeTest : public ReadYourWritesTest, public ::testing::WithParamInterface<std::string> {
 protected:
  std::string routing_keys() const override {
    return "consistency = \"session\"\nread_your_writes = \"" + GetParam() + "\"\n";
  }
};

TEST_P(ReadYourWritesScopeTest, AnotherConnectionOfTheSameUser) {
  Pg writer(proxy_->spec());
  Pg reader(proxy_->spec());
  ASSERT_TRUE(writer.ok()) << writer.error();
  ASSERT_TRUE(reader.ok()) << reader.error();
  ASSERT_TRUE(wait_node(reader, "replica", Millis(15000))) << node_of(reader);
  constexpr int kReads = 100;
  int missing = 0, on_replica = 0;
  for (int i = 1; i <= kReads; ++i) {
    std::string id = std::to_string(i);
    writer.must("INSERT INTO pgs_routing_ryw VALUES (" + id + ")");
    PgResult r = reader.exec("SELECT count(*), pg_is_in_recovery() FROM pgs_routing_ryw WHERE id = " + id);
    ASSERT_TRUE(r.ok()) << "try " << i << ": " << r.error();
    if (r.value(0, 0) != "1") ++missing;
    if (r.value(0, 1) == "t") ++on_replica;
  }
  RecordProperty("reader_reads_on_replica", on_replica);
  RecordProperty("reader_missing_rows", missing);
  if (GetParam() == "user") {
    EXPECT_EQ(missing, 0) << "user-wide floor: another connection of the writer's user missed rows";
    EXPECT_EQ(wait_decisions(*proxy_, {{"primary", "lsn_floor", static_cast<double>(kReads - on_replica)}},
                             Millis(10000)),
              "");
  } else {
    EXPECT_EQ(on_replica, kReads) << "per-client floor: another connection was held back by the writer's writes";
    EXPECT_GT(missing, kReads / 2) << "with a 500ms apply delay the other connection should miss most rows";
  }
}

INSTANTIATE_TEST_SUITE_P(Scope, ReadYourWritesScopeTest, ::testing::Values("client", "user"));

// The WAL position a write transaction leaves behind is read in the same round trip as its COMMIT: the
// probe goes right behind the COMMIT (or the lone autocommit write) in one write to the primary, and its
// row comes with the reply (pgsidecar_lsn_probes_total{when="with_request"}), instead of one round trip
// after the release point (when="at_release"). The COMMIT still reaches the client only once the user's
// floor is raised: another connection of the same user reading right after it sees the row. Where the
// proxy cannot prove the statement ends the transaction, the probe stays at the release point.
class LsnProbeWithCommitTest : public ReadYourWritesTest {
 protected:
  std::string routing_keys() const override { return "consistency = \"session\"\nread_your_writes = \"user\"\n"; }

  // Waits until the proxy published `with_request` and `at_release` LSN probes; "" or what it saw.
  std::string wait_probes(double with_request, double at_release) {
    std::string seen;
    bool ok = wait_until(
        [&] {
          std::string page = scrape_metrics(*proxy_);
          double w = metric_value(page, "pgsidecar_lsn_probes_total", "when=\"with_request\"");
          double r = metric_value(page, "pgsidecar_lsn_probes_total", "when=\"at_release\"");
          seen = "with_request " + std::to_string(w) + ", at_release " + std::to_string(r);
          return w == with_request && r == at_release;
        },
        Millis(10000));
    return ok ? "" : seen;
  }
};

TEST_F(LsnProbeWithCommitTest, TheCommitTakesTheProbeAlongAndTheFloorHolds) {
  Pg writer(proxy_->spec());
  Pg reader(proxy_->spec());
  ASSERT_TRUE(writer.ok()) << writer.error();
  ASSERT_TRUE(reader.ok()) << reader.error();
  ASSERT_TRUE(wait_node(reader, "replica", Millis(15000))) << node_of(reader);
  ASSERT_EQ(wait_probes(0, 0), "");
  constexpr int kCommits = 30;
  int missing = 0;
  for (int i = 1; i <= kCommits; ++i) {
    std::string id = std::to_string(i);
    writer.must("BEGIN");
    writer.must("INSERT INTO pgs_routing_ryw VALUES (" + id + ")");
    writer.must(i % 2 == 0 ? "END" : "commit");
    PgResult r = reader.exec("SELECT count(*) FROM pgs_routing_ryw WHERE id = " + id);
    ASSERT_TRUE(r.ok()) << "try " << i << ": " << r.error();
    if (r.value(0, 0) != "1") ++missing;
  }
  EXPECT_EQ(missing, 0) << "reads on another connection of the writer's user that missed its committed row";
  EXPECT_EQ(wait_probes(kCommits, 0), "");

  // One autocommit write: the same.
  writer.must("INSERT INTO pgs_routing_ryw VALUES (1000)");
  EXPECT_EQ(reader.scalar("SELECT count(*) FROM pgs_routing_ryw WHERE id = 1000"), "1");
  EXPECT_EQ(wait_probes(kCommits + 1, 0), "");

  // Not provably the end of the transaction from its first word (a comment first): at the release point.
  writer.must("BEGIN");
  writer.must("INSERT INTO pgs_routing_ryw VALUES (1001)");
  writer.must("/* done */ COMMIT");
  EXPECT_EQ(reader.scalar("SELECT count(*) FROM pgs_routing_ryw WHERE id = 1001"), "1");
  EXPECT_EQ(wait_probes(kCommits + 1, 1), "");

  // COMMIT AND CHAIN opens the next transaction at once: no probe goes behind it (it would run inside
  // the new transaction); the COMMIT that ends the chain takes it along.
  writer.must("BEGIN");
  writer.must("INSERT INTO pgs_routing_ryw VALUES (1002)");
  writer.must("COMMIT AND CHAIN");
  EXPECT_EQ(writer.scalar("SELECT count(*) FROM pgs_routing_ryw WHERE id = 1002"), "1");
  writer.must("INSERT INTO pgs_routing_ryw VALUES (1003)");
  writer.must("COMMIT");
  EXPECT_EQ(reader.scalar("SELECT count(*) FROM pgs_routing_ryw WHERE id IN (1002, 1003)"), "2");
  EXPECT_EQ(wait_probes(kCommits + 2, 1), "");
}

// health_check_idle_interval: while no read waits for the replica the monitor probes every 10 s, not
// every 100 ms; a read kept on the primary by its LSN floor asks for fresh positions, so the writer's
// reads return to the (500ms-late) replica within a few fast rounds of its replay, not at the next idle
// round up to 10 s later.
class IdleCadenceTest : public ReadYourWritesTest {
 protected:
  std::string routing_keys() const override {
    return "consistency = \"session\"\nhealth_check_idle_interval = \"10s\"\n";
  }
  // Probe statements the replica ran (pg_stat_statements; constants are normalised away).
  long probes() const { return statement_calls(private_replica().port(), "THEN pg_is_wal_replay_paused()"); }
};

TEST_F(IdleCadenceTest, AReadHeldByItsFloorBringsTheFastCadenceBack) {
  Pg writer(proxy_->spec());
  ASSERT_TRUE(writer.ok()) << writer.error();
  ASSERT_TRUE(wait_node(writer, "replica", Millis(15000))) << node_of(writer);
  long idle_start = probes();
  EXPECT_FALSE(wait_until([&] { return probes() > idle_start + 1; }, Millis(1500)))
      << "probes every 100 ms although no read waits: " << probes() - idle_start << " in 1.5 s";

  writer.must("INSERT INTO pgs_routing_ryw VALUES (1)");
  auto wrote = Clock::now();
  int missing = 0;
  bool on_replica = wait_until(
      [&] {
        PgResult r = writer.exec("SELECT count(*), pg_is_in_recovery() FROM pgs_routing_ryw WHERE id = 1");
        if (!r.ok() || r.value(0, 0) != "1") ++missing;
        return r.ok() && r.value(0, 1) == "t";
      },
      Millis(5000), Millis(20));
  EXPECT_EQ(missing, 0) << "reads of the writer that missed its row";
  EXPECT_TRUE(on_replica) << "the writer's reads did not return to the replica within 5 s of its write: "
                          << node_of(writer) << "\n" << show_replicas(*proxy_) << private_replica().positions();
  RecordProperty("back_on_replica_ms",
                 std::to_string(std::chrono::duration_cast<Millis>(Clock::now() - wrote).count()));
}

// Control: with consistency = "eventual" the same pattern reads from the 500ms-late replica and misses
// rows — so the delay is real and the session-mode tests above can fail.
class EventualConsistencyTest : public ReadYourWritesTest {
 protected:
  std::string routing_keys() const override { return "consistency = \"eventual\"\n"; }
};

TEST_F(EventualConsistencyTest, ReadsRightAfterWritesMissRows) {
  Pg writer(proxy_->spec());
  ASSERT_TRUE(writer.ok()) << writer.error();
  ASSERT_TRUE(wait_node(writer, "replica", Millis(15000))) << node_of(writer);
  int missing = 0;
  for (int i = 1; i <= 50; ++i) {
    std::string id = std::to_string(i);
    writer.must("INSERT INTO pgs_routing_ryw VALUES (" + id + ")");
    if (writer.scalar("SELECT count(*) FROM pgs_routing_ryw WHERE id = " + id) != "1") ++missing;
  }
  EXPECT_GT(missing, 40) << "with eventual consistency and a 500ms apply delay, most reads should miss";
}

}  // namespace
}  // namespace pgs::it::routing
