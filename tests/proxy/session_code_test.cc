// Issue 10, default-deny session tracking: which statements provably cannot change session state
// (proxy/session/session_code.h) and what a full probe reads back (proxy/session/session_tracker.h).
#include "proxy/session/session_code.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proxy/session/session_tracker.h"
#include "router/classify.h"

namespace pgs::proxy {
namespace {

using cache::CatalogRow;

SessionCodeCatalog catalog(std::vector<CatalogRow> rows) { return SessionCodeCatalog::from_rows(rows); }

bool runs_code(const std::string& sql, const SessionCodeCatalog* c) {
  return may_run_session_code(router::classify(sql), c);
}

const std::vector<CatalogRow> kRows = {
    {"relation", "public.accounts", "plain"},   {"relation", "public.audited", "code"},
    {"relation", "app.accounts", "plain"},      {"relation", "app.audited", "plain"},
    {"relation", "public.parent", "plain"},     {"relation", "public.child", "code"},
    {"relation", "pg_catalog.pg_class", "plain"}, {"cascade", "public.parent", "public.child"},
    {"user_functions", "0", ""},
};

TEST(SessionCode, OpaqueStatementsAlwaysRunCode) {
  SessionCodeCatalog c = catalog(kRows);
  for (const char* sql : {"DO $$ BEGIN PERFORM pg_advisory_lock(1); END $$", "CALL p()", "EXECUTE q",
                          "SELECT my_function()", "SELECT app.f(1) FROM accounts", "LOAD 'auto_explain'",
                          "SELECT set_config('app.' || 'x', 'y', false)", "not sql at all",
                          "CREATE TABLE x (id int)"}) {
    EXPECT_TRUE(runs_code(sql, &c)) << sql;
  }
}

TEST(SessionCode, PlainRelationsAndBuiltinsRunNone) {
  SessionCodeCatalog c = catalog(kRows);
  EXPECT_TRUE(c.loaded());
  for (const char* sql : {"SELECT 1", "SELECT count(*) FROM accounts", "UPDATE public.accounts SET x = lower('A')",
                          "INSERT INTO app.accounts VALUES (1)", "SELECT relname FROM pg_catalog.pg_class",
                          "BEGIN", "COMMIT"}) {
    EXPECT_FALSE(runs_code(sql, &c)) << sql;
  }
}

TEST(SessionCode, RelationsWithCodeUnknownOrAmbiguous) {
  SessionCodeCatalog c = catalog(kRows);
  EXPECT_TRUE(runs_code("INSERT INTO public.audited VALUES (1)", &c));
  EXPECT_TRUE(runs_code("SELECT * FROM audited", &c)) << "unqualified: code in one of its schemas";
  EXPECT_FALSE(runs_code("SELECT * FROM app.audited", &c));
  EXPECT_TRUE(runs_code("SELECT * FROM created_since_the_last_read", &c)) << "unknown relations run code";
  EXPECT_TRUE(runs_code("DELETE FROM parent", &c)) << "a cascade reaches a table with code";
  EXPECT_TRUE(runs_code("SELECT * FROM accounts", nullptr)) << "no catalog: nothing is known";
  EXPECT_FALSE(runs_code("SELECT 1", nullptr));
}

TEST(SessionCode, CodeFreeOnlyWithoutFunctionsAndCode) {
  EXPECT_FALSE(catalog(kRows).code_free()) << "public.audited has code";
  EXPECT_TRUE(catalog({{"relation", "public.a", "plain"}, {"user_functions", "0", ""}}).code_free());
  EXPECT_FALSE(catalog({{"relation", "public.a", "plain"}, {"user_functions", "3", ""}}).code_free());
  EXPECT_FALSE(catalog({{"relation", "public.a", "plain"}}).code_free()) << "not read: nothing is proven";
  EXPECT_FALSE(catalog({{"relation", "public.a", "plain"}, {"user_functions", "x", ""}}).code_free());
}

TEST(SessionCode, PartitionOfAParentWithCode) {
  SessionCodeCatalog c = catalog({{"relation", "public.m", "plain"}, {"relation", "public.m_1", "code"},
                                  {"partition", "public.m_1", "public.m"}, {"user_functions", "1", ""}});
  EXPECT_TRUE(runs_code("INSERT INTO m VALUES (1)", &c));
}

TEST(SessionCode, CustomSettingNamesQuotedInTheText) {
  using V = std::vector<std::string>;
  EXPECT_EQ(custom_setting_names("DO $$ BEGIN PERFORM set_config('App.Tenant', 'x', false); END $$"), V{"app.tenant"});
  EXPECT_EQ(custom_setting_names("SELECT 'a.b', 'a.b', 'c.d_1'"), (V{"a.b", "c.d_1"}));
  EXPECT_EQ(custom_setting_names("SELECT 'no', 'a.b.c', '.a', 'a.', 'a b.c', 'x' || 'y.z'"), V{"y.z"});
  EXPECT_EQ(custom_setting_names("'unterminated.name"), V{});
  std::string many;
  for (int i = 0; i < 100; ++i) many += "'p.n" + std::to_string(i) + "' ";
  EXPECT_EQ(custom_setting_names(many).size(), 64u);
}

TEST(SessionCode, CustomSettingsFromTheCatalog) {
  SessionCodeCatalog c = catalog({{"custom_setting", "app.tenant", ""}, {"user_functions", "1", ""}});
  EXPECT_EQ(c.custom_settings(), std::vector<std::string>{"app.tenant"});
}

TEST(SessionTrackerFullProbe, ReadsEverySessionSettingAndReportsNewOnes) {
  SessionTracker t;
  t.request_full_probe();
  ASSERT_TRUE(t.needs_probe());
  std::string sql = t.begin_probe("flopods", {"application_name"});
  EXPECT_NE(sql.find("current_setting('application_name', true)"), std::string::npos) << sql;
  EXPECT_NE(sql.find("pg_settings"), std::string::npos) << sql;
  ASSERT_EQ(t.probe_columns(), 1 + kPinReasonCount + 1);
  std::vector<std::optional<std::string>> row = {"app1"};
  for (size_t i = 0; i < kPinReasonCount; ++i) row.push_back("0");
  row.push_back(R"({"application_name": "app1", "app.tenant": "a", "session_authorization": "x", "DateStyle": "ISO, MDY"})");
  std::vector<std::pair<std::string, std::string>> found;
  ASSERT_TRUE(t.apply_probe(row, &found));
  std::vector<std::pair<std::string, std::string>> want = {{"app.tenant", "a"}, {"datestyle", "ISO, MDY"}};
  EXPECT_EQ(found, want);
  EXPECT_FALSE(t.pinned());
  // The next probe is an ordinary one again.
  t.request_probe();
  t.begin_probe("flopods");
  EXPECT_EQ(t.probe_columns(), kPinReasonCount);
}

TEST(SessionTrackerFullProbe, MalformedJsonIsAnError) {
  SessionTracker t;
  t.request_full_probe();
  t.begin_probe("u");
  std::vector<std::optional<std::string>> row(kPinReasonCount, std::string("0"));
  row.push_back("{not json");
  std::vector<std::pair<std::string, std::string>> found;
  EXPECT_FALSE(t.apply_probe(row, &found));
}

TEST(SessionTracker, BoundSetConfigValueIsWatched) {
  SessionTracker t;
  t.note(router::classify("SELECT set_config('app.tenant', $1, false)"));
  EXPECT_TRUE(t.needs_probe());
  t.begin_probe("u");
  ASSERT_EQ(t.probe_settings().size(), 1u);
  EXPECT_EQ(t.probe_settings()[0], "app.tenant");
}

}  // namespace
}  // namespace pgs::proxy
