// Issue 3, session settings under transaction pooling: one client's SET / RESET / SET LOCAL /
// SET ROLE / startup parameters are never visible to another client sharing its server connection,
// follow the client to another server, and SHOW / current_setting() give the client's own value.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/session/session_util.h"

namespace pgs::it::session {
namespace {

using SettingsTest = ProxyTest;

constexpr const char* kRole = "pgs_session_role";

// What each test compares: SHOW and current_setting() of the settings issue 3 names.
struct Visible {
  std::string search_path, statement_timeout, timezone, application_name, current_user;
  bool operator==(const Visible&) const = default;
};

Visible read_visible(Pg& c) {
  PgResult r = c.exec(
      "SELECT current_setting('search_path'), current_setting('statement_timeout'), "
      "current_setting('TimeZone'), current_setting('application_name'), current_user");
  if (!r.ok() || r.rows() != 1) throw std::runtime_error("read_visible: " + r.error());
  return {r.value(0, 0), r.value(0, 1), r.value(0, 2), r.value(0, 3), r.value(0, 4)};
}

std::ostream& operator<<(std::ostream& os, const Visible& v) {
  return os << "{search_path=" << v.search_path << " statement_timeout=" << v.statement_timeout
            << " TimeZone=" << v.timezone << " application_name=" << v.application_name
            << " current_user=" << v.current_user << "}";
}

void ensure_role() {
  Pg su = superuser(kDatabase);
  su.exec(std::string("CREATE ROLE ") + kRole + " NOLOGIN");  // fails harmlessly when it exists
  su.must(std::string("GRANT ") + kRole + " TO " + kUser);
}

// A's SETs, applied in autocommit statements (each its own transaction).
void set_a(Pg& a) {
  a.must("SET search_path = pg_catalog, information_schema");
  a.must("SET statement_timeout = '41s'");
  a.must("SET TimeZone = 'Asia/Kathmandu'");
  a.must("SET application_name = 'client-a'");
  a.must(std::string("SET ROLE ") + kRole);
}

const Visible kAExpected{"pg_catalog, information_schema", "41s", "Asia/Kathmandu", "client-a", kRole};

// Pool of 1: A and B take turns on the same server connection; B never sees A's settings, and A
// keeps them (SHOW and current_setting) after B used the server.
TEST_F(SettingsTest, ClientSettingsNeverVisibleToAnotherClientOnTheSameServer) {
  ensure_role();
  Proxy& p = start_proxy(small_pool(1));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  const Visible b_before = read_visible(b);
  set_a(a);
  if (!p.direct()) {
    EXPECT_EQ(backend_pid(a), backend_pid(b)) << "pool of 1: one server connection";
  }
  EXPECT_EQ(read_visible(b), b_before);
  EXPECT_EQ(b.scalar("SHOW search_path"), b_before.search_path);
  EXPECT_EQ(b.scalar("SHOW statement_timeout"), b_before.statement_timeout);
  EXPECT_EQ(b.scalar("SHOW TimeZone"), b_before.timezone);
  EXPECT_EQ(b.scalar("SHOW application_name"), b_before.application_name);
  EXPECT_EQ(b.scalar("SELECT session_user"), kUser);
  EXPECT_EQ(read_visible(a), kAExpected);
  EXPECT_EQ(a.scalar("SHOW search_path"), kAExpected.search_path);
  EXPECT_EQ(a.scalar("SHOW statement_timeout"), "41s");
  EXPECT_EQ(a.scalar("SHOW role"), kRole);
  EXPECT_EQ(read_visible(b), b_before);  // and back again
}

// Startup parameters are per client too: two clients with different application_name / options.
TEST_F(SettingsTest, StartupParametersArePerClient) {
  Proxy& p = start_proxy(small_pool(1));
  ConnSpec sa = p.spec(), sb = p.spec();
  sa.extra["application_name"] = "alpha";
  sa.extra["options"] = "-c statement_timeout=17s";
  sb.extra["application_name"] = "beta";
  Pg a = connect(sa);
  Pg b = connect(sb);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(a.scalar("SHOW application_name"), "alpha");
    EXPECT_EQ(b.scalar("SHOW application_name"), "beta");
    EXPECT_EQ(a.scalar("SELECT current_setting('statement_timeout')"), "17s");
    EXPECT_NE(b.scalar("SELECT current_setting('statement_timeout')"), "17s");
  }
}

// Holds servers in open transactions until one of them is `pid`; returns the holders (the others
// are committed, so their servers are free again).
std::vector<Pg> hold_server(Proxy& p, int pid, int pool_size) {
  std::vector<Pg> holders;
  for (int i = 0; i < pool_size; ++i) {
    Pg h = connect(p.spec());
    h.must("BEGIN");
    bool found = backend_pid(h) == pid;
    holders.push_back(std::move(h));
    if (found) break;
  }
  if (backend_pid(holders.back()) != pid) throw std::runtime_error("could not reach the server");
  for (size_t i = 0; i + 1 < holders.size(); ++i) holders[i].must("COMMIT");
  std::vector<Pg> kept;
  kept.push_back(std::move(holders.back()));
  return kept;
}

// Pool of 2: A sets everything on one server, that server is then held by another client in a
// transaction, so A's next statements run on the other server — with A's settings.
TEST_F(SettingsTest, SettingsFollowTheClientToAnotherServer) {
  PGS_IT_REQUIRE_PROXY();
  ensure_role();
  Proxy& p = start_proxy(small_pool(2));
  Pg a = connect(p.spec());
  set_a(a);
  const int first = backend_pid(a);
  std::vector<Pg> holder = hold_server(p, first, 2);
  const int second = backend_pid(a);
  ASSERT_NE(first, second) << "A must have moved to the other server connection";
  EXPECT_EQ(read_visible(a), kAExpected);
  EXPECT_EQ(a.scalar("SHOW TimeZone"), "Asia/Kathmandu");
  // The holder, on A's first server, still has its own (default) settings.
  EXPECT_EQ(holder[0].scalar("SELECT current_user"), kUser);
  EXPECT_NE(holder[0].scalar("SHOW statement_timeout"), "41s");
  holder[0].must("COMMIT");
}

// SET inside a transaction that rolls back is not kept (nor replayed elsewhere); SET LOCAL ends with
// its transaction; RESET ALL brings back the defaults.
TEST_F(SettingsTest, RolledBackSetLocalAndResetAll) {
  Proxy& p = start_proxy(small_pool(1));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  const Visible defaults = read_visible(a);

  a.must("BEGIN");
  a.must("SET statement_timeout = '7s'");
  a.must("SET search_path = pg_catalog");
  EXPECT_EQ(a.scalar("SHOW statement_timeout"), "7s");
  a.must("ROLLBACK");
  EXPECT_EQ(read_visible(a), defaults);
  EXPECT_EQ(read_visible(b), defaults);

  a.must("BEGIN");
  a.must("SET LOCAL statement_timeout = '9s'");
  EXPECT_EQ(a.scalar("SHOW statement_timeout"), "9s");
  a.must("COMMIT");
  EXPECT_EQ(a.scalar("SHOW statement_timeout"), defaults.statement_timeout);
  EXPECT_EQ(b.scalar("SHOW statement_timeout"), defaults.statement_timeout);

  a.must("SELECT set_config('statement_timeout', '11s', false)");
  a.must("SET TimeZone = 'Pacific/Chatham'");
  EXPECT_EQ(b.scalar("SHOW statement_timeout"), defaults.statement_timeout);
  EXPECT_EQ(a.scalar("SHOW statement_timeout"), "11s");
  a.must("RESET ALL");
  EXPECT_EQ(read_visible(a), defaults);
  EXPECT_EQ(read_visible(b), defaults);
}

// A SET that fails (bad value) changes nothing; a SET inside a failed transaction block neither.
TEST_F(SettingsTest, FailedSetChangesNothing) {
  Proxy& p = start_proxy(small_pool(1));
  Pg a = connect(p.spec());
  const std::string before = a.scalar("SHOW statement_timeout");
  EXPECT_EQ(sqlstate_of(a, "SET statement_timeout = 'not a duration'"), "22023");
  a.must("BEGIN");
  a.must("SET statement_timeout = '5s'");
  EXPECT_EQ(sqlstate_of(a, "SELECT 1/0"), "22012");
  a.must("COMMIT");  // of a failed transaction: rolls back
  EXPECT_EQ(a.scalar("SHOW statement_timeout"), before);
}

// Many clients at once on a pool of 2, each with its own settings, some changed inside transactions
// with SET LOCAL: every answer is the client's own.
TEST_F(SettingsTest, TwelveClientsTwoServersEachSeesItsOwnSettings) {
  Proxy& p = start_proxy(small_pool(2, "30s"));
  constexpr int kClients = 12;
  std::vector<std::string> errors(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      const std::string app = "c" + std::to_string(i), timeout = std::to_string(i + 1) + "s";
      try {
        Pg c = connect(p.spec());
        c.must("SET application_name = '" + app + "'");
        c.must("SET statement_timeout = '" + timeout + "'");
        for (int k = 0; k < 30 && errors[i].empty(); ++k) {
          if (k % 5 == 0) {
            c.must("BEGIN");
            c.must("SET LOCAL application_name = 'local" + app + "'");
            if (c.scalar("SHOW application_name") != "local" + app) errors[i] = "SET LOCAL not seen";
            c.must("COMMIT");
          }
          PgResult r = c.exec(
              "SELECT current_setting('application_name'), current_setting('statement_timeout')");
          if (!r.ok()) errors[i] = r.error();
          else if (r.value(0, 0) != app || r.value(0, 1) != timeout)
            errors[i] = "saw " + r.value(0, 0) + "/" + r.value(0, 1) + " at round " + std::to_string(k);
        }
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(errors[i], "") << "client " << i;
}

}  // namespace
}  // namespace pgs::it::session
