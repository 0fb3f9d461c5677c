// SqlPreparedGate, message by message, with no network, no server and no Postgres: the test writes the
// client's buffered request as a client would, decodes its head as the connection does, and hands the
// gate a SqlGateSources of fixed values (what the bound server holds, whether it is mid-batch) and the
// real parser; it reads what the gate decides and the plan of statements it would run first.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "protocol/frame.h"
#include "protocol/frontend.h"
#include "protocol/writer.h"
#include "proxy/request/buffered_request.h"
#include "proxy/session/client_statements.h"
#include "proxy/session/sql_prepared.h"
#include "proxy/sql_gate/sql_prepared_gate.h"
#include "router/classify.h"

namespace pgs::proxy {
namespace {

namespace pf = protocol::frontend;

// The bound server and the client's buffer, as fixed values; counts what was asked.
class FixedGateSources final : public SqlGateSources {
 public:
  SqlStatementSet server;
  size_t capacity = 100;
  bool mid_batch = false;
  bool may_evict = true;
  std::string buffered;  // the client's buffer: its request at the head
  int classified = 0;

  std::shared_ptr<const router::Classification> classify(std::string_view sql) override {
    ++classified;
    return std::make_shared<const router::Classification>(router::classify(sql));
  }
  SqlStatementSet& server_statements() override { return server; }
  size_t server_capacity() override { return capacity; }
  bool server_mid_batch() override { return mid_batch; }
  bool server_may_evict() override { return may_evict; }
  BufferedRequest buffered_request() override {
    return decode_buffered_request(
        protocol::Bytes(reinterpret_cast<const uint8_t*>(buffered.data()), buffered.size()), 1 << 20);
  }
};

// A client's buffer, written message after message as a client would.
class Wire {
 public:
  Wire& query(std::string_view sql) {
    protocol::write_query(bytes_, sql);
    return *this;
  }
  Wire& bind(std::string_view statement) {  // no parameter formats, values or result formats
    protocol::write_bind(bytes_, "", statement, std::string_view("\0\0\0\0\0\0", 6));
    return *this;
  }
  Wire& sync() {
    protocol::write_sync(bytes_);
    return *this;
  }
  std::string take() { return std::move(bytes_); }

 private:
  std::string bytes_;
};

SqlPrepEffect prepared(std::string name, std::string definition) {
  return SqlPrepEffect{SqlPrepEffect::Op::prepare, std::move(name), std::move(definition), "PREPARE"};
}

class SqlPreparedGateTest : public ::testing::Test {
 protected:
  // The gate's decision on the message at the head of the buffered `wire`.
  SqlGateDecision at_head(Wire wire) {
    sources.buffered = wire.take();
    BufferedRequest request = sources.buffered_request();
    EXPECT_FALSE(request.messages.empty()) << "the test wrote no whole message";
    if (request.messages.empty()) return {};
    return gate.on_message(request.messages.front(), statements, sources);
  }

  FixedGateSources sources;
  ClientStatements statements{[](std::string_view) { return SqlPrepEffectsRef(); }};
  SqlPreparedGate gate;
};

TEST_F(SqlPreparedGateTest, NothingIsScannedWhileNeitherSideHoldsAStatement) {
  EXPECT_EQ(at_head(Wire().query("EXECUTE q")).step, SqlGateStep::pass);
  EXPECT_EQ(at_head(Wire().bind("q").sync()).step, SqlGateStep::pass);
  EXPECT_EQ(sources.classified, 0);
}

TEST_F(SqlPreparedGateTest, SyncAndFunctionCallAlwaysPass) {
  gate.apply(prepared("q", "PREPARE q AS SELECT 1"));
  EXPECT_EQ(at_head(Wire().sync()).step, SqlGateStep::pass);
  EXPECT_EQ(sources.classified, 0);
}

TEST_F(SqlPreparedGateTest, ARequestWaitsForItsStatementOnANewServer) {
  gate.apply(prepared("q", "PREPARE q AS SELECT 1"));
  SqlGateDecision d = at_head(Wire().query("EXECUTE q"));
  ASSERT_EQ(d.step, SqlGateStep::wait);
  EXPECT_EQ(d.plan.sql, "PREPARE q AS SELECT 1");
  ASSERT_NE(d.plan.effects, nullptr);
  EXPECT_TRUE(d.plan.effects->injected);
  EXPECT_TRUE(gate.sync_running());

  gate.on_sync_done(true);
  EXPECT_FALSE(gate.sync_running());
  EXPECT_EQ(at_head(Wire().query("EXECUTE q")).step, SqlGateStep::pass);  // synced: goes out unchecked
  sources.server.apply(prepared("q", "PREPARE q AS SELECT 1"));    // as the server confirmed it
  EXPECT_EQ(at_head(Wire().query("EXECUTE q")).step, SqlGateStep::pass);  // the server holds the same now
}

TEST_F(SqlPreparedGateTest, AFailedSyncLeavesTheNextRequestChecked) {
  gate.apply(prepared("q", "PREPARE q AS SELECT * FROM dropped"));
  ASSERT_EQ(at_head(Wire().query("EXECUTE q")).step, SqlGateStep::wait);
  gate.on_sync_done(false);  // the caller answers the request with the error
  EXPECT_FALSE(gate.sync_running());
  EXPECT_EQ(at_head(Wire().query("EXECUTE q")).step, SqlGateStep::wait);
}

TEST_F(SqlPreparedGateTest, AStrangersDefinitionIsReplacedFirst) {
  gate.apply(prepared("q", "PREPARE q AS SELECT 1"));
  sources.server.put("q", "PREPARE q AS SELECT 2");
  SqlGateDecision d = at_head(Wire().bind("q").sync());  // a protocol Bind of the SQL-prepared name
  ASSERT_EQ(d.step, SqlGateStep::wait);
  EXPECT_EQ(d.plan.sql, "DEALLOCATE \"q\"\n;\nPREPARE q AS SELECT 1");
}

TEST_F(SqlPreparedGateTest, AProtocolStatementThatExecutesOneNamesIt) {
  gate.apply(prepared("q", "PREPARE q AS SELECT 1"));
  ASSERT_TRUE(statements.remember("s1", "EXECUTE q", {}));  // PQprepare(conn, "s1", "EXECUTE q")
  SqlGateDecision d = at_head(Wire().bind("s1").sync());
  ASSERT_EQ(d.step, SqlGateStep::wait);
  EXPECT_EQ(d.plan.sql, "PREPARE q AS SELECT 1");
}

TEST_F(SqlPreparedGateTest, ANameFirstSeenInTheMiddleOfABatchFailsTheSession) {
  gate.apply(prepared("q", "PREPARE q AS SELECT 1"));
  sources.mid_batch = true;  // the batch started without it
  SqlGateDecision d = at_head(Wire().bind("q").sync());
  EXPECT_EQ(d.step, SqlGateStep::fail);
  EXPECT_STREQ(d.sqlstate, "0A000");
  EXPECT_FALSE(gate.sync_running());
}

TEST_F(SqlPreparedGateTest, TooManyStatementsFailTheSession) {
  SqlPreparedGate small(1);
  small.apply(prepared("a", "PREPARE a AS SELECT 1"));
  small.apply(prepared("b", "PREPARE b AS SELECT 2"));
  sources.buffered = Wire().query("EXECUTE a").take();
  BufferedRequest request = sources.buffered_request();
  ASSERT_EQ(request.messages.size(), 1u);
  SqlGateDecision d = small.on_message(request.messages.front(), statements, sources);
  EXPECT_EQ(d.step, SqlGateStep::fail);
  EXPECT_STREQ(d.sqlstate, "53400");
}

TEST_F(SqlPreparedGateTest, AFullServerEvictsItsLeastRecentlyUsedBetweenRequests) {
  sources.capacity = 1;
  sources.server.put("old", "PREPARE old AS SELECT 1");
  sources.server.put("new", "PREPARE new AS SELECT 2");
  sources.may_evict = false;  // something in flight: later
  EXPECT_EQ(at_head(Wire().query("SELECT 1")).step, SqlGateStep::pass);
  sources.may_evict = true;
  SqlGateDecision d = at_head(Wire().query("SELECT 1"));
  ASSERT_EQ(d.step, SqlGateStep::wait);
  EXPECT_EQ(d.plan.sql, "DEALLOCATE \"old\"");
}

TEST_F(SqlPreparedGateTest, TheServerLostLetsTheHeldRequestGoAfresh) {
  gate.apply(prepared("q", "PREPARE q AS SELECT 1"));
  ASSERT_EQ(at_head(Wire().query("EXECUTE q")).step, SqlGateStep::wait);
  gate.on_server_lost();
  EXPECT_FALSE(gate.sync_running());
  EXPECT_EQ(at_head(Wire().query("EXECUTE q")).step, SqlGateStep::wait);  // checked again on the next server
}

TEST_F(SqlPreparedGateTest, ANewServerDropsWhatAnotherClientLeftThere) {
  gate.apply(prepared("q", "PREPARE q AS SELECT 1"));
  SqlStatementSet empty;
  EXPECT_EQ(gate.strangers_on(empty), "");
  SqlStatementSet server;
  server.put("q", "PREPARE q AS SELECT 1");      // the same: kept
  server.put("theirs", "PREPARE theirs AS SELECT 'secret'");
  EXPECT_EQ(gate.strangers_on(server), "DEALLOCATE \"theirs\";");
  EXPECT_EQ(server.size(), 1u);
  EXPECT_NE(server.find("q"), nullptr);
}

TEST_F(SqlPreparedGateTest, TheProbeForgetsWhatTheServerNoLongerHolds) {
  gate.apply(prepared("q", "PREPARE q AS SELECT 1"));
  gate.apply(prepared("r", "PREPARE r AS SELECT 2"));
  SqlStatementSet server;
  server.put("q", "PREPARE q AS SELECT 1");
  server.put("r", "PREPARE r AS SELECT 2");
  // r was deallocated by code the proxy cannot see; x was prepared there; pgsidecar_1 is the proxy's own.
  size_t untracked = gate.reconcile({"q", "pgsidecar_1", "x"}, &server);
  EXPECT_EQ(untracked, 1u);  // x
  EXPECT_EQ(server.find("r"), nullptr);
  EXPECT_EQ(gate.definition("r"), nullptr);
  ASSERT_NE(gate.definition("q"), nullptr);
  EXPECT_EQ(gate.size(), 1u);
  EXPECT_EQ(gate.reconcile({"x"}, nullptr), 1u);  // no server bound: nothing tracked there
}

}  // namespace
}  // namespace pgs::proxy
