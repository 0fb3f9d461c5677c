// RequestRouting, event by event, with no network, no pool and no Postgres: the test hands it what the
// connection would (a request's scanned statements and the replicas' health through a RouteSources of
// fixed values, each message forwarded, the facts of each server reply) and reads what it decides.
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "protocol/frame.h"
#include "protocol/writer.h"
#include "proxy/routing/request_routing.h"

namespace pgs::proxy {
namespace {

constexpr bool kOnReplica = true;
constexpr bool kOnPrimary = false;
constexpr int kReplica = 0;  // the only replica's index

// The worker's side of a decision, as fixed values; counts what was asked.
class FixedSources final : public RouteSources {
 public:
  BatchFacts facts;
  std::optional<std::string> hint;  // pgsidecar.route
  router::Lsn shared_floor = 0;
  std::vector<router::ReplicaSnapshot> replica_health{router::ReplicaSnapshot{.healthy = true, .replay_lsn = 100}};
  bool usable = true;
  std::chrono::milliseconds age{0};  // since the replica health was measured
  int scans = 0;
  int counters = 0;

  BatchFacts scan_request() override {
    ++scans;
    return facts;
  }
  const std::string* route_hint_setting() override { return hint ? &*hint : nullptr; }
  router::Lsn shared_lsn_floor() override { return shared_floor; }
  std::span<const router::ReplicaSnapshot> replicas() override { return replica_health; }
  std::chrono::milliseconds replicas_age() override { return age; }
  uint64_t next_counter() override { return static_cast<uint64_t>(counters++); }
  bool replica_usable(int target) override { return usable && target == kReplica; }
};

BatchFacts read_request() {
  BatchFacts f;
  f.complete = true;
  f.summary.kind = router::Kind::select;
  f.summary.read_only = true;
  f.summary.writes = false;
  f.summary.replica_capable = true;
  return f;
}

BatchFacts write_request() {
  BatchFacts f;
  f.complete = true;
  f.summary.kind = router::Kind::insert;
  f.summary.writes = true;
  return f;
}

RoutingPolicy policy(bool per_user = false) {
  return RoutingPolicy{.enabled = true, .session_consistency = true, .floor_per_user = per_user};
}

const router::RouteOptions kOptions{};  // consistency = session

// One client message as the connection forwards it: its bytes and the frame over them.
class Message {
 public:
  explicit Message(std::string bytes) : bytes_(std::move(bytes)) {
    protocol::Bytes view(reinterpret_cast<const uint8_t*>(bytes_.data()), bytes_.size());
    auto r = protocol::split_frame(view, 1 << 30);
    if (const auto* f = std::get_if<protocol::Frame>(&r)) {
      frame_ = *f;
    } else {
      ADD_FAILURE() << "the test wrote an incomplete message";
    }
  }
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  const protocol::Frame& frame() const { return frame_; }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
  protocol::Frame frame_{};
};

std::string query(std::string_view sql) {
  std::string out;
  protocol::write_query(out, sql);
  return out;
}
std::string parse(std::string_view sql) {
  std::string out;
  protocol::write_parse(out, "", sql, {});
  return out;
}
std::string sync() {
  std::string out;
  protocol::write_sync(out);
  return out;
}

// A reply on a primary in transaction pooling that ends the transaction.
ReplyFacts end_of_transaction_on_primary() {
  return ReplyFacts{.bound = true,
                    .on_replica = false,
                    .transaction_pooling = true,
                    .at_release_point = true,
                    .replies_pending = 0,
                    .outbox_bytes = 20,
                    .keep_limit = 64 * 1024};
}

// One client's routing, with the worker's side of its decisions.
class RequestRoutingTest : public ::testing::Test {
 protected:
  // Where a request of `facts` goes (nullopt: routing is off).
  std::optional<router::Decision> route(BatchFacts facts, const RoutingPolicy& p = policy(),
                                        bool session_pooling = false) {
    sources.facts = std::move(facts);
    return r.route(p, kOptions, session_pooling, sources);
  }
  // Routes a request of `facts` and binds a server on `on_replica` (no replay pending).
  void route_and_bind(BatchFacts facts, bool on_replica, const RoutingPolicy& p = policy()) {
    (void)route(std::move(facts), p);
    EXPECT_EQ(r.on_server_bound(on_replica), "");
  }
  // Forwards each message (whole) as the connection does; returns their bytes, concatenated.
  std::string forward(const std::vector<std::string>& messages, bool on_replica) {
    std::string all;
    for (const std::string& bytes : messages) {
      Message m(bytes);
      r.on_forwarded(m.frame(), on_replica);
      all += bytes;
    }
    return all;
  }
  // Runs a write on the primary, the LSN probe at its end, and the probe's row: `lsn` (null: NULL).
  LsnRow write_and_probe(const char* lsn, const RoutingPolicy& p = policy()) {
    route_and_bind(write_request(), kOnPrimary, p);
    forward({query("insert into t values (1)")}, kOnPrimary);
    r.on_release_point();
    EXPECT_EQ(r.lsn_probe_at_release(p, true, false), LsnProbe::start);
    EXPECT_TRUE(r.lsn_probe_running());
    return r.on_lsn_row({lsn ? std::optional<std::string>(lsn) : std::nullopt}, p);
  }

  RequestRouting r;
  FixedSources sources;
};

// ---- where a request goes ----

TEST_F(RequestRoutingTest, AReadGoesToAReplicaAndAWriteToThePrimary) {
  auto read = route(read_request());
  ASSERT_TRUE(read);
  EXPECT_EQ(read->target, kReplica);
  EXPECT_EQ(read->reason, router::Reason::read_only);

  auto write = route(write_request());
  ASSERT_TRUE(write);
  EXPECT_TRUE(write->primary());
  EXPECT_EQ(write->reason, router::Reason::write);
}

// The age of the worker's replica view reaches the router: a caught-up replica measured longer ago than
// max_replica_lag (10 s) allows is not proof of anything.
TEST_F(RequestRoutingTest, TheAgeOfTheReplicaMeasureIsHeldAgainstMaxLag) {
  sources.age = std::chrono::milliseconds(10001);
  auto read = route(read_request());
  ASSERT_TRUE(read);
  EXPECT_TRUE(read->primary());
  EXPECT_EQ(read->reason, router::Reason::replica_lagging);
  sources.age = std::chrono::milliseconds(100);
  read = route(read_request());
  ASSERT_TRUE(read);
  EXPECT_EQ(read->target, kReplica);
}

TEST_F(RequestRoutingTest, ARequestNotWhollyBufferedIsAWrite) {
  BatchFacts partial = read_request();
  partial.complete = false;
  auto d = route(partial);
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->primary());
  // ... and the binding may write: its LSN is read at the end.
  EXPECT_EQ(r.on_server_bound(kOnPrimary), "");
  EXPECT_EQ(r.lsn_probe_at_release(policy(), true, false), LsnProbe::start);
}

TEST_F(RequestRoutingTest, SessionPoolingRunsEverythingOnThePrimaryUnscanned) {
  sources.hint = "replica";
  auto d = route(read_request(), policy(), true);
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->primary());
  EXPECT_EQ(d->reason, router::Reason::session_pooling);
  EXPECT_EQ(sources.scans, 0);
  EXPECT_EQ(sources.counters, 0);
}

TEST_F(RequestRoutingTest, WithRoutingOffNothingIsDecidedOrCounted) {
  RoutingPolicy off = policy();
  off.enabled = false;
  EXPECT_FALSE(route(read_request(), off));
  EXPECT_EQ(sources.scans, 0);
  EXPECT_EQ(sources.counters, 0);
}

TEST_F(RequestRoutingTest, TheSessionsRouteHintIsRead) {
  sources.hint = "primary";
  auto d = route(read_request());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->reason, router::Reason::hint_primary);
  sources.hint = "not a hint";  // ignored
  d = route(read_request());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->target, kReplica);
}

TEST_F(RequestRoutingTest, AReplicaWhosePoolCannotLogInFallsBackToThePrimary) {
  sources.usable = false;
  auto d = route(read_request());
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->primary());
  EXPECT_EQ(d->reason, router::Reason::no_replica);
  // Nothing is kept for a re-run: the read runs on the primary.
  EXPECT_EQ(r.on_server_bound(kOnPrimary), "");
  forward({query("select 1")}, kOnPrimary);
  EXPECT_FALSE(r.retry_on_primary(kOnReplica, false));
}

// ---- the read-your-writes floor ----

TEST_F(RequestRoutingTest, AWriteOnThePrimaryIsFollowedByTheLsnProbeAndRaisesTheFloor) {
  LsnRow row = write_and_probe("0/C8");  // 200
  EXPECT_FALSE(r.lsn_probe_running());
  ASSERT_TRUE(row.lsn);
  EXPECT_EQ(*row.lsn, 200u);
  EXPECT_TRUE(row.raise_shared_floor);
  EXPECT_EQ(r.lsn_floor(), 200u);
  // The replica has replayed to 100 only: the next read waits for the primary.
  auto d = route(read_request());
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->primary());
  EXPECT_EQ(d->reason, router::Reason::lsn_floor);
  // Once it has, the read goes there.
  sources.replica_health[0].replay_lsn = 200;
  d = route(read_request());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->target, kReplica);
}

TEST_F(RequestRoutingTest, TheFloorIsNeverLowered) {
  (void)write_and_probe("0/C8");
  LsnRow older = write_and_probe("0/64");  // 100
  ASSERT_TRUE(older.lsn);
  EXPECT_EQ(r.lsn_floor(), 200u);
  // A row without an LSN (or not one) changes nothing.
  EXPECT_FALSE(write_and_probe(nullptr).lsn);
  EXPECT_FALSE(write_and_probe("garbage").raise_shared_floor);
  EXPECT_EQ(r.lsn_floor(), 200u);

  std::atomic<uint64_t> shared{150};
  raise_floor(shared, 100);
  EXPECT_EQ(shared.load(), 150u);
  raise_floor(shared, 300);
  EXPECT_EQ(shared.load(), 300u);
}

TEST_F(RequestRoutingTest, WithoutSessionConsistencyTheRowRaisesNoFloor) {
  RoutingPolicy eventual = policy();
  eventual.session_consistency = false;
  route_and_bind(write_request(), kOnPrimary, eventual);
  // The binding wrote, but only the cache's commit bump wants the LSN.
  EXPECT_EQ(r.lsn_probe_at_release(eventual, true, false), LsnProbe::not_needed);
  ASSERT_EQ(r.lsn_probe_at_release(eventual, true, true), LsnProbe::start);
  LsnRow row = r.on_lsn_row({std::string("0/C8")}, eventual);
  ASSERT_TRUE(row.lsn);  // for the cache's bump
  EXPECT_FALSE(row.raise_shared_floor);
  EXPECT_EQ(r.lsn_floor(), 0u);
}

TEST_F(RequestRoutingTest, TheUsersSharedFloorCountsWhenTheFloorIsPerUser) {
  sources.shared_floor = 150;  // another connection of the user wrote
  auto per_client = route(read_request(), policy(false));
  ASSERT_TRUE(per_client);
  EXPECT_EQ(per_client->target, kReplica);
  auto per_user = route(read_request(), policy(true));
  ASSERT_TRUE(per_user);
  EXPECT_EQ(per_user->reason, router::Reason::lsn_floor);
}

// ---- when the LSN probe is due ----

TEST_F(RequestRoutingTest, TheLsnProbeIsDueOnlyAfterAWriteOnThePrimary) {
  sources.usable = false;  // the read runs on the primary
  route_and_bind(read_request(), kOnPrimary);
  forward({query("select 1")}, kOnPrimary);
  EXPECT_EQ(r.lsn_probe_at_release(policy(), true, false), LsnProbe::not_needed);

  // A second request in the same binding (the first left a transaction open) may write.
  forward({query("update t set x = 1")}, kOnPrimary);
  EXPECT_EQ(r.lsn_probe_at_release(policy(), true, false), LsnProbe::start);
  r.on_release_point();
  EXPECT_FALSE(r.lsn_probe_running());
  // Read once per write.
  EXPECT_EQ(r.lsn_probe_at_release(policy(), true, false), LsnProbe::not_needed);
}

TEST_F(RequestRoutingTest, NoLsnIsReadOnAReplicaOrWithRoutingOff) {
  route_and_bind(write_request(), kOnPrimary);
  EXPECT_EQ(r.lsn_probe_at_release(policy(), false, true), LsnProbe::unavailable);
  RoutingPolicy off = policy();
  off.enabled = false;
  EXPECT_EQ(r.lsn_probe_at_release(off, true, true), LsnProbe::unavailable);
  EXPECT_FALSE(r.lsn_probe_running());
}

// ---- holding the end of a write until its LSN is recorded ----

TEST_F(RequestRoutingTest, TheEndOfAWriteIsHeldUntilTheLsnRowWhenTheFloorIsPerUser) {
  route_and_bind(write_request(), kOnPrimary, policy(true));
  forward({query("insert into t values (1)")}, kOnPrimary);
  ReplyFacts mid = end_of_transaction_on_primary();
  mid.at_release_point = false;
  EXPECT_EQ(r.on_server_bytes(mid, policy(true)), ReplyStep::flush);
  EXPECT_EQ(r.on_server_bytes(end_of_transaction_on_primary(), policy(true)), ReplyStep::hold_for_lsn);
  // Held once: later bytes (the probe's reply) go into the same hold.
  EXPECT_EQ(r.on_server_bytes(end_of_transaction_on_primary(), policy(true)), ReplyStep::flush);
  r.on_release_point();
  ASSERT_EQ(r.lsn_probe_at_release(policy(true), true, false), LsnProbe::start);
  LsnRow row = r.on_lsn_row({std::string("0/C8")}, policy(true));
  EXPECT_TRUE(row.release_output);
  EXPECT_FALSE(r.end_lsn_hold());  // released once
}

// The probe sent right behind the request that ends the transaction: the reply is held from the first
// server bytes until its row, and the release point has nothing left to probe.
TEST_F(RequestRoutingTest, AProbeBehindTheCommitHoldsTheReplyUntilItsRow) {
  route_and_bind(write_request(), kOnPrimary, policy(true));
  forward({query("insert into t values (1)")}, kOnPrimary);
  ASSERT_EQ(r.lsn_probe_behind_request(policy(true), true, false), LsnProbe::start);
  EXPECT_TRUE(r.lsn_probe_running());
  ReplyFacts commit_reply = end_of_transaction_on_primary();
  commit_reply.at_release_point = false;  // the probe is still to answer
  EXPECT_EQ(r.on_server_bytes(commit_reply, policy(true)), ReplyStep::hold_for_lsn);
  EXPECT_EQ(r.on_server_bytes(commit_reply, policy(true)), ReplyStep::flush) << "held once";
  LsnRow row = r.on_lsn_row({std::string("0/C8")}, policy(true));
  EXPECT_TRUE(row.release_output);
  EXPECT_TRUE(row.raise_shared_floor);
  EXPECT_EQ(r.lsn_floor(), 200u);
  r.on_release_point();
  EXPECT_EQ(r.lsn_probe_at_release(policy(true), true, false), LsnProbe::not_needed);
}

// The COMMIT's reply and the probe's row came in one read: the row was handled before the connection
// asked what to do with the bytes, so nothing is held (nothing would release it).
TEST_F(RequestRoutingTest, AProbeRowInTheSameReadAsTheCommitHoldsNothing) {
  route_and_bind(write_request(), kOnPrimary, policy(true));
  forward({query("insert into t values (1)")}, kOnPrimary);
  ASSERT_EQ(r.lsn_probe_behind_request(policy(true), true, false), LsnProbe::start);
  LsnRow row = r.on_lsn_row({std::string("0/C8")}, policy(true));
  EXPECT_FALSE(row.release_output);
  EXPECT_EQ(r.on_server_bytes(end_of_transaction_on_primary(), policy(true)), ReplyStep::flush);
  EXPECT_FALSE(r.end_lsn_hold());
}

TEST_F(RequestRoutingTest, AProbeGoesBehindARequestOnlyWhereTheReleasePointWouldProbe) {
  route_and_bind(write_request(), kOnPrimary, policy());
  forward({query("insert into t values (1)")}, kOnPrimary);
  RoutingPolicy off = policy();
  off.enabled = false;
  EXPECT_EQ(r.lsn_probe_behind_request(off, true, true), LsnProbe::not_needed) << "routing off";
  EXPECT_EQ(r.lsn_probe_behind_request(policy(), false, true), LsnProbe::not_needed) << "session pooling";
  // A per-client floor: probed, nothing held (no other connection reads by it).
  ASSERT_EQ(r.lsn_probe_behind_request(policy(), true, false), LsnProbe::start);
  EXPECT_EQ(r.lsn_probe_behind_request(policy(), true, true), LsnProbe::not_needed) << "one probe at a time";
  ReplyFacts commit_reply = end_of_transaction_on_primary();
  commit_reply.at_release_point = false;
  EXPECT_EQ(r.on_server_bytes(commit_reply, policy()), ReplyStep::flush);
  (void)r.on_lsn_row({std::string("0/C8")}, policy());
  // A read wrote nothing: only the cache's commit LSN would want a probe.
  route_and_bind(read_request(), kOnPrimary, policy());
  EXPECT_EQ(r.lsn_probe_behind_request(policy(), true, false), LsnProbe::not_needed);
  EXPECT_EQ(r.lsn_probe_behind_request(policy(), true, true), LsnProbe::start);
}

TEST_F(RequestRoutingTest, AHoldWhoseRowNeverCameIsReleasedWithTheBinding) {
  route_and_bind(write_request(), kOnPrimary, policy(true));
  ASSERT_EQ(r.on_server_bytes(end_of_transaction_on_primary(), policy(true)), ReplyStep::hold_for_lsn);
  EXPECT_TRUE(r.end_lsn_hold());
  EXPECT_FALSE(r.end_lsn_hold());
}

TEST_F(RequestRoutingTest, NothingIsHeldWithoutAWriteInTransactionPoolingWithAPerUserFloor) {
  sources.usable = false;  // reads run on the primary too
  auto held = [&](BatchFacts facts, RoutingPolicy p, ReplyFacts reply) {
    r = RequestRouting();
    route_and_bind(std::move(facts), reply.on_replica, p);
    return r.on_server_bytes(reply, p) == ReplyStep::hold_for_lsn;
  };
  ReplyFacts end = end_of_transaction_on_primary();
  EXPECT_TRUE(held(write_request(), policy(true), end));
  EXPECT_FALSE(held(read_request(), policy(true), end));
  EXPECT_FALSE(held(write_request(), policy(false), end));  // per-client floor: only this client reads it
  ReplyFacts session_mode = end;
  session_mode.transaction_pooling = false;  // no LSN probe would release it
  EXPECT_FALSE(held(write_request(), policy(true), session_mode));
  RoutingPolicy eventual = policy(true);
  eventual.session_consistency = false;
  EXPECT_FALSE(held(write_request(), eventual, end));
}

// ---- a read re-run on the primary when its replica fails ----

TEST_F(RequestRoutingTest, AReadOfAFailedReplicaIsReplayedWholeOnThePrimary) {
  ASSERT_EQ(route(read_request())->target, kReplica);
  EXPECT_EQ(r.on_server_bound(kOnReplica), "");
  const std::string sent = forward({parse("select 1"), sync()}, kOnReplica);
  // Its reply is kept while the replica still owes a ReadyForQuery.
  ReplyFacts reply{.bound = true, .on_replica = true, .replies_pending = 1, .outbox_bytes = 10, .keep_limit = 100};
  EXPECT_EQ(r.on_server_bytes(reply, policy()), ReplyStep::keep);
  ASSERT_TRUE(r.retry_on_primary(kOnReplica, false));
  EXPECT_EQ(r.on_server_bound(kOnPrimary), sent);
  EXPECT_EQ(r.on_server_bound(kOnPrimary), "");  // once
}

TEST_F(RequestRoutingTest, NoReplayOnceTheReplyReachedTheClient) {
  route_and_bind(read_request(), kOnReplica);
  forward({query("select 1")}, kOnReplica);
  // At the keep limit the bytes go out.
  ReplyFacts large{.bound = true, .on_replica = true, .replies_pending = 1, .outbox_bytes = 100, .keep_limit = 100};
  EXPECT_EQ(r.on_server_bytes(large, policy()), ReplyStep::flush);
  EXPECT_FALSE(r.retry_on_primary(kOnReplica, false));
}

TEST_F(RequestRoutingTest, NoReplayForAPinnedClientOrOnThePrimary) {
  route_and_bind(read_request(), kOnReplica);
  forward({query("select 1")}, kOnReplica);
  EXPECT_FALSE(r.retry_on_primary(kOnReplica, true));
  EXPECT_FALSE(r.retry_on_primary(kOnPrimary, false));
  EXPECT_TRUE(r.retry_on_primary(kOnReplica, false));
}

TEST_F(RequestRoutingTest, AReadIsKeptForAReplayOnlyWithinTheBound) {
  const std::string q = query("select 1");
  r = RequestRouting(2 * q.size());
  route_and_bind(read_request(), kOnReplica);
  forward({q, q}, kOnReplica);  // exactly the bound
  EXPECT_TRUE(r.retry_on_primary(kOnReplica, false));

  r = RequestRouting(2 * q.size());
  route_and_bind(read_request(), kOnReplica);
  forward({q, q, q}, kOnReplica);  // beyond it: nothing kept, not even the start
  EXPECT_FALSE(r.retry_on_primary(kOnReplica, false));
}

TEST_F(RequestRoutingTest, AReadIsKeptForAReplayOnlyWhole) {
  route_and_bind(read_request(), kOnReplica);
  forward({parse("select 1")}, kOnReplica);
  r.on_forwarded_unbuffered('B', kOnReplica);  // a message too large to keep
  forward({sync()}, kOnReplica);
  EXPECT_FALSE(r.retry_on_primary(kOnReplica, false));
}

TEST_F(RequestRoutingTest, NothingIsReplayedAfterAReroutingOrARelease) {
  (void)route(read_request());
  r.on_rerouted_to_primary();  // before it was sent
  EXPECT_EQ(r.on_server_bound(kOnPrimary), "");
  forward({query("select 1")}, kOnPrimary);
  EXPECT_FALSE(r.retry_on_primary(kOnReplica, false));

  route_and_bind(read_request(), kOnReplica);
  forward({query("select 1")}, kOnReplica);
  r.on_server_released();  // the next request starts afresh
  EXPECT_FALSE(r.retry_on_primary(kOnReplica, false));
}

// ---- a stale plan's retry ----

TEST_F(RequestRoutingTest, AnExtendedBatchCanBeRetriedOnceWholeUpToItsSync) {
  EXPECT_FALSE(r.can_retry_batch());  // nothing sent yet
  const std::string p = parse("select 1");
  forward({p}, kOnPrimary);
  EXPECT_FALSE(r.can_retry_batch());  // no Sync yet
  forward({sync()}, kOnPrimary);
  ASSERT_TRUE(r.can_retry_batch());
  EXPECT_EQ(r.take_retry_batch(), p + sync());
  EXPECT_FALSE(r.can_retry_batch());
  // The next batch replaces the last one.
  const std::string p2 = parse("select 2");
  forward({p2, sync()}, kOnPrimary);
  EXPECT_EQ(r.take_retry_batch(), p2 + sync());
}

TEST_F(RequestRoutingTest, ASimpleQueryIsNotRetried) {
  forward({query("select 1")}, kOnPrimary);
  EXPECT_FALSE(r.can_retry_batch());
}

TEST_F(RequestRoutingTest, ABatchBeyondTheBoundOrPartlyUnbufferedIsNotRetried) {
  const std::string p = parse("select 1");
  r = RequestRouting(p.size());  // the Sync does not fit
  forward({p, sync()}, kOnPrimary);
  EXPECT_FALSE(r.can_retry_batch());
  EXPECT_EQ(r.take_retry_batch(), "");  // nothing of it was kept

  r = RequestRouting();
  forward({p}, kOnPrimary);
  r.on_forwarded_unbuffered('B', kOnPrimary);  // a part never kept
  forward({sync()}, kOnPrimary);
  EXPECT_FALSE(r.can_retry_batch());
}

}  // namespace
}  // namespace pgs::proxy
