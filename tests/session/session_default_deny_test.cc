// Issue 10 items 3 and 4, default-deny session tracking: state changed where the proxy does not look (a
// DO block, a user function, a trigger, a bound set_config value, a FunctionCall message) never reaches
// the next client of that server connection: the proxy probes the server after such a transaction and
// replays the settings it finds or pins the client; when the client leaves, its server is reset. A pool of
// ONE server makes any leak visible: every client of the proxy shares that server.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "tests/session/session_util.h"

namespace pgs::it::session {
namespace {

using DefaultDenyTest = ProxyTest;

// Waits until the proxy has read the catalog once (which relations run code, which custom settings
// user functions spell out); before that every relation counts as running code, and custom settings
// of unseen code are not known by name.
void wait_catalog(const Proxy& p) {
  if (p.direct()) return;
  ASSERT_TRUE(wait_until(
      [&] { return metric_value(scrape_metrics(p), "pgsidecar_cache_catalog_reads_total", "") >= 1; }, Millis(10000)))
      << "the catalog was never read";
}

// The current_setting of `name` on the connection's next server, "" when unset.
std::string setting(Pg& c, const std::string& name) {
  return c.scalar("SELECT coalesce(current_setting('" + name + "', true), '')");
}

// A session advisory lock taken inside a DO block pins its client (the only server is not lent to
// anyone else while it is held) and is gone once the client disconnects.
TEST_F(DefaultDenyTest, AdvisoryLockInDoBlockDoesNotOutliveItsClient) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start_proxy(small_pool(1, "1s"));
  {
    Pg a = connect(p.spec());
    a.must("DO $$ BEGIN PERFORM pg_advisory_lock(424201); END $$");
    EXPECT_EQ(advisory_lock_rows(424201), 1);
    Pg b = connect(p.spec());
    EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "57014") << "the server holding A's lock is not lent to B";
  }
  EXPECT_TRUE(wait_until([] { return advisory_lock_rows(424201) == 0; }, Millis(10000)))
      << "the lock outlived its client";
  Pg c = connect(p.spec());
  EXPECT_EQ(c.scalar("SELECT pg_advisory_unlock(424201)"), "f") << "the next client cannot unlock it";
}

// A setting made by a DO block follows its client and never shows on another client's transaction.
TEST_F(DefaultDenyTest, SettingMadeInDoBlockFollowsItsClient) {
  Proxy& p = start_proxy(small_pool(1));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  a.must("DO $$ BEGIN PERFORM set_config('app.tenant', 'tenant-a', false); END $$");
  EXPECT_EQ(setting(b, "app.tenant"), "") << "B saw A's setting";
  EXPECT_EQ(setting(a, "app.tenant"), "tenant-a");
  EXPECT_EQ(setting(b, "app.tenant"), "");
}

// set_config with a bound value (extended protocol): read back, not assumed.
TEST_F(DefaultDenyTest, BoundSetConfigValueFollowsItsClient) {
  Proxy& p = start_proxy(small_pool(1));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  PgResult r = a.exec_params("SELECT set_config('app.tenant', $1, false)", {"tenant-bound"});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(setting(b, "app.tenant"), "") << "B saw A's bound setting";
  EXPECT_EQ(setting(a, "app.tenant"), "tenant-bound");
  // A computed setting name: nobody can list it, so the server is reset before B runs there.
  a.must("SELECT set_config('app.' || 'region', 'eu', false)");
  EXPECT_EQ(setting(b, "app.region"), "") << "B saw A's setting of a computed name";
}

// A user function (not known to the classifier) that changes settings and locks.
TEST_F(DefaultDenyTest, UserFunctionEffectsStayWithItsClient) {
  PGS_IT_REQUIRE_PROXY();
  {
    Pg su = superuser(kDatabase);
    su.must(
        "CREATE OR REPLACE FUNCTION pgs_dd_enter(t text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN "
        "PERFORM set_config('app.tenant', t, false); PERFORM pg_advisory_lock(424202); END $$");
    su.must("GRANT EXECUTE ON FUNCTION pgs_dd_enter(text) TO " + std::string(kUser));
  }
  Proxy& p = start_proxy(small_pool(1, "1s"));
  {
    Pg a = connect(p.spec());
    a.must("SELECT pgs_dd_enter('fn-tenant')");
    EXPECT_EQ(setting(a, "app.tenant"), "fn-tenant");
    Pg b = connect(p.spec());
    EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "57014") << "A holds a lock on the only server: pinned";
  }
  EXPECT_TRUE(wait_until([] { return advisory_lock_rows(424202) == 0; }, Millis(10000)));
  Pg c = connect(p.spec());
  EXPECT_EQ(setting(c, "app.tenant"), "");
}

// A table of its own (`columns`; one row (1, 0) when it has two) with a trigger, fired by `event`,
// whose function sets app.audit: code the statement does not name.
void make_audit_trigger(const std::string& table, const std::string& event, const std::string& columns) {
  Pg su = superuser(kDatabase);
  su.must("DROP TABLE IF EXISTS " + table);
  su.must("CREATE TABLE " + table + " (" + columns + ")");
  if (columns.find(',') != std::string::npos) su.must("INSERT INTO " + table + " VALUES (1, 0)");
  su.must("GRANT ALL ON " + table + " TO " + std::string(kUser));
  su.must("CREATE OR REPLACE FUNCTION " + table + "_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
          "PERFORM set_config('app.audit', 'on', false); RETURN NEW; END $$");
  su.must("CREATE TRIGGER " + table + "_t BEFORE " + event + " ON " + table + " FOR EACH ROW EXECUTE FUNCTION " +
          table + "_fn()");
}

// A's `write(i)` fires the trigger; the setting it makes never reaches B. The same statement shape with
// other literals each round: the memoised decision (per shape) still probes.
void expect_audit_stays_with_its_client(const Proxy& p, const std::function<std::string(int)>& write) {
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  for (int i = 1; i <= 3; ++i) {
    a.must(write(i));
    EXPECT_EQ(setting(b, "app.audit"), "") << "B saw the setting A's trigger made (round " << i << ")";
    EXPECT_EQ(setting(a, "app.audit"), "on");
    b.must("SELECT set_config('app.audit', '', false)");  // B's own setting, not A's
    a.must("RESET app.audit");
  }
}

// A trigger's function runs with no name in the statement: INSERT into its table.
TEST_F(DefaultDenyTest, TriggerEffectsStayWithItsClient) {
  PGS_IT_REQUIRE_PROXY();
  make_audit_trigger("pgs_dd_trig", "INSERT", "id int");
  Proxy& p = start_proxy(small_pool(1));
  wait_catalog(p);
  expect_audit_stays_with_its_client(
      p, [](int i) { return "INSERT INTO pgs_dd_trig VALUES (" + std::to_string(i) + ")"; });
}

// An UPDATE's SET clause is not a session word (statement_may_change_session), so an UPDATE takes the
// path of statements without one: the code its trigger runs must still be found.
TEST_F(DefaultDenyTest, UpdateTriggerEffectsStayWithItsClient) {
  PGS_IT_REQUIRE_PROXY();
  make_audit_trigger("pgs_dd_utrig", "UPDATE", "id int, n int");
  Proxy& p = start_proxy(small_pool(1));
  wait_catalog(p);
  expect_audit_stays_with_its_client(
      p, [](int i) { return "UPDATE pgs_dd_utrig SET n = " + std::to_string(i) + " WHERE id = 1"; });
}

// FunctionCall ('F', libpq PQfn): pg_advisory_lock(int4, int4) called by OID.
TEST_F(DefaultDenyTest, FunctionCallMessageLockDoesNotOutliveItsClient) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start_proxy(small_pool(1, "1s"));
  auto two_key_rows = [] {
    Pg su = superuser();
    return std::stoi(su.scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND classid = 4242 AND objid = 3"));
  };
  {
    Pg a = connect(p.spec());
    int fnid = std::stoi(a.scalar("SELECT 'pg_advisory_lock(int4,int4)'::regprocedure::oid"));
    PQArgBlock args[2];
    args[0].len = 4;
    args[0].isint = 1;
    args[0].u.integer = 4242;
    args[1].len = 4;
    args[1].isint = 1;
    args[1].u.integer = 3;
    int result_len = 0;
    char buf[16];
    PgResult r(PQfn(a.get(), fnid, reinterpret_cast<int*>(buf), &result_len, 0, args, 2));
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(two_key_rows(), 1);
    Pg b = connect(p.spec());
    EXPECT_EQ(sqlstate_of(b, "SELECT 1"), "57014") << "the server holding A's lock is not lent to B";
  }
  EXPECT_TRUE(wait_until([&] { return two_key_rows() == 0; }, Millis(10000))) << "the lock outlived its client";
}

// Real clients through a pool of one server: psycopg 3 binds the value server-side (extended
// protocol), psycopg2 interpolates it; a DO block from each; the other connection never sees it, and
// the lock a DO block took is gone once its connection closed.
TEST_F(DefaultDenyTest, PsycopgClientsNeverSeeAnothersState) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start_proxy(small_pool(1, "1s"));
  const std::string script = R"PY(
import sys, psycopg, psycopg2
dsn = sys.argv[1]
def other(mod):
    c = mod.connect(dsn); c.autocommit = True
    cur = c.cursor(); cur.execute("SELECT coalesce(current_setting('app.tenant', true), '')")
    v = cur.fetchone()[0]; c.close(); return v
a = psycopg.connect(dsn, autocommit=True)
a.execute("SELECT set_config('app.tenant', %s, false)", ("p3",))
assert other(psycopg2) == "", "psycopg2 saw psycopg 3's bound setting"
assert a.execute("SELECT current_setting('app.tenant')").fetchone()[0] == "p3"
a.close()
b = psycopg2.connect(dsn); b.autocommit = True
cur = b.cursor()
cur.execute("DO $$ BEGIN PERFORM set_config('app.tenant', 'p2', false); PERFORM pg_advisory_lock(424203); END $$")
b.close()
assert other(psycopg) == "", "psycopg 3 saw psycopg2's DO-block setting"
c = psycopg.connect(dsn, autocommit=True)
assert c.execute("SELECT pg_advisory_unlock(424203)").fetchone()[0] is False, "the lock outlived its client"
print("ok")
)PY";
  std::string dsn = p.spec().str();
  RunResult r = run_program({"/usr/bin/python3", "-c", script, dsn}, {}, Millis(60000));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
}

// Item 4: the unnamed statement and portal are as on a fresh server for every client: a Bind of ""
// without a Parse in the same transaction gets 26000, also when another client parsed one on the same
// server just before.
TEST_F(DefaultDenyTest, UnnamedStatementIsNeverAnotherClients) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start_proxy(small_pool(1));
  Pg a = connect(p.spec());
  Pg b = connect(p.spec());
  PgResult prep(PQprepare(a.get(), "", "SELECT 'from-a'::text", 0, nullptr));
  ASSERT_TRUE(prep.ok()) << prep.error();
  PgResult other(PQexecPrepared(b.get(), "", 0, nullptr, nullptr, nullptr, 0));
  EXPECT_EQ(other.sqlstate(), "26000") << "B ran A's unnamed statement: " << (other.ok() ? other.value(0, 0) : "");
  PgResult own(PQexecPrepared(a.get(), "", 0, nullptr, nullptr, nullptr, 0));
  EXPECT_EQ(own.sqlstate(), "26000") << "the unnamed statement outlived A's transaction";
}

}  // namespace
}  // namespace pgs::it::session
