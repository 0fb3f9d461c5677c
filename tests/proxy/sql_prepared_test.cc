// SQL-level prepared statements under transaction pooling: what a request names and changes, and the
// statements that bring a server to a client's state (proxy/session/sql_prepared.h).
#include "proxy/session/sql_prepared.h"

#include <gtest/gtest.h>

#include "proxy/session/session_tracker.h"
#include "router/classify.h"

namespace pgs::proxy {
namespace {

using Op = SqlPrepEffect::Op;
using Names = std::vector<std::string>;

SqlPrepRequest request(const char* sql) { return sql_prep_request(router::classify(sql)); }

TEST(SqlPrepared, MentionsIsACheapSuperset) {
  for (const char* sql : {"PREPARE q AS SELECT 1", "execute q(1)", "DEALLOCATE q", "deallocate prepare all",
                          "DISCARD ALL", "EXPLAIN EXECUTE q"}) {
    EXPECT_TRUE(mentions_sql_prepared(sql)) << sql;
  }
  for (const char* sql : {"SELECT 1", "INSERT INTO t VALUES (1)", "", "SET search_path = x"}) {
    EXPECT_FALSE(mentions_sql_prepared(sql)) << sql;
  }
}

// forward_query skips mentions_sql_prepared() for a text may_change_session() finds nothing in.
TEST(SqlPrepared, ItsWordsAreSessionWords) {
  for (std::string_view word : kSqlPreparedWords) {
    EXPECT_TRUE(may_change_session(word)) << word;
    EXPECT_TRUE(may_change_session("select 1 /* " + std::string(word) + " */")) << word;
    EXPECT_TRUE(statement_may_change_session("UPDATE t SET x = 1 /* " + std::string(word) + " */")) << word;
  }
}

TEST(SqlPrepared, RequestNamesAndEffectsByStatementOrdinal) {
  SqlPrepRequest r = request("SELECT 1; PREPARE q(int) AS SELECT $1 * 10; EXECUTE q(2); DEALLOCATE r");
  EXPECT_EQ(r.names, (std::vector<std::string>{"q"}));
  EXPECT_EQ(r.dealloc_names, (std::vector<std::string>{"r"}));
  EXPECT_TRUE(request("PREPARE s AS SELECT 1; DEALLOCATE s").dealloc_names.empty()) << "s is in names";
  ASSERT_TRUE(r.effects);
  EXPECT_FALSE(r.effects->injected);
  const auto& by = r.effects->by_statement;
  ASSERT_EQ(by.size(), 4u);
  EXPECT_FALSE(by[0]);
  ASSERT_TRUE(by[1]);
  EXPECT_EQ(by[1]->op, Op::prepare);
  EXPECT_EQ(by[1]->name, "q");
  EXPECT_EQ(by[1]->definition, "PREPARE q(int) AS SELECT $1 * 10") << "leading blank trimmed";
  EXPECT_EQ(by[1]->tag, "PREPARE");
  EXPECT_FALSE(by[2]) << "EXECUTE depends on q but changes nothing";
  ASSERT_TRUE(by[3]);
  EXPECT_EQ(by[3]->op, Op::deallocate);
  EXPECT_EQ(by[3]->tag, "DEALLOCATE");
}

TEST(SqlPrepared, DeallocateAllAndDiscardAllForgetEverything) {
  SqlPrepRequest d = request("DEALLOCATE ALL");
  ASSERT_TRUE(d.effects);
  EXPECT_EQ(d.effects->by_statement.at(0)->op, Op::deallocate_all);
  EXPECT_EQ(d.effects->by_statement.at(0)->tag, "DEALLOCATE ALL");
  EXPECT_TRUE(d.names.empty());
  SqlPrepRequest x = request("DISCARD ALL");
  ASSERT_TRUE(x.effects);
  EXPECT_EQ(x.effects->by_statement.at(0)->op, Op::deallocate_all);
  EXPECT_EQ(x.effects->by_statement.at(0)->tag, "DISCARD ALL");
  EXPECT_FALSE(request("SELECT 1").effects);
  EXPECT_FALSE(request("EXECUTE q").effects);
  EXPECT_EQ(request("EXPLAIN EXECUTE q").names, (std::vector<std::string>{"q"}));
}

TEST(SqlPrepared, UnseenPrepare) {
  EXPECT_TRUE(may_prepare_unseen("DO $$BEGIN EXECUTE 'PREPARE x AS SELECT 1'; END$$",
                                 router::classify("DO $$BEGIN EXECUTE 'PREPARE x AS SELECT 1'; END$$")));
  EXPECT_FALSE(may_prepare_unseen("PREPARE x AS SELECT 1", router::classify("PREPARE x AS SELECT 1")));
  EXPECT_FALSE(may_prepare_unseen("SELECT 1", router::classify("SELECT 1")));
}

TEST(SqlPrepared, SetApplyAndLeastRecent) {
  SqlStatementSet s;
  s.apply({Op::prepare, "a", "PREPARE a AS SELECT 1", "PREPARE"});
  s.apply({Op::prepare, "b", "PREPARE b AS SELECT 2", "PREPARE"});
  s.apply({Op::prepare, "c", "PREPARE c AS SELECT 3", "PREPARE"});
  ASSERT_NE(s.find("a"), nullptr);
  EXPECT_EQ(*s.find("a"), "PREPARE a AS SELECT 1");
  s.touch("a");
  EXPECT_EQ(s.least_recent(2, {}), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(s.least_recent(2, {"b"}), (std::vector<std::string>{"c", "a"}));
  s.apply({Op::deallocate, "b", {}, "DEALLOCATE"});
  EXPECT_EQ(s.find("b"), nullptr);
  EXPECT_EQ(s.size(), 2u);
  s.apply({Op::deallocate_all, {}, {}, "DEALLOCATE ALL"});
  EXPECT_EQ(s.size(), 0u);
}

TEST(SqlPrepared, SyncBringsTheServerToTheClient) {
  SqlStatementSet client, server;
  client.put("same", "PREPARE same AS SELECT 1");
  server.put("same", "PREPARE same AS SELECT 1");
  client.put("mine", "PREPARE mine AS SELECT $1 * 10");
  server.put("mine", "PREPARE mine AS SELECT $1 || 'b'");  // another client's definition
  client.put("missing", "PREPARE missing AS SELECT 2");
  server.put("stranger", "PREPARE stranger AS SELECT 3");

  EXPECT_TRUE(plan_sql_sync(Names{"same"}, {}, client, server, 100, true).sql.empty()) << "the common case: nothing";
  EXPECT_TRUE(plan_sql_sync(Names{"absent"}, {}, client, server, 100, true).sql.empty()) << "nobody has it";

  SqlSyncPlan p = plan_sql_sync(Names{"mine", "missing", "stranger", "same"}, {}, client, server, 100, true);
  EXPECT_EQ(p.sql,
            "DEALLOCATE \"mine\"\n;\nPREPARE mine AS SELECT $1 * 10\n;\nPREPARE missing AS SELECT 2\n;\n"
            "DEALLOCATE \"stranger\"");
  ASSERT_TRUE(p.effects);
  EXPECT_TRUE(p.effects->injected);
  ASSERT_EQ(p.effects->by_statement.size(), 4u);
  for (const auto& e : p.effects->by_statement) server.apply(*e);
  for (const char* n : {"mine", "missing", "same"}) {
    ASSERT_NE(server.find(n), nullptr) << n;
    EXPECT_EQ(*server.find(n), *client.find(n)) << n;
  }
  EXPECT_EQ(server.find("stranger"), nullptr);
  EXPECT_TRUE(plan_sql_sync(Names{"mine", "missing", "stranger", "same"}, {}, client, server, 100, true).sql.empty());
}

TEST(SqlPrepared, SyncEvictsLeastRecentlyUsedButNeverTheNamesInUse) {
  SqlStatementSet client, server;
  for (const char* n : {"a", "b", "c", "d"}) server.put(n, std::string("PREPARE ") + n + " AS SELECT 1");
  server.touch("a");  // order now: a d c b (b least recent)
  client.put("b", "PREPARE b AS SELECT 1");
  SqlSyncPlan none = plan_sql_sync(Names{"b"}, {}, client, server, 2, false);
  EXPECT_TRUE(none.sql.empty()) << "no eviction unless allowed";
  SqlSyncPlan p = plan_sql_sync(Names{"b"}, {}, client, server, 2, true);
  EXPECT_EQ(p.sql, "DEALLOCATE \"c\"\n;\nDEALLOCATE \"d\"");
  for (const auto& e : p.effects->by_statement) server.apply(*e);
  EXPECT_EQ(server.size(), 2u);
  EXPECT_NE(server.find("b"), nullptr);
}

// DEALLOCATE needs the server to have a statement of that name exactly when the client has one; the
// definition does not matter (it may no longer compile), so a placeholder stands in.
TEST(SqlPrepared, SyncForDeallocateNeedsOnlyAName) {
  SqlStatementSet client, server;
  client.put("gone", "PREPARE gone AS SELECT x FROM dropped_table");
  server.put("other", "PREPARE other AS SELECT 'stranger'");
  client.put("shared", "PREPARE shared AS SELECT 1");
  server.put("shared", "PREPARE shared AS SELECT 'stranger'");
  SqlSyncPlan p = plan_sql_sync({}, {"gone", "other", "shared", "nobody"}, client, server, 100, true);
  EXPECT_EQ(p.sql, "PREPARE \"gone\" AS SELECT NULL\n;\nDEALLOCATE \"other\"");
  for (const auto& e : p.effects->by_statement) server.apply(*e);
  EXPECT_NE(server.find("gone"), nullptr);
  EXPECT_EQ(server.find("other"), nullptr);
}

TEST(SqlPrepared, StrangersAreDeallocatedAndTheClientsOwnKept) {
  SqlStatementSet client, server;
  client.put("mine", "PREPARE mine AS SELECT 1");
  client.put("changed", "PREPARE changed AS SELECT 'new'");
  server.put("mine", "PREPARE mine AS SELECT 1");
  server.put("changed", "PREPARE changed AS SELECT 'old'");
  server.put("Theirs\"", "PREPARE \"Theirs\"\"\" AS SELECT 'secret'");
  std::string sql = deallocate_strangers(client, server);
  EXPECT_NE(sql.find("DEALLOCATE \"changed\";"), std::string::npos) << sql;
  EXPECT_NE(sql.find("DEALLOCATE \"Theirs\"\"\";"), std::string::npos) << sql;
  EXPECT_EQ(sql.find("mine"), std::string::npos) << sql;
  EXPECT_EQ(server.size(), 1u);
  EXPECT_NE(server.find("mine"), nullptr);
  EXPECT_EQ(deallocate_strangers(client, server), "");
  SqlStatementSet none;
  EXPECT_EQ(deallocate_strangers(none, server), "DEALLOCATE \"mine\";");
  EXPECT_EQ(server.size(), 0u);
}

TEST(SqlPrepared, QuoteIdent) {
  EXPECT_EQ(quote_ident("q"), "\"q\"");
  EXPECT_EQ(quote_ident("we\"ird"), "\"we\"\"ird\"");
}

}  // namespace
}  // namespace pgs::proxy
