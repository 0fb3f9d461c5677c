// ResultCacheSession: its decisions, event by event, against a fake of CacheSources (no Redis, no
// worker): look up or forward, the bytes of a hit, a miss captured and stored or not, the stampede's
// hand-over, the tables a commit bumps (with the LSN or without) and the output hold.
#include "proxy/cache_session/result_cache_session.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "cache/entry.h"
#include "cache/write_tables_memo.h"
#include "protocol/writer.h"
#include "router/classify.h"

namespace pgs::proxy {
namespace {

using std::chrono::milliseconds;

class NoRowSecurity final : public cache::RowSecurityFacts {
 public:
  cache::RowSecurity row_security(std::string_view, std::string_view) const override { return cache::RowSecurity::off; }
};

struct Bump {
  std::vector<std::string> tables;
  std::optional<uint64_t> lsn;
  bool confirm = false;
};

class Fleet;

// One client's view of the fake worker cache. Lookups and bumps are recorded; the test answers them.
class FakeSources final : public CacheSources {
 public:
  FakeSources(Fleet& fleet, uint64_t id) : fleet_(fleet), id_(id) {}

  CacheStats& stats() override;
  std::shared_ptr<const router::Classification> classify(std::string_view sql) override {
    return std::make_shared<const router::Classification>(router::classify(sql));
  }
  const void* snapshot_id() override { return &snapshot_; }
  std::shared_ptr<const void> hold_snapshot() override {
    return std::shared_ptr<const void>(&snapshot_, [](const void*) {});
  }
  uint64_t catalog_version() override { return 1; }
  const cache::RowSecurityFacts* row_security() override { return &rls_; }
  std::shared_ptr<const cache::WriteDependencies> write_dependencies() override { return nullptr; }
  void refresh_write_dependencies() override { ++refreshes; }
  void want_fresh_replica_positions() override { ++fresh_positions_wanted; }
  bool available() override { return true; }
  bool ready() override { return true; }
  const cache::RedisNames& names() override { return names_; }
  bool lookup(const cache::Lookup& l, uint64_t seq) override {
    lookups.push_back(seq);
    last_key = l.redis_key;
    return redis_up;
  }
  bool store(const std::string& key, std::string value, milliseconds) override {
    stored[key] = std::move(value);
    return true;
  }
  cache::Inflight::Role join(const cache::CacheKey& key) override;
  void finish_lead(const cache::CacheKey& key, const std::string* messages) override;
  void leave_wait(const cache::CacheKey& key) override;
  void bump(std::vector<std::string> tables, std::optional<uint64_t> lsn, bool confirm) override {
    bumps.push_back({std::move(tables), lsn, confirm});
  }
  const std::vector<std::string>& write_tables(const std::shared_ptr<const router::Classification>& c,
                                              const cache::SessionFacts& facts) override {
    return memo_.tables(c, facts, nullptr);
  }

  bool redis_up = true;
  std::vector<uint64_t> lookups;
  std::string last_key;
  std::map<std::string, std::string> stored;
  std::vector<Bump> bumps;
  int refreshes = 0;
  int fresh_positions_wanted = 0;

 private:
  Fleet& fleet_;
  uint64_t id_;
  int snapshot_ = 0;
  NoRowSecurity rls_;
  cache::RedisNames names_;
  cache::WriteTablesMemo memo_;
};

// The clients of one worker: their sessions, their sources, the shared stampede table and counts.
class Fleet {
 public:
  struct Client {
    ResultCacheSession session;
    std::unique_ptr<FakeSources> sources;
    ClientStatements statements{[](std::string_view) { return SqlPrepEffectsRef(); }};
    std::vector<CacheStep> wait_over;  // what on_wait_over answered, as the leader handed over
  };
  Client& add(uint64_t id) {
    Client& c = clients[id];
    c.sources = std::make_unique<FakeSources>(*this, id);
    return c;
  }
  std::map<uint64_t, Client> clients;
  cache::Inflight inflight;
  CacheStats stats;
};

CacheStats& FakeSources::stats() { return fleet_.stats; }
cache::Inflight::Role FakeSources::join(const cache::CacheKey& key) {
  return fleet_.inflight.join(key, id_, std::chrono::steady_clock::now());
}
void FakeSources::finish_lead(const cache::CacheKey& key, const std::string* messages) {
  for (uint64_t w : fleet_.inflight.finish(key)) {
    Fleet::Client& c = fleet_.clients.at(w);
    c.wait_over.push_back(c.session.on_wait_over(messages, *c.sources));
  }
}
void FakeSources::leave_wait(const cache::CacheKey& key) { fleet_.inflight.leave(key, id_); }

protocol::Bytes view(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

std::string query(std::string_view sql) {
  std::string b;
  protocol::write_query(b, sql);
  return b;
}

// Parse (unnamed), Bind (no parameters, text results), Describe portal, Execute, Sync.
std::string extended(std::string_view sql) {
  std::string b;
  protocol::write_parse(b, "", sql, {});
  protocol::write_bind(b, "", "", std::string("\0\0\0\0\0\0", 6));
  protocol::write_describe(b, 'P', "");
  protocol::write_execute(b, "", 0);
  protocol::write_sync(b);
  return b;
}

// The backend messages of a one-row result (what is stored for simple and extended_described).
std::string result_rows() {
  std::string m;
  protocol::write_row_description(m, {{"id"}});
  protocol::write_data_row(m, {std::string_view("7")});
  protocol::write_command_complete(m, "SELECT 1");
  return m;
}

std::string ready(char status) {
  std::string z;
  protocol::write_ready_for_query(z, status);
  return z;
}

std::string complete(std::string_view tag) {
  std::string c;
  protocol::write_command_complete(c, tag);
  return c;
}

std::string error_reply() {
  std::string e;
  protocol::write_error(e, {.severity = "ERROR", .sqlstate = "42P01", .message = "no"});
  return e;
}

class ResultCacheSessionTest : public ::testing::Test {
 protected:
  ResultCacheSessionTest() {
    config.cache.enabled = true;
    config.cache.classes = {{"items", milliseconds(60000), {"public.items"}},
                            {"orders", milliseconds(60000), {"public.orders"}}};
    gucs.set("search_path", "public");
  }

  CacheClient client() const {
    CacheClient c;
    c.user = "app";
    c.database = "flopods";
    c.server_dbname = "flopods";
    c.gucs = &gucs;
    return c;
  }

  Fleet::Client& start(uint64_t id) {
    Fleet::Client& c = fleet.add(id);
    c.session.set_observing(true);
    return c;
  }

  CacheStep begin(Fleet::Client& c, const std::string& request) {
    return c.session.begin_lookup(decode_buffered_request(view(request), 1 << 20), c.statements, client(), config,
                                  std::chrono::steady_clock::now(), *c.sources);
  }

  // Redis answers the last lookup: a miss (no value) under generations all 0.
  CacheStep answer_miss(Fleet::Client& c, std::optional<uint64_t> floor = std::nullopt) {
    std::string_view messages;
    return c.session.on_lookup(c.sources->lookups.back(), cache::GetStatus::miss, {0, 0}, "", floor, config,
                               *c.sources, &messages);
  }

  // A client whose lookup of `request` missed (the lookup read `floor`): it leads the capture of the reply.
  Fleet::Client& missed(uint64_t id, const std::string& request, std::optional<uint64_t> floor = std::nullopt) {
    Fleet::Client& c = start(id);
    EXPECT_EQ(begin(c, request), CacheStep::pending);
    EXPECT_EQ(answer_miss(c, floor), CacheStep::forward);
    return c;
  }

  // Feeds a reply as the server would append it.
  CacheReplyAction reply(Fleet::Client& c, const std::string& messages, bool lsn_probe_follows = false) {
    CacheReplyAction last;
    protocol::Bytes rest = view(messages);
    while (!rest.empty()) {
      auto r = protocol::split_frame(rest, 1 << 20);
      const auto& f = std::get<protocol::Frame>(r);
      CacheReplyAction a = c.session.on_reply(f.type, f.whole, lsn_probe_follows, config, *c.sources);
      if (a.hold_output || a.bump) last = std::move(a);
      rest = rest.subspan(f.size);
    }
    return last;
  }

  // A write statement sent and answered, outside a transaction or within one.
  void write(Fleet::Client& c, std::string_view sql) { c.session.note_writes(sql, client(), *c.sources); }

  conf::Config config;
  GucMap gucs;
  Fleet fleet;
};

TEST_F(ResultCacheSessionTest, AStatementOutsideEveryClassIsForwardedWithoutALookup) {
  auto& c = start(1);
  EXPECT_EQ(begin(c, query("SELECT * FROM public.other")), CacheStep::forward);
  EXPECT_TRUE(c.sources->lookups.empty());
  EXPECT_EQ(fleet.stats.bypass[static_cast<size_t>(cache::BypassReason::table_not_in_class)], 1u);
  EXPECT_FALSE(c.session.holds_input());
}

TEST_F(ResultCacheSessionTest, ACacheableStatementIsLookedUpAndHoldsTheInputUntilRedisAnswers) {
  auto& c = start(1);
  EXPECT_EQ(begin(c, query("SELECT * FROM public.items")), CacheStep::pending);
  ASSERT_EQ(c.sources->lookups.size(), 1u);
  EXPECT_TRUE(c.session.holds_input());
  EXPECT_EQ(answer_miss(c), CacheStep::forward);
  EXPECT_FALSE(c.session.holds_input());
  EXPECT_TRUE(c.session.take_looked_up()) << "a miss is not looked up again";
  EXPECT_FALSE(c.session.take_looked_up());
  EXPECT_EQ(fleet.stats.classes["items"].misses, 1u);
}

TEST_F(ResultCacheSessionTest, RedisDownIsAMissWithoutAWait) {
  auto& c = start(1);
  c.sources->redis_up = false;
  EXPECT_EQ(begin(c, query("SELECT * FROM public.items")), CacheStep::forward);
  EXPECT_FALSE(c.session.holds_input());
  EXPECT_EQ(fleet.stats.classes["items"].misses, 1u);
}

TEST_F(ResultCacheSessionTest, AStaleLookupAnswerIsIgnored) {
  auto& c = start(1);
  ASSERT_EQ(begin(c, query("SELECT * FROM public.items")), CacheStep::pending);
  std::string_view messages;
  EXPECT_EQ(c.session.on_lookup(c.sources->lookups.back() + 1, cache::GetStatus::miss, {0, 0}, "", std::nullopt,
                                config, *c.sources, &messages),
            CacheStep::ignore);
  EXPECT_TRUE(c.session.holds_input());
}

// A miss on the primary is captured and stored; the same statement then hits, and the hit's bytes are
// what Postgres would have sent: for a simple Query the stored messages and ReadyForQuery; for the
// extended shape ParseComplete and BindComplete first.
TEST_F(ResultCacheSessionTest, AStoredMissIsServedWithThePrefixOfItsShape) {
  for (bool ext : {false, true}) {
    SCOPED_TRACE(ext ? "extended" : "simple");
    const std::string request = ext ? extended("SELECT * FROM public.items") : query("SELECT * FROM public.items");
    auto& a = start(ext ? 11 : 1);
    ASSERT_EQ(begin(a, request), CacheStep::pending);
    ASSERT_EQ(answer_miss(a), CacheStep::forward);
    ASSERT_TRUE(a.session.capturing());
    a.session.note_read_target(std::nullopt);  // the primary
    std::string server_reply;
    if (ext) {
      protocol::write_parse_complete(server_reply);
      protocol::write_bind_complete(server_reply);
    }
    server_reply += result_rows() + ready('I');
    reply(a, server_reply);
    EXPECT_FALSE(a.session.capturing());
    ASSERT_EQ(a.sources->stored.size(), 1u);
    const std::string value = a.sources->stored.begin()->second;

    auto& b = start(ext ? 12 : 2);
    ASSERT_EQ(begin(b, request), CacheStep::pending);
    std::string_view messages;
    ASSERT_EQ(b.session.on_lookup(b.sources->lookups.back(), cache::GetStatus::hit, {0, 0}, value, std::nullopt,
                                  config, *b.sources, &messages),
              CacheStep::serve);
    EXPECT_EQ(messages, result_rows());
    std::string out, sql;
    EXPECT_EQ(b.session.write_hit(decode_buffered_request(view(request), 1 << 20), messages, b.statements, out, &sql),
              request.size());
    EXPECT_EQ(out, server_reply) << "byte-identical to the server's reply";
    EXPECT_EQ(sql, "SELECT * FROM public.items");
    EXPECT_EQ(b.session.on_served(true, config, *b.sources), CacheStep::served);
    EXPECT_FALSE(b.session.take_looked_up());
  }
  EXPECT_EQ(fleet.stats.classes["items"].hits, 2u);
  EXPECT_EQ(fleet.stats.classes["items"].stores, 2u);
}

TEST_F(ResultCacheSessionTest, AValueReadUnderOtherGenerationsIsAMiss) {
  auto& c = start(1);
  ASSERT_EQ(begin(c, query("SELECT * FROM public.items")), CacheStep::pending);
  std::string_view messages;
  cache::EntryMeta meta;
  meta.shape = cache::ReplyShape::simple;
  meta.generations = 0;  // no fingerprint matches: fingerprint_ of {0, 0} is not 0
  std::string value = cache::encode_entry(meta, result_rows());
  // A value read under other generations is not served.
  EXPECT_EQ(c.session.on_lookup(c.sources->lookups.back(), cache::GetStatus::hit, {5, 5}, value, std::nullopt, config,
                                *c.sources, &messages),
            CacheStep::forward);
  EXPECT_TRUE(c.session.capturing());
  EXPECT_EQ(fleet.stats.classes["items"].misses, 1u);
}

// The request at the head of the buffer is not the one looked up (its shape differs): nothing is written
// and it runs as a miss, leading the capture.
TEST_F(ResultCacheSessionTest, AHitThatCannotBeWrittenRunsAsAMiss) {
  auto& a = missed(1, query("SELECT * FROM public.items"));
  reply(a, result_rows() + ready('I'));
  const std::string value = a.sources->stored.begin()->second;

  auto& b = start(2);
  ASSERT_EQ(begin(b, query("SELECT * FROM public.items")), CacheStep::pending);
  std::string_view messages;
  ASSERT_EQ(b.session.on_lookup(b.sources->lookups.back(), cache::GetStatus::hit, {0, 0}, value, std::nullopt, config,
                                *b.sources, &messages),
            CacheStep::serve);
  std::string out, sql;
  const std::string other = extended("SELECT * FROM public.items");
  EXPECT_EQ(b.session.write_hit(decode_buffered_request(view(other), 1 << 20), messages, b.statements, out, &sql), 0u);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(b.session.on_served(false, config, *b.sources), CacheStep::forward);
  EXPECT_TRUE(b.session.capturing());
  EXPECT_EQ(fleet.stats.classes["items"].hits, 0u);
  EXPECT_EQ(fleet.stats.classes["items"].misses, 2u);
}

// No stale store: a replica's answer is stored only when the replica had replayed past the floor the
// lookup read; an unknown floor or an earlier replay position is served, not stored.
TEST_F(ResultCacheSessionTest, AReplicaBehindTheFloorIsServedButNotStored) {
  struct Case {
    std::optional<uint64_t> floor, replay;
    bool stored;
  } cases[] = {{100, 150, true}, {100, 100, true}, {100, 99, false}, {std::nullopt, 150, false},
               {std::nullopt, std::nullopt, true}};
  uint64_t id = 1;
  for (const Case& k : cases) {
    auto& c = missed(id++, query("SELECT * FROM public.items"), k.floor);
    c.session.note_read_target(k.replay);
    reply(c, result_rows() + ready('I'));
    EXPECT_EQ(c.sources->stored.size(), k.stored ? 1u : 0u) << "case " << id - 1;
    // Not stored for want of a fresher replay position: the monitor is asked to look again soon.
    EXPECT_EQ(c.sources->fresh_positions_wanted, k.stored ? 0 : 1) << "case " << id - 1;
  }
  EXPECT_EQ(fleet.stats.classes["items"].replica_behind, 2u);
}

TEST_F(ResultCacheSessionTest, AnErrorOrAnAbortedCaptureIsNotStored) {
  auto& a = missed(1, query("SELECT * FROM public.items"));
  reply(a, error_reply() + ready('I'));
  EXPECT_TRUE(a.sources->stored.empty());

  auto& b = missed(2, query("SELECT * FROM public.items"));
  b.session.abort_capture(*b.sources);  // a streamed row, a notice, the server lost
  EXPECT_FALSE(b.session.capturing());
  reply(b, result_rows() + ready('I'));
  EXPECT_TRUE(b.sources->stored.empty());
  EXPECT_EQ(fleet.stats.classes["items"].not_stored, 2u);
}

// Concurrent misses on one key: the first leads, the others wait (their input held); the leader's result
// is handed to them, or, when the leader leaves, its failure: they run their own query.
TEST_F(ResultCacheSessionTest, WaitersGetTheLeadersResultOrRunTheirOwnWhenItLeaves) {
  for (bool leader_leaves : {false, true}) {
    SCOPED_TRACE(leader_leaves ? "leader leaves" : "leader stores");
    fleet.clients.clear();
    auto& leader = start(1);
    auto& waiter = start(2);
    ASSERT_EQ(begin(leader, query("SELECT * FROM public.items")), CacheStep::pending);
    ASSERT_EQ(begin(waiter, query("SELECT * FROM public.items")), CacheStep::pending);
    ASSERT_EQ(answer_miss(leader), CacheStep::forward);
    EXPECT_TRUE(leader.session.capturing());
    EXPECT_EQ(answer_miss(waiter), CacheStep::pending);
    EXPECT_TRUE(waiter.session.holds_input());
    if (leader_leaves) {
      leader.session.leave(*leader.sources);
      ASSERT_EQ(waiter.wait_over, std::vector<CacheStep>{CacheStep::forward});
      EXPECT_TRUE(waiter.session.take_looked_up()) << "it goes to a server without a second lookup";
    } else {
      reply(leader, result_rows() + ready('I'));
      ASSERT_EQ(waiter.wait_over, std::vector<CacheStep>{CacheStep::serve});
      std::string out, sql;
      const std::string request = query("SELECT * FROM public.items");
      EXPECT_EQ(waiter.session.write_hit(decode_buffered_request(view(request), 1 << 20), result_rows(),
                                         waiter.statements, out, &sql),
                request.size());
      EXPECT_EQ(out, result_rows() + ready('I'));
      EXPECT_EQ(waiter.session.on_served(true, config, *waiter.sources), CacheStep::served);
    }
    EXPECT_FALSE(waiter.session.holds_input());
  }
}

TEST_F(ResultCacheSessionTest, AWaiterThatLeavesIsNotHandedAnything) {
  auto& leader = start(1);
  auto& waiter = start(2);
  ASSERT_EQ(begin(leader, query("SELECT * FROM public.items")), CacheStep::pending);
  ASSERT_EQ(begin(waiter, query("SELECT * FROM public.items")), CacheStep::pending);
  ASSERT_EQ(answer_miss(leader), CacheStep::forward);
  ASSERT_EQ(answer_miss(waiter), CacheStep::pending);
  waiter.session.leave(*waiter.sources);
  reply(leader, result_rows() + ready('I'));
  EXPECT_TRUE(waiter.wait_over.empty());
}

// Writes are noted per statement and bumped when the reply shows a commit; the output is held from that
// ReadyForQuery until Redis confirmed.
TEST_F(ResultCacheSessionTest, AnAutocommitWriteBumpsItsTablesAndHoldsTheOutputUntilConfirmed) {
  auto& c = start(1);
  write(c, "UPDATE public.items SET n = 1");
  EXPECT_TRUE(c.session.writes_pending());
  CacheReplyAction a = reply(c, complete("UPDATE 1") + ready('I'));
  EXPECT_TRUE(a.hold_output);
  ASSERT_TRUE(a.bump);
  EXPECT_EQ(*a.bump, std::vector<std::string>{"public.items"});
  EXPECT_FALSE(c.session.writes_pending());
  c.session.send_bump(std::move(*a.bump), std::nullopt, *c.sources);
  ASSERT_EQ(c.sources->bumps.size(), 1u);
  EXPECT_TRUE(c.sources->bumps[0].confirm);
  EXPECT_FALSE(c.sources->bumps[0].lsn);
  EXPECT_TRUE(c.session.holds_input());
  EXPECT_EQ(c.session.on_bump_done(), BumpDone::resume);
  EXPECT_FALSE(c.session.holds_input());
  EXPECT_EQ(fleet.stats.bumps, 1u);
  EXPECT_EQ(fleet.stats.classes["items"].invalidations, 1u);
}

TEST_F(ResultCacheSessionTest, NothingIsBumpedOnRollbackOrAFailedImplicitTransaction) {
  auto& c = start(1);
  write(c, "BEGIN; UPDATE public.items SET n = 1");
  EXPECT_FALSE(reply(c, complete("BEGIN") + complete("UPDATE 1") + ready('T')).hold_output);
  EXPECT_TRUE(c.session.writes_pending()) << "the transaction is still open";
  write(c, "ROLLBACK");
  EXPECT_FALSE(reply(c, complete("ROLLBACK") + ready('I')).hold_output);
  EXPECT_FALSE(c.session.writes_pending());

  write(c, "UPDATE public.items SET n = 1");
  EXPECT_FALSE(reply(c, error_reply() + ready('I')).hold_output);
  EXPECT_FALSE(c.session.writes_pending());
  EXPECT_EQ(fleet.stats.bumps, 0u);
}

TEST_F(ResultCacheSessionTest, ACommitBumpsEveryTableTheTransactionWrote) {
  auto& c = start(1);
  write(c, "BEGIN");
  write(c, "UPDATE public.orders SET n = 1");
  reply(c, complete("BEGIN") + ready('T') + complete("UPDATE 1") + ready('T'));
  write(c, "INSERT INTO public.items VALUES (1)");
  write(c, "COMMIT");
  CacheReplyAction a = reply(c, complete("INSERT 0 1") + ready('T') + complete("COMMIT") + ready('I'));
  ASSERT_TRUE(a.bump);
  EXPECT_EQ(*a.bump, (std::vector<std::string>{"public.items", "public.orders"}));
}

TEST_F(ResultCacheSessionTest, DdlOrAnUnreadStatementBumpsEveryTable) {
  auto& c = start(1);
  write(c, "ALTER TABLE public.items ADD COLUMN x int");
  CacheReplyAction a = reply(c, complete("ALTER TABLE") + ready('I'));
  ASSERT_TRUE(a.bump);
  EXPECT_EQ(*a.bump, std::vector<std::string>{std::string(cache::kAllTables)});
  EXPECT_EQ(c.sources->refreshes, 1) << "a committed DDL re-reads the write dependencies";
  EXPECT_EQ(fleet.stats.classes["items"].invalidations, 1u);
  EXPECT_EQ(fleet.stats.classes["orders"].invalidations, 1u);

  c.session.note_unknown_writes();
  a = reply(c, complete("UPDATE 1") + ready('I'));
  ASSERT_TRUE(a.bump);
  EXPECT_EQ(*a.bump, std::vector<std::string>{std::string(cache::kAllTables)});
}

// When the LSN probe follows the commit, the bump waits for its row and carries the commit LSN; the
// binding's commits share one hold and one bump. Without a probe, the bump goes at once without it.
TEST_F(ResultCacheSessionTest, TheBumpCarriesTheLsnWhenTheProbeFollows) {
  auto& c = start(1);
  write(c, "UPDATE public.items SET n = 1");
  CacheReplyAction a = reply(c, complete("UPDATE 1") + ready('I'), /*lsn_probe_follows=*/true);
  EXPECT_TRUE(a.hold_output);
  EXPECT_FALSE(a.bump) << "it waits for the probe's row";
  EXPECT_TRUE(c.session.commit_bump_waits_for_lsn());
  c.session.on_lsn_probe_started(c.session.commit_bump_waits_for_lsn());
  c.session.on_lsn_probe_done(0x1234, *c.sources);
  ASSERT_EQ(c.sources->bumps.size(), 1u);
  EXPECT_EQ(c.sources->bumps[0].lsn, 0x1234u);
  EXPECT_EQ(c.sources->bumps[0].tables, std::vector<std::string>{"public.items"});
  EXPECT_FALSE(c.session.commit_bump_waits_for_lsn());
  EXPECT_EQ(c.session.on_bump_done(), BumpDone::resume);

  // A probe that ended without a row: the bump goes without the LSN.
  write(c, "UPDATE public.orders SET n = 1");
  reply(c, complete("UPDATE 1") + ready('I'), true);
  c.session.on_lsn_probe_started(true);
  c.session.on_lsn_probe_done(std::nullopt, *c.sources);
  ASSERT_EQ(c.sources->bumps.size(), 2u);
  EXPECT_FALSE(c.sources->bumps[1].lsn);
}

TEST_F(ResultCacheSessionTest, TheBindingsCommitsShareOneHoldReleasedOnce) {
  auto& c = start(1);
  write(c, "UPDATE public.items SET n = 1");
  EXPECT_TRUE(reply(c, complete("UPDATE 1") + ready('I'), true).hold_output);
  write(c, "UPDATE public.orders SET n = 1");
  EXPECT_FALSE(reply(c, complete("UPDATE 1") + ready('I'), true).hold_output) << "already held";
  c.session.on_lsn_probe_started(true);
  c.session.on_lsn_probe_done(42, *c.sources);
  ASSERT_EQ(c.sources->bumps.size(), 1u);
  EXPECT_EQ(c.sources->bumps[0].tables, (std::vector<std::string>{"public.items", "public.orders"}));
  EXPECT_EQ(c.session.on_bump_done(), BumpDone::resume);
  EXPECT_EQ(c.session.on_bump_done(), BumpDone::none) << "released once";
  EXPECT_FALSE(c.session.bumps_pending());
}

TEST_F(ResultCacheSessionTest, TwoImmediateBumpsReleaseTheOutputAfterTheSecond) {
  auto& c = start(1);
  write(c, "UPDATE public.items SET n = 1");
  CacheReplyAction a = reply(c, complete("UPDATE 1") + ready('I'));
  c.session.send_bump(std::move(*a.bump), std::nullopt, *c.sources);
  write(c, "UPDATE public.orders SET n = 1");
  a = reply(c, complete("UPDATE 1") + ready('I'));
  EXPECT_FALSE(a.hold_output) << "the first hold covers it";
  c.session.send_bump(std::move(*a.bump), std::nullopt, *c.sources);
  EXPECT_EQ(c.session.on_bump_done(), BumpDone::none);
  EXPECT_EQ(c.session.on_bump_done(), BumpDone::resume);
}

TEST_F(ResultCacheSessionTest, TheServerLostOrTheClientGoneBumpsWhatMayHaveCommitted) {
  auto& c = start(1);
  write(c, "UPDATE public.items SET n = 1");
  reply(c, complete("UPDATE 1") + ready('I'), true);  // committed, waiting for the probe
  write(c, "BEGIN; UPDATE public.orders SET n = 1");  // open, a COMMIT may be in flight
  c.session.on_server_lost(*c.sources);
  ASSERT_EQ(c.sources->bumps.size(), 2u);
  EXPECT_EQ(c.sources->bumps[0].tables, std::vector<std::string>{"public.items"});
  EXPECT_TRUE(c.sources->bumps[0].confirm) << "the held output waits for it";
  EXPECT_EQ(c.sources->bumps[1].tables, std::vector<std::string>{"public.orders"});
  EXPECT_FALSE(c.sources->bumps[1].confirm);

  auto& d = start(2);
  write(d, "BEGIN; UPDATE public.orders SET n = 1");
  d.session.leave(*d.sources);
  ASSERT_EQ(d.sources->bumps.size(), 1u);
  EXPECT_FALSE(d.sources->bumps[0].confirm);
}

TEST_F(ResultCacheSessionTest, TheUnnamedStatementsWritesAreNotedWhenABindRunsIt) {
  auto& c = start(1);
  c.session.set_unnamed(std::make_shared<const std::string>("DELETE FROM public.items"));
  EXPECT_FALSE(c.session.writes_pending()) << "a Parse runs nothing";
  c.session.note_unnamed_bound(client(), *c.sources);
  EXPECT_TRUE(c.session.writes_pending());
}

}  // namespace
}  // namespace pgs::proxy
