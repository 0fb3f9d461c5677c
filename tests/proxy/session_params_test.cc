#include "proxy/session/session_params.h"

#include <gtest/gtest.h>

namespace pgs::proxy {
namespace {

protocol::frontend::Startup startup(std::vector<std::pair<std::string_view, std::string_view>> params) {
  protocol::frontend::Startup s{};
  s.protocol_version = protocol::kProtocol30;
  s.params = std::move(params);
  return s;
}

TEST(GucMap, FoldsNamesAndKeepsOrder) {
  GucMap m;
  m.set("TimeZone", "UTC");
  m.set("application_name", "a");
  m.set("timezone", "Europe/Paris");
  ASSERT_EQ(m.items().size(), 2u);
  EXPECT_EQ(*m.get("TIMEZONE"), "Europe/Paris");
  EXPECT_EQ(m.items()[0].first, "application_name");
  EXPECT_TRUE(m.erase("TimeZone"));
  EXPECT_EQ(m.get("timezone"), nullptr);
}

// get() finds a name in any case, and only that name: not one it is a prefix of, nor a neighbour.
TEST(GucMap, GetMatchesTheWholeNameInAnyCase) {
  GucMap m;
  for (const char* name : {"app.tenant", "app.tenant_id", "App.Z", "search_path", "a", "zz"}) m.set(name, name);
  EXPECT_EQ(*m.get("APP.TENANT"), "app.tenant");
  EXPECT_EQ(*m.get("app.Tenant_ID"), "app.tenant_id");
  EXPECT_EQ(*m.get("app.z"), "App.Z");
  EXPECT_EQ(*m.get("A"), "a");
  EXPECT_EQ(m.get("app.tenan"), nullptr);
  EXPECT_EQ(m.get("app.tenant_"), nullptr);
  EXPECT_EQ(m.get("search_path2"), nullptr);
  EXPECT_EQ(m.get(""), nullptr);
  EXPECT_EQ(m.get("zzz"), nullptr);
  EXPECT_EQ(m.get("b"), nullptr);
}

TEST(StartupRequest, ParsesUserDatabaseSettingsAndOptions) {
  auto r = parse_startup_request(startup({{"user", "u"},
                                          {"database", "d"},
                                          {"application_name", "app"},
                                          {"options", "-c statement_timeout=5s --search-path=a,b -csearch_path=x\\ y"},
                                          {"_pq_.foo", "1"}}));
  ASSERT_TRUE(std::holds_alternative<StartupRequest>(r));
  const auto& req = std::get<StartupRequest>(r);
  EXPECT_EQ(req.user, "u");
  EXPECT_EQ(req.database, "d");
  EXPECT_EQ(req.application_name, "app");
  EXPECT_EQ(*req.gucs.get("statement_timeout"), "5s");
  EXPECT_EQ(*req.gucs.get("search_path"), "x y");  // the later one wins, backslash escapes the space
  ASSERT_EQ(req.protocol_options.size(), 1u);
  EXPECT_EQ(req.protocol_options[0], "_pq_.foo");
}

TEST(StartupRequest, DatabaseDefaultsToUser) {
  auto r = parse_startup_request(startup({{"user", "alice"}}));
  ASSERT_TRUE(std::holds_alternative<StartupRequest>(r));
  EXPECT_EQ(std::get<StartupRequest>(r).database, "alice");
}

TEST(StartupRequest, Errors) {
  struct Case {
    std::vector<std::pair<std::string_view, std::string_view>> params;
    std::string sqlstate;
  };
  std::vector<Case> cases = {
      {{{"database", "d"}}, "28000"},                                  // no user
      {{{"user", "u"}, {"options", "-c"}}, "08P01"},                   // -c without a value
      {{{"user", "u"}, {"options", "--nonsense"}}, "08P01"},           // no '='
      {{{"user", "u"}, {"options", "-x"}}, "08P01"},                   // not a setting
      {{{"user", "u"}, {"bad name;", "1"}}, "42704"},                  // not a GUC name
      {{{"user", std::string_view(std::string(64, 'u'))}}, "28000"},  // too long
  };
  for (const auto& c : cases) {
    auto r = parse_startup_request(startup(c.params));
    ASSERT_TRUE(std::holds_alternative<StartupError>(r));
    EXPECT_EQ(std::get<StartupError>(r).sqlstate, c.sqlstate);
  }
}

TEST(StartupRequest, ReplicationFlag) {
  auto on = parse_startup_request(startup({{"user", "u"}, {"replication", "database"}}));
  auto off = parse_startup_request(startup({{"user", "u"}, {"replication", "false"}}));
  EXPECT_TRUE(std::get<StartupRequest>(on).replication);
  EXPECT_FALSE(std::get<StartupRequest>(off).replication);
}

TEST(SyncSql, NothingWhenServerMatches) {
  GucMap desired, applied, defaults;
  desired.set("client_encoding", "UTF8");
  defaults.set("client_encoding", "UTF8");
  EXPECT_EQ(build_sync_sql(desired, applied, defaults), "");
}

TEST(SyncSql, SetsDifferencesAndResetsLeftovers) {
  GucMap desired, applied, defaults;
  desired.set("application_name", "it's");
  desired.set("search_path", "a, b");
  applied.set("search_path", "a, b");
  applied.set("TimeZone", "Asia/Tokyo");
  applied.set("pgsidecar.route", "replica");
  defaults.set("TimeZone", "UTC");
  std::string sql = build_sync_sql(desired, applied, defaults);
  EXPECT_EQ(sql,
            "SELECT pg_catalog.set_config('application_name', 'it''s', false);"
            "RESET \"pgsidecar\".\"route\";RESET \"timezone\";");
  GucMap after = applied_after_sync(desired, defaults);
  EXPECT_EQ(*after.get("application_name"), "it's");
  EXPECT_EQ(*after.get("search_path"), "a, b");
  EXPECT_EQ(after.get("timezone"), nullptr);
}

TEST(SyncSql, ValueAtDefaultNeedsNoReset) {
  GucMap desired, applied, defaults;
  applied.set("DateStyle", "ISO, MDY");
  defaults.set("DateStyle", "ISO, MDY");
  EXPECT_EQ(build_sync_sql(desired, applied, defaults), "");
}

// The one-walk check answers exactly what building the statement would: over every combination of a
// few names being absent, at one value or at another in each of the three maps.
TEST(SyncSql, InSyncAgreesWithTheStatementOnEveryCombination) {
  const std::vector<std::string> names = {"a", "application_name", "b.x", "timezone"};
  const std::vector<const char*> values = {nullptr, "1", "2"};  // absent, or one of two values
  size_t combos = 1;
  for (size_t i = 0; i < names.size() * 3; ++i) combos *= values.size();
  size_t in_sync = 0;
  for (size_t code = 0; code < combos; ++code) {
    GucMap maps[3];
    size_t c = code;
    for (GucMap& m : maps) {
      for (const std::string& name : names) {
        if (const char* v = values[c % values.size()]) m.set(name, v);
        c /= values.size();
      }
    }
    bool expected = build_sync_sql(maps[0], maps[1], maps[2]).empty();
    ASSERT_EQ(settings_in_sync(maps[0], maps[1], maps[2]), expected) << "combination " << code;
    in_sync += expected ? 1 : 0;
  }
  EXPECT_GT(in_sync, 0u);  // both answers were exercised
  EXPECT_LT(in_sync, combos);
}

TEST(TrackedSettings, OnlySettableReportedOnes) {
  EXPECT_TRUE(is_tracked_setting("TimeZone"));
  EXPECT_TRUE(is_tracked_setting("application_name"));
  EXPECT_FALSE(is_tracked_setting("server_version"));
  EXPECT_FALSE(is_tracked_setting("is_superuser"));
  EXPECT_FALSE(is_tracked_setting("in_hot_standby"));
}

}  // namespace
}  // namespace pgs::proxy
