// ClientSessionState, event by event, with no network, no worker and no Postgres: the test hands it what
// the connection would (each statement, classified by the real parser through a SessionSources of fixed
// values; the release point; the probe's row as a server would send it; each ParameterStatus) and reads
// what it decides.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/dependencies.h"
#include "proxy/session/client_statements.h"
#include "proxy/session/session_code.h"
#include "proxy/session/session_params.h"
#include "proxy/session_state/client_session_state.h"
#include "router/classify.h"

namespace pgs::proxy {
namespace {

constexpr size_t kListen = static_cast<size_t>(PinReason::listen);
constexpr size_t kSqlPrepare = static_cast<size_t>(PinReason::sql_prepare);

// A catalog of one database: `with_code` has a user function and a table with a trigger (audited).
std::unique_ptr<SessionCodeCatalog> catalog(bool with_code) {
  std::vector<cache::CatalogRow> rows = {{"relation", "public.accounts", "plain"},
                                         {"user_functions", with_code ? "1" : "0", ""}};
  if (with_code) {
    rows.push_back({"relation", "public.audited", "code"});
    rows.push_back({"custom_setting", "app.tenant", ""});
  }
  return std::make_unique<SessionCodeCatalog>(SessionCodeCatalog::from_rows(rows));
}

// The worker's side of a check, as fixed values; counts what was asked.
class FixedSources final : public SessionSources {
 public:
  std::unique_ptr<SessionCodeCatalog> code = catalog(false);
  bool refuse = false;
  GucMap settings;
  std::map<std::string, std::string> sql_prepared;  // the gate's statements: name -> PREPARE text
  int classified = 0;
  int memo_asks = 0;
  std::map<std::string, bool> memo;  // by text: stands for the worker's memo by shape

  std::shared_ptr<const router::Classification> classify(std::string_view sql) override {
    ++classified;
    return std::make_shared<const router::Classification>(router::classify(sql));
  }
  const SessionCodeCatalog* session_code() override { return code.get(); }
  bool runs_session_code(std::string_view sql, const std::function<bool()>& decide, uint64_t* shape) override {
    ++memo_asks;
    if (shape != nullptr) *shape = 42;
    auto it = memo.find(std::string(sql));
    if (it != memo.end()) return it->second;
    return memo[std::string(sql)] = decide();
  }
  bool refuse_pins() override { return refuse; }
  const GucMap& client_settings() override { return settings; }
  const std::string* sql_prepared_definition(const std::string& name) override {
    auto it = sql_prepared.find(name);
    return it == sql_prepared.end() ? nullptr : &it->second;
  }
};

// The probe's row as the server answers it: the settings' values, then the counts in PinReason order
// (the sql_prepare column holds the JSON array of the server's statement names), then for a full probe
// the JSON object of every session-set setting.
std::vector<std::optional<std::string>> probe_row(std::vector<std::optional<std::string>> settings,
                                                  std::map<PinReason, std::string> counts,
                                                  std::optional<std::string> full = std::nullopt,
                                                  std::string server_names = "[]") {
  std::vector<std::optional<std::string>> row = std::move(settings);
  for (size_t r = 0; r < kPinReasonCount; ++r) {
    auto it = counts.find(static_cast<PinReason>(r));
    row.emplace_back(r == kSqlPrepare ? server_names : it != counts.end() ? it->second : "0");
  }
  if (full) row.push_back(*full);
  return row;
}

size_t no_untracked(const std::vector<std::string>&) { return 0; }

class ClientSessionStateTest : public ::testing::Test {
 protected:
  StatementCheck note(std::string_view sql) { return state.note_statement(sql, statements, sources); }
  std::optional<std::string> release() {
    state.on_release_point();
    return state.probe_at_release("alice", sources.settings);
  }

  FixedSources sources;
  ClientStatements statements{[](std::string_view) { return SqlPrepEffectsRef(); }};
  ClientSessionState state;
};

TEST_F(ClientSessionStateTest, APlainStatementInACodeFreeDatabaseCostsNoParseAndNoProbe) {
  StatementCheck c = note("SELECT abalance FROM accounts WHERE aid = 1");
  EXPECT_FALSE(c.changes_session);
  EXPECT_TRUE(c.replacement.empty());
  EXPECT_FALSE(c.settings_unknown);
  EXPECT_EQ(sources.classified, 0);
  EXPECT_EQ(sources.memo_asks, 0);
  EXPECT_FALSE(release().has_value());
  EXPECT_FALSE(state.probe_running());
}

TEST_F(ClientSessionStateTest, UnseenCodeIsDecidedOncePerShapeAndProbedInFull) {
  sources.code = catalog(true);
  uint64_t shape = 0;
  StatementCheck c = state.note_statement("INSERT INTO audited VALUES (1)", statements, sources, std::nullopt, &shape);
  EXPECT_TRUE(c.changes_session);
  EXPECT_TRUE(c.settings_unknown);  // a trigger may have set anything
  EXPECT_EQ(shape, 42u);
  EXPECT_EQ(sources.classified, 1);
  StatementCheck again = note("INSERT INTO audited VALUES (1)");
  EXPECT_TRUE(again.settings_unknown);
  EXPECT_EQ(sources.classified, 1);  // the memo answered
  // A table without code, in a database with code: classified, proven neutral.
  StatementCheck plain = note("SELECT 1 FROM public.accounts");
  EXPECT_FALSE(plain.changes_session);
  EXPECT_FALSE(plain.settings_unknown);

  std::optional<std::string> probe = release();
  ASSERT_TRUE(probe.has_value());
  EXPECT_TRUE(state.probe_running());
  EXPECT_NE(probe->find("source = 'session'"), std::string::npos) << *probe;  // every session-set setting
  EXPECT_NE(probe->find("'app.tenant'"), std::string::npos) << *probe;  // the catalog's custom setting
}

TEST_F(ClientSessionStateTest, ReservedStatementNamesAreRefusedOnTheServer) {
  for (const char* sql : {"PREPARE pgsidecar_1 AS SELECT 1", "EXECUTE pgsidecar_1", "DEALLOCATE pgsidecar_1"}) {
    StatementCheck c = note(sql);
    EXPECT_EQ(c.replacement, ClientSessionState::kReservedNameRefusal) << sql;
    EXPECT_NE(c.replacement.find("42501"), std::string::npos);
    EXPECT_FALSE(c.changes_session) << sql;
  }
  EXPECT_FALSE(release().has_value());
}

TEST_F(ClientSessionStateTest, RefuseModeReplacesAStatementThatWouldPin) {
  sources.refuse = true;
  StatementCheck c = note("LISTEN jobs");
  EXPECT_EQ(c.replacement, ClientSessionState::pin_refusal(PinReason::listen));
  EXPECT_NE(c.replacement.find("ERRCODE = '0A000'"), std::string::npos);
  EXPECT_NE(c.replacement.find("listen is not supported in transaction pooling"), std::string::npos);
  EXPECT_FALSE(c.changes_session);
  EXPECT_FALSE(release().has_value());  // it never ran

  EXPECT_NE(note("SELECT pg_advisory_lock(1)").replacement.find("advisory_lock is not supported"), std::string::npos);
  EXPECT_TRUE(note("SET search_path = a").replacement.empty());  // replayable: not a pin
}

TEST_F(ClientSessionStateTest, PinsComeAndGoWithWhatTheProbeReads) {
  StatementCheck c = note("LISTEN jobs");
  EXPECT_TRUE(c.changes_session);
  EXPECT_TRUE(c.replacement.empty());
  ASSERT_TRUE(release().has_value());

  ProbeOutcome listening = state.on_probe_row(probe_row({}, {{PinReason::listen, "1"}}), no_untracked);
  ASSERT_TRUE(listening.ok);
  EXPECT_FALSE(state.probe_running());
  EXPECT_EQ(listening.pin_changes[kListen], 1);
  EXPECT_TRUE(state.pinned());
  EXPECT_TRUE(state.pinned_for(PinReason::listen));
  EXPECT_EQ(state.pin_reasons(), "listen");
  EXPECT_TRUE(state.server_needs_reset());
  EXPECT_TRUE(state.holds_server_state());

  // While pinned, any statement may release what pins: probed again.
  EXPECT_FALSE(note("SELECT 1").changes_session);
  ASSERT_TRUE(release().has_value());
  ProbeOutcome released = state.on_probe_row(probe_row({}, {}), no_untracked);
  ASSERT_TRUE(released.ok);
  EXPECT_EQ(released.pin_changes[kListen], -1);
  EXPECT_FALSE(state.pinned());
  EXPECT_EQ(state.pin_reasons(), "");
  EXPECT_FALSE(state.server_needs_reset());
}

TEST_F(ClientSessionStateTest, SqlPreparedStatementsNobodyTracksPin) {
  EXPECT_TRUE(note("DO $$BEGIN EXECUTE 'PREPARE q AS SELECT 1'; END$$").changes_session);
  ASSERT_TRUE(release().has_value());
  std::vector<std::string> seen;
  ProbeOutcome probe = state.on_probe_row(probe_row({}, {}, "{}", R"(["q","pgsidecar_1"])"),
                                          [&](const std::vector<std::string>& names) {
                                            seen = names;
                                            return size_t{1};  // q: nobody tracks it
                                          });
  ASSERT_TRUE(probe.ok);
  EXPECT_EQ(seen, (std::vector<std::string>{"q", "pgsidecar_1"}));
  EXPECT_EQ(probe.pin_changes[kSqlPrepare], 1);
  EXPECT_EQ(state.pin_reasons(), "sql_prepare");
}

TEST_F(ClientSessionStateTest, AProbeRowOfTheWrongShapeFailsTheSession) {
  note("LISTEN jobs");
  ASSERT_TRUE(release().has_value());
  ProbeOutcome short_row = state.on_probe_row({std::string("1")}, no_untracked);
  EXPECT_FALSE(short_row.ok);
  EXPECT_EQ(short_row.warning, "1 values for 0 settings");

  note("LISTEN jobs");
  ASSERT_TRUE(release().has_value());
  ProbeOutcome bad_names = state.on_probe_row(probe_row({}, {}, std::nullopt, "not json"), no_untracked);
  EXPECT_FALSE(bad_names.ok);
  EXPECT_TRUE(bad_names.warning.empty());
}

TEST_F(ClientSessionStateTest, ASettingIsReadBackAndReplayed) {
  EXPECT_TRUE(note("SET search_path = app, public").changes_session);
  std::optional<std::string> probe = release();
  ASSERT_TRUE(probe.has_value());
  EXPECT_NE(probe->find("current_setting('search_path', true)"), std::string::npos) << *probe;
  ProbeOutcome read = state.on_probe_row(probe_row({std::string("app, public")}, {}), no_untracked);
  ASSERT_TRUE(read.ok);
  ASSERT_EQ(read.settings.size(), 1u);
  EXPECT_EQ(read.settings[0].first, "search_path");
  EXPECT_EQ(read.settings[0].second, "app, public");
  EXPECT_FALSE(state.holds_server_state());
}

TEST_F(ClientSessionStateTest, DiscardAllWatchesEverySettingAndForgetsTheProtocolStatements) {
  sources.settings.set("search_path", "app");
  sources.settings.set("statement_timeout", "5s");
  ASSERT_TRUE(statements.remember("s1", "SELECT 1", {}));
  StatementCheck c = note("DISCARD ALL");
  EXPECT_TRUE(c.changes_session);
  EXPECT_TRUE(c.statements_cleared);
  EXPECT_EQ(statements.find("s1"), nullptr);
  std::optional<std::string> probe = release();
  ASSERT_TRUE(probe.has_value());
  EXPECT_NE(probe->find("'search_path'"), std::string::npos) << *probe;
  EXPECT_NE(probe->find("'statement_timeout'"), std::string::npos) << *probe;
  // Both are back at their defaults: unset in the session.
  ProbeOutcome read = state.on_probe_row(probe_row({std::nullopt, std::nullopt}, {}), no_untracked);
  ASSERT_TRUE(read.ok);
  ASSERT_EQ(read.settings.size(), 2u);
  EXPECT_FALSE(read.settings[0].second.has_value());
  EXPECT_FALSE(read.settings[1].second.has_value());
}

TEST_F(ClientSessionStateTest, ResetAllWatchesEverySettingAndKeepsTheStatements) {
  sources.settings.set("search_path", "app");
  ASSERT_TRUE(statements.remember("s1", "SELECT 1", {}));
  StatementCheck c = note("RESET ALL");
  EXPECT_FALSE(c.statements_cleared);
  EXPECT_NE(statements.find("s1"), nullptr);
  std::optional<std::string> probe = release();
  ASSERT_TRUE(probe.has_value());
  EXPECT_NE(probe->find("'search_path'"), std::string::npos) << *probe;
}

TEST_F(ClientSessionStateTest, ADeallocateOfAProtocolStatementDeallocatesItsServerSideName) {
  ASSERT_TRUE(statements.remember("s1", "SELECT 1", {}));
  const std::string server_name = statements.find("s1")->server_name;
  StatementCheck c = note("DEALLOCATE s1");
  ASSERT_NE(c.deallocated, nullptr);
  EXPECT_EQ(c.deallocated->server_name, server_name);
  EXPECT_EQ(c.replacement, "DEALLOCATE \"" + server_name + "\"");
  EXPECT_EQ(statements.find("s1"), nullptr);
  EXPECT_FALSE(c.changes_session);
  EXPECT_FALSE(release().has_value());
}

TEST_F(ClientSessionStateTest, AnExecuteIsJudgedByTheStatementItPrepared) {
  sources.code = catalog(true);
  sources.sql_prepared["q"] = "PREPARE q AS SELECT 1 FROM public.accounts";
  sources.sql_prepared["w"] = "PREPARE w AS INSERT INTO audited VALUES (1)";
  StatementCheck tracked = note("EXECUTE q");
  EXPECT_FALSE(tracked.changes_session);
  EXPECT_FALSE(tracked.settings_unknown);
  EXPECT_FALSE(release().has_value());

  EXPECT_TRUE(note("EXECUTE w").settings_unknown);  // its table has a trigger
  EXPECT_TRUE(release().has_value());
  EXPECT_TRUE(note("EXECUTE unknown").settings_unknown);  // prepared where the proxy did not see it
}

TEST_F(ClientSessionStateTest, AFunctionCallOrAnUnreadStatementIsProbedInFull) {
  state.on_function_call(nullptr);
  std::optional<std::string> probe = release();
  ASSERT_TRUE(probe.has_value());
  // Nothing is watched by name: the counts, then every session-set setting (one discovered).
  ProbeOutcome read = state.on_probe_row(probe_row({}, {}, R"({"app.tenant": "7"})"), no_untracked);
  ASSERT_TRUE(read.ok);
  ASSERT_EQ(read.settings.size(), 1u);
  EXPECT_EQ(read.settings[0].first, "app.tenant");
  EXPECT_EQ(read.settings[0].second, "7");

  sources.settings.set("search_path", "app");
  state.on_unread_statement(nullptr);
  probe = release();
  ASSERT_TRUE(probe.has_value());
  EXPECT_NE(probe->find("'search_path'"), std::string::npos) << *probe;  // a full probe reads what the client has
}

TEST_F(ClientSessionStateTest, TheClientIsToldOfAParameterOnlyWhenItChanged) {
  state.note_reported("TimeZone", "UTC");
  EXPECT_FALSE(state.on_parameter_status("TimeZone", "UTC"));
  EXPECT_TRUE(state.on_parameter_status("TimeZone", "Europe/Paris"));
  EXPECT_FALSE(state.on_parameter_status("TimeZone", "Europe/Paris"));
  EXPECT_TRUE(state.on_parameter_status("application_name", "psql"));  // never told
}

TEST(SettingsSync, ANewServerGetsTheClientsSettings) {
  GucMap desired, applied, defaults;
  desired.set("search_path", "app");
  defaults.set("search_path", "\"$user\", public");
  SettingsSync s = settings_sync(desired, applied, defaults, false);
  EXPECT_NE(s.sql.find("search_path"), std::string::npos) << s.sql;
  EXPECT_EQ(s.sql.find("RESET ALL"), std::string::npos) << s.sql;
  ASSERT_NE(s.applied_after.get("search_path"), nullptr);
  EXPECT_EQ(*s.applied_after.get("search_path"), "app");

  // The server has them already: nothing to run, and its record stays.
  SettingsSync same = settings_sync(desired, s.applied_after, defaults, false);
  EXPECT_EQ(same.sql, "");
  EXPECT_EQ(same.applied_after, s.applied_after);

  // Unseen code ran there: reset everything, then set the client's from the defaults.
  SettingsSync unknown = settings_sync(desired, s.applied_after, defaults, true);
  EXPECT_EQ(unknown.sql.rfind("RESET ALL;", 0), 0u) << unknown.sql;
  EXPECT_NE(unknown.sql.find("search_path"), std::string::npos) << unknown.sql;
}

}  // namespace
}  // namespace pgs::proxy
