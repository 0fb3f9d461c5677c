// WriteTablesMemo: the tables a write invalidates, remembered per classification — and decided afresh
// for another role or search_path, a re-read catalog, or when the memo is full.
#include "cache/write_tables_memo.h"

#include <gtest/gtest.h>

#include <memory>

#include "router/classify.h"

namespace pgs::cache {
namespace {

using Tables = std::vector<std::string>;

std::shared_ptr<const router::Classification> classified(const char* sql) {
  return std::make_shared<const router::Classification>(router::classify(sql));
}

SessionFacts facts(std::string_view role, std::string_view search_path = "\"$user\", public") {
  SessionFacts f;
  f.role = role;
  f.search_path = search_path;
  return f;
}

std::shared_ptr<const WriteDependencies> cascade(const char* from, const char* to) {
  return std::make_shared<const WriteDependencies>(WriteDependencies::from_rows({{"cascade", from, to}}));
}

TEST(WriteTablesMemo, AnswersAStatementAgainWithoutDecidingAgain) {
  WriteTablesMemo memo;
  auto update = classified("UPDATE things SET a = 1");
  EXPECT_EQ(memo.tables(update, facts("app"), nullptr), (Tables{"app.things", "public.things"}));
  EXPECT_EQ(memo.tables(update, facts("app"), nullptr), (Tables{"app.things", "public.things"}));
  EXPECT_EQ(memo.hits(), 1u);
}

TEST(WriteTablesMemo, AnotherRoleOrSearchPathIsDecidedForItself) {
  WriteTablesMemo memo;
  auto update = classified("UPDATE things SET a = 1");
  EXPECT_EQ(memo.tables(update, facts("app"), nullptr), (Tables{"app.things", "public.things"}));
  EXPECT_EQ(memo.tables(update, facts("bea"), nullptr), (Tables{"bea.things", "public.things"}));
  EXPECT_EQ(memo.tables(update, facts("bea", "core"), nullptr), (Tables{"core.things"}));
  EXPECT_EQ(memo.tables(update, facts("app"), nullptr), (Tables{"app.things", "public.things"}));
  EXPECT_EQ(memo.hits(), 0u);
}

TEST(WriteTablesMemo, ExpandsWithTheWriteDependenciesItIsGivenAndForgetsOlderOnes) {
  WriteTablesMemo memo;
  auto del = classified("DELETE FROM core.workspaces");
  EXPECT_EQ(memo.tables(del, facts("app"), nullptr), (Tables{"core.workspaces"}));
  auto deps = cascade("core.workspaces", "canvas.flows");
  EXPECT_EQ(memo.tables(del, facts("app"), deps), (Tables{"canvas.flows", "core.workspaces"}));
  EXPECT_EQ(memo.tables(del, facts("app"), deps), (Tables{"canvas.flows", "core.workspaces"}));
  // The catalog read again (a new object, even with the same content): decided afresh.
  auto reread = cascade("core.workspaces", "canvas.pods");
  EXPECT_EQ(memo.tables(del, facts("app"), reread), (Tables{"canvas.pods", "core.workspaces"}));
  EXPECT_EQ(memo.hits(), 1u);
}

TEST(WriteTablesMemo, AStatementThatWritesNothingBumpsNothing) {
  WriteTablesMemo memo;
  EXPECT_TRUE(memo.tables(classified("SELECT * FROM core.users"), facts("app"), nullptr).empty());
  EXPECT_EQ(memo.tables(classified("CALL do_things()"), facts("app"), nullptr), (Tables{std::string(kAllTables)}));
}

std::shared_ptr<const conf::CacheConfig> classes(std::vector<std::string> tables) {
  auto config = std::make_shared<conf::CacheConfig>();
  conf::CacheClass cls;
  cls.name = "c";
  cls.tables = std::move(tables);
  config->classes.push_back(std::move(cls));
  return config;
}

// With the invalidation stream on, only tables a class names are bumped at COMMIT (the stream bumps the
// rest); "every table", and a cascade into a named table, still are.
TEST(WriteTablesMemo, FilteredByTheClassesItIsGivenAndDecidedAgainForOthers) {
  WriteTablesMemo memo;
  auto update = classified("UPDATE public.pgbench_accounts SET abalance = 1");
  auto del = classified("DELETE FROM core.workspaces");
  auto workspaces_only = classes({"core.workspaces"});
  EXPECT_TRUE(memo.tables(update, facts("app"), nullptr, workspaces_only).empty());
  EXPECT_EQ(memo.tables(del, facts("app"), nullptr, workspaces_only), (Tables{"core.workspaces"}));
  EXPECT_EQ(memo.tables(classified("CALL do_things()"), facts("app"), nullptr, workspaces_only),
            (Tables{std::string(kAllTables)}));
  auto flows_only = classes({"canvas.flows"});
  EXPECT_EQ(memo.tables(del, facts("app"), cascade("core.workspaces", "canvas.flows"), flows_only),
            (Tables{"canvas.flows"}));
  // A reloaded config (another object) or none at all: decided afresh, not answered from the memo.
  EXPECT_EQ(memo.tables(update, facts("app"), nullptr, classes({"public.pgbench_accounts"})),
            (Tables{"public.pgbench_accounts"}));
  EXPECT_EQ(memo.tables(update, facts("app"), nullptr), (Tables{"public.pgbench_accounts"}));
  EXPECT_TRUE(memo.tables(update, facts("app"), nullptr, workspaces_only).empty());
}

TEST(WriteTablesMemo, StaysWithinItsBound) {
  WriteTablesMemo memo(2);
  std::vector<std::shared_ptr<const router::Classification>> held;
  for (const char* sql : {"UPDATE a.t SET x = 1", "UPDATE b.t SET x = 1", "UPDATE c.t SET x = 1"}) {
    held.push_back(classified(sql));
    memo.tables(held.back(), facts("app"), nullptr);
    EXPECT_LE(memo.size(), 2u);
  }
  EXPECT_EQ(memo.tables(held.back(), facts("app"), nullptr), (Tables{"c.t"}));
  EXPECT_EQ(memo.hits(), 1u);
  WriteTablesMemo none(0);
  EXPECT_EQ(none.tables(held.front(), facts("app"), nullptr), (Tables{"a.t"}));
  EXPECT_EQ(none.size(), 0u);
}

}  // namespace
}  // namespace pgs::cache
