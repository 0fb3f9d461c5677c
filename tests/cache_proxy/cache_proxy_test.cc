// Issue 5 end to end: the real pgsidecar with the result cache on, real Postgres, real Redis.
// How often Postgres itself ran a statement is read from pg_stat_statements on the primary (each
// test uses its own table, so the counts are its own).
#include <gtest/gtest.h>

#include <thread>

#include "tests/cache/redis_env.h"
#include "tests/cache_proxy/cache_util.h"
#include "tests/support/raw_client.h"
#include "tests/session/session_util.h"

namespace pgs::it::cache_proxy {
namespace {

class CacheProxyTest : public ProxyTest {
 protected:
  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "needs the pgsidecar process";
    prefix_ = unique_prefix();
    table_ = "pgs_cache_e2e_" + std::to_string(counter_++) + "_" + std::to_string(getpid());
    create_table(table_);
  }
  void TearDown() override {
    ProxyTest::TearDown();
    if (!table_.empty()) drop_table(table_);
    if (!prefix_.empty()) redis_delete_prefix(kRedisPort, prefix_);
  }
  // Every proxy of these tests: it caches nothing until it read the catalog (row-level security is
  // default-deny), so a test starts once it has.
  Proxy& start_proxy(const ProxyOptions& o) {
    Proxy& p = ProxyTest::start_proxy(o);
    EXPECT_TRUE(wait_catalog_read(p)) << "the catalog was not read";
    return p;
  }
  // A proxy on the dev Redis whose class "t" (ttl) covers this test's table.
  Proxy& start(const std::string& ttl = "1m", int workers = 1) {
    return start_proxy(cache_options(kRedisPort, prefix_, {"t:" + ttl + ":public." + table_}, workers));
  }
  std::string select_sql(int id = 1) const {
    return "SELECT id, v FROM public." + table_ + " WHERE id = " + std::to_string(id);
  }
  long calls() const { return statement_calls(table_); }
  double metric(const Proxy& p, const std::string& name, const std::string& labels) const {
    return metric_value(scrape_metrics(p), name, labels);
  }
  // Waits until the proxy's published counter reaches `at_least` (published every 100 ms).
  bool wait_metric(const Proxy& p, const std::string& name, const std::string& labels, double at_least) const {
    return wait_until([&] { return metric(p, name, labels) >= at_least; }, Millis(5000), Millis(50));
  }

  static inline int counter_ = 0;
  std::string prefix_;
  std::string table_;
};

// A repeated SELECT runs once on Postgres; the rest are answered by the proxy, with the same values.
TEST_F(CacheProxyTest, SimpleQueryHitIsServedWithoutPostgres) {
  Proxy& p = start();
  Pg c{p.spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  long before = calls();
  for (int i = 0; i < 5; ++i) {
    PgResult r = c.exec(select_sql(3));
    ASSERT_TRUE(r.ok()) << r.error();
    ASSERT_EQ(r.rows(), 1);
    EXPECT_EQ(r.value(0, 1), "v3");
  }
  EXPECT_EQ(calls() - before, 1) << "one miss, four hits";
  EXPECT_TRUE(wait_metric(p, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\"", 4));
  EXPECT_GE(metric(p, "pgsidecar_cache_stores_total", "class=\"t\",result=\"stored\""), 1);
  EXPECT_EQ(metric(p, "pgsidecar_cache_ready", ""), 1);
  // The admin console shows the class.
  Pg admin{p.spec(kAdminUser, kAdminPassword, "pgsidecar")};
  ASSERT_TRUE(admin.ok()) << admin.error();
  PgResult show = admin.exec("SHOW CACHE");
  ASSERT_TRUE(show.ok()) << show.error();
  ASSERT_GE(show.rows(), 1);
  EXPECT_EQ(show.value(0, 0), "t");
  EXPECT_GE(std::stoi(show.value(0, 1)), 4);
  // The statement's digest counts its cache hits (digests are published once a second).
  EXPECT_TRUE(wait_until([&] {
    PgResult d = admin.exec("SHOW DIGESTS");
    for (int r = 0; d.ok() && r < d.rows(); ++r) {
      if (d.value(r, 1).find(table_) != std::string::npos && d.value(r, 10) == "4") return true;
    }
    return false;
  }, Millis(5000), Millis(100))) << "SHOW DIGESTS: cache_hits = 4 for the statement";
}

// Extended protocol: unnamed (PQexecParams), named (PQprepare/PQexecPrepared) and binary results hit
// too, with the same values as Postgres gives.
TEST_F(CacheProxyTest, ExtendedProtocolNamedUnnamedAndBinaryHit) {
  Proxy& p = start();
  Pg c{p.spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  const std::string sql = "SELECT id, v FROM public." + table_ + " WHERE id = $1";
  long before = calls();
  const char* values[] = {"4"};
  for (int i = 0; i < 3; ++i) {
    PgResultPtr r(PQexecParams(c.get(), sql.c_str(), 1, nullptr, values, nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
    EXPECT_STREQ(PQgetvalue(r.get(), 0, 1), "v4");
  }
  EXPECT_EQ(calls() - before, 1) << "unnamed: one miss";
  PgResultPtr prep(PQprepare(c.get(), "s1", sql.c_str(), 1, nullptr));
  ASSERT_EQ(PQresultStatus(prep.get()), PGRES_COMMAND_OK) << PQerrorMessage(c.get());
  for (int i = 0; i < 3; ++i) {
    PgResultPtr r(PQexecPrepared(c.get(), "s1", 1, values, nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
    EXPECT_STREQ(PQgetvalue(r.get(), 0, 1), "v4");
  }
  EXPECT_EQ(calls() - before, 1) << "a named statement with the same text and values shares the entry";
  long before_binary = calls();
  for (int i = 0; i < 3; ++i) {
    PgResultPtr r(PQexecParams(c.get(), sql.c_str(), 1, nullptr, values, nullptr, nullptr, 1));
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
    ASSERT_EQ(PQgetlength(r.get(), 0, 0), 4);
    EXPECT_EQ(std::string(PQgetvalue(r.get(), 0, 0), 4), std::string("\0\0\0\4", 4));
  }
  EXPECT_EQ(calls() - before_binary, 1) << "binary results are their own entry";
  // Another parameter value is another entry.
  const char* other[] = {"5"};
  PgResultPtr r5(PQexecPrepared(c.get(), "s1", 1, other, nullptr, nullptr, 0));
  EXPECT_STREQ(PQgetvalue(r5.get(), 0, 1), "v5");
  EXPECT_EQ(calls() - before_binary, 2);
}

// The bytes a hit sends are the bytes Postgres sends: compared message by message against a direct
// connection, for simple and extended queries over NULLs, unicode, bytea, numeric, arrays, binary
// results and an empty result.
TEST_F(CacheProxyTest, HitsAreByteIdenticalToPostgres) {
  Proxy& p = start();
  {
    Pg c{ConnSpec{}};
    c.must("ALTER TABLE public." + table_ +
           " ADD COLUMN n numeric, ADD COLUMN b bytea, ADD COLUMN u text, ADD COLUMN a int[], ADD COLUMN z text");
    c.must("UPDATE public." + table_ +
           " SET n = 12345.678900, b = '\\x00ff10'::bytea, u = 'zoë ✓ 日本', a = ARRAY[1,NULL,3]");
  }
  const std::string q = "SELECT id, v, n, b, u, a, z FROM public." + table_ + " WHERE id <= 3 ORDER BY id";
  const std::string empty = "SELECT id, v FROM public." + table_ + " WHERE id < 0";
  auto simple = [&](uint16_t port, const std::string& sql, int times) {
    RawConn conn(kHost, port);
    auto login_outcome = login(conn, kUser, kPassword, kDatabase);
    if (!login_outcome.ok) throw std::runtime_error(login_outcome.describe());
    std::vector<std::vector<Msg>> replies;
    for (int i = 0; i < times; ++i) replies.push_back(simple_query(conn, sql).messages);
    return replies;
  };
  // Parse, Bind (no parameters; result format `fmt` for every column), Describe portal, Execute, Sync.
  auto extended = [&](uint16_t port, const std::string& sql, int16_t fmt, int times) {
    RawConn conn(kHost, port);
    auto login_outcome = login(conn, kUser, kPassword, kDatabase);
    if (!login_outcome.ok) throw std::runtime_error(login_outcome.describe());
    std::string parse = std::string(1, '\0') + sql + std::string(1, '\0') + std::string("\0\0", 2);
    std::string bind = std::string("\0\0", 2) + std::string("\0\0", 2) + std::string("\0\0", 2) +
                       std::string("\0\1", 2) + std::string(1, '\0') + std::string(1, static_cast<char>(fmt));
    std::string batch = typed_message('P', parse) + typed_message('B', bind) +
                        typed_message('D', std::string("P\0", 2)) +
                        typed_message('E', std::string(1, '\0') + std::string("\0\0\0\0", 4)) + typed_message('S', "");
    std::vector<std::vector<Msg>> replies;
    for (int i = 0; i < times; ++i) {
      conn.send(batch);
      replies.push_back(read_until_ready(conn).messages);
    }
    return replies;
  };
  auto same = [](const std::vector<Msg>& a, const std::vector<Msg>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i].type != b[i].type || a[i].body != b[i].body) return false;
    }
    return true;
  };
  for (const std::string& sql : {q, empty}) {
    auto direct = simple(kPrimaryPort, sql, 1);
    auto proxied = simple(p.port(), sql, 3);  // miss, hit, hit
    ASSERT_FALSE(direct[0].empty());
    for (const auto& reply : proxied) EXPECT_TRUE(same(direct[0], reply)) << sql;
    for (int16_t fmt : {0, 1}) {
      auto d = extended(kPrimaryPort, sql, fmt, 1);
      auto x = extended(p.port(), sql, fmt, 3);
      for (const auto& reply : x) EXPECT_TRUE(same(d[0], reply)) << sql << " format " << fmt;
    }
  }
  EXPECT_TRUE(wait_metric(p, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\"", 12));
}

// pgsidecar_redis_commands_total counts the commands the workers send (the Redis load per statement that
// bench/workloads/sidecars.sh reports): on a Redis of its own, every hit costs at least one, and the
// counter never runs ahead of what Redis itself processed (INFO stats total_commands_processed).
TEST_F(CacheProxyTest, RedisCommandsAreCounted) {
  pgs::cache::testing::PrivateRedis redis;
  ASSERT_TRUE(redis.running());
  Proxy& p = start_proxy(cache_options(redis.port(), prefix_, {"t:1m:public." + table_}));
  ASSERT_TRUE(wait_until([&] { return metric(p, "pgsidecar_cache_ready", "") == 1; }, Millis(5000)));
  Pg c{p.spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_TRUE(wait_until([&] {
    EXPECT_EQ(c.exec(select_sql(2)).value(0, 1), "v2");
    return metric(p, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\"") >= 1;
  }, Millis(5000), Millis(50))) << "stored, then hit";
  pgs::cache::testing::SyncRedis admin(pgs::cache::testing::kDevRedisHost, redis.port());
  auto processed = [&] {
    const std::string info = admin.run({"INFO", "stats"});
    const std::string key = "total_commands_processed:";
    const size_t at = info.find(key);
    return at == std::string::npos ? -1.0 : std::stod(info.substr(at + key.size()));
  };
  const double sent_before = metric(p, "pgsidecar_redis_commands_total", "");
  ASSERT_GT(sent_before, 0) << "the lookups and the store so far";
  const double hits_before = metric(p, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\"");
  for (int i = 0; i < 50; ++i) ASSERT_EQ(c.exec(select_sql(2)).value(0, 1), "v2");
  ASSERT_TRUE(wait_metric(p, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\"", hits_before + 50));
  EXPECT_TRUE(wait_metric(p, "pgsidecar_redis_commands_total", "", sent_before + 50)) << "at least one per hit";
  const double sent = metric(p, "pgsidecar_redis_commands_total", "");
  EXPECT_LE(sent, processed()) << "counted commands were all sent to (and processed by) this Redis";
}

// An UPDATE through sidecar A followed at once by the SELECT through sidecar B returns the new row,
// every time (1000 rounds; autocommit and explicit transactions, simple and extended protocol).
TEST_F(CacheProxyTest, WriteThroughOneSidecarIsSeenThroughAnotherAtOnce) {
  Proxy& a = start("5m", 2);
  auto b = Proxy::start(cache_options(kRedisPort, prefix_, {"t:5m:public." + table_}, 2));
  ASSERT_TRUE(wait_catalog_read(*b));
  Pg wa{a.spec()};
  Pg rb{b->spec()};
  ASSERT_TRUE(wa.ok() && rb.ok());
  const std::string read = "SELECT v FROM public." + table_ + " WHERE id = 7";
  const std::string read_params = "SELECT v FROM public." + table_ + " WHERE id = $1";
  int wrong = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string value = "round" + std::to_string(i);
    rb.scalar(read);  // B has the previous value cached
    std::string update = "UPDATE public." + table_ + " SET v = '" + value + "' WHERE id = 7";
    switch (i % 3) {
      case 0: wa.must(update); break;
      case 1: wa.must("BEGIN; " + update + "; COMMIT"); break;
      default: {
        wa.must("BEGIN");
        PgResult r = wa.exec_params("UPDATE public." + table_ + " SET v = $1 WHERE id = 7", {value});
        ASSERT_TRUE(r.ok()) << r.error();
        wa.must("COMMIT");
      }
    }
    std::string seen = i % 2 == 0 ? rb.scalar(read) : rb.exec_params(read_params, {"7"}).value(0, 0);
    if (seen != value) ++wrong;
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(metric(*b, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\""), 0)
      << "B served hits between the writes";
}

// ROLLBACK invalidates nothing, and neither does a write that failed.
TEST_F(CacheProxyTest, RollbackAndFailedWritesInvalidateNothing) {
  Proxy& p = start();
  Pg c{p.spec()};
  ASSERT_TRUE(c.ok());
  c.scalar(select_sql(2));  // stored
  long before = calls();
  c.must("BEGIN");
  c.must("UPDATE public." + table_ + " SET v = 'rolled back' WHERE id = 2");
  c.must("ROLLBACK");
  PgResult failed = c.exec("UPDATE public." + table_ + " SET v = (1/0)::text WHERE id = 2");
  EXPECT_EQ(failed.sqlstate(), "22012");
  c.must("BEGIN");
  c.exec("UPDATE public." + table_ + " SET v = 'x' WHERE id = 2");
  c.exec("SELECT 1/0");
  c.exec("COMMIT");  // of a failed transaction: Postgres rolls back
  PgResult r = c.exec(select_sql(2));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(0, 1), "v2");
  // pg_stat_statements counts the two UPDATEs that completed (rolled back later), not the one that
  // failed; the SELECT adds one only if it missed.
  EXPECT_EQ(calls() - before, 2) << "the SELECT after the rollbacks was a hit";
  ASSERT_TRUE(wait_metric(p, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\"", 1));
  EXPECT_EQ(metric(p, "pgsidecar_cache_invalidations_total", "class=\"t\""), 0);
  // A committed one does invalidate.
  c.must("UPDATE public." + table_ + " SET v = 'committed' WHERE id = 2");
  EXPECT_EQ(c.exec(select_sql(2)).value(0, 1), "committed");
  EXPECT_TRUE(wait_metric(p, "pgsidecar_cache_invalidations_total", "class=\"t\"", 1));
}

// An entry lives for its class's TTL, then the statement runs on Postgres again.
TEST_F(CacheProxyTest, EntriesExpireWithTheirTtl) {
  Proxy& p = start("700ms");
  Pg c{p.spec()};
  ASSERT_TRUE(c.ok());
  long before = calls();
  c.scalar(select_sql(1));
  c.scalar(select_sql(1));
  ASSERT_EQ(calls() - before, 1) << "the second read, right after the first, is a hit";
  auto stored_at = std::chrono::steady_clock::now();
  // Each probe either hits (inside the TTL) or misses once it expired.
  bool expired = wait_until([&] {
    c.scalar(select_sql(1));
    return calls() - before == 2;
  }, Millis(10000), Millis(100));
  EXPECT_TRUE(expired);
  EXPECT_GE(std::chrono::steady_clock::now() - stored_at, Millis(650)) << "not before the TTL";
}

// Hints: "no cache" always runs on Postgres; "cache ttl=" caches a table in no class; a volatile
// function is never cached, hint or not.
TEST_F(CacheProxyTest, HintsAndVolatileFunctions) {
  std::string other = table_ + "_other";
  create_table(other);  // before the proxy reads the catalog: an unknown table is never cached
  Proxy& p = start();
  Pg c{p.spec()};
  long before = calls();
  for (int i = 0; i < 3; ++i) c.scalar("/* pgsidecar: no cache */ " + select_sql(1));
  EXPECT_EQ(calls() - before, 3);
  long before_other = statement_calls(other);
  for (int i = 0; i < 3; ++i) c.scalar("/* pgsidecar: cache ttl=30s */ SELECT v FROM public." + other + " WHERE id = 1");
  EXPECT_EQ(statement_calls(other) - before_other, 1);
  before = calls();
  for (int i = 0; i < 3; ++i) {
    c.scalar("/* pgsidecar: cache ttl=30s */ SELECT v, now() FROM public." + table_ + " WHERE id = 1");
  }
  EXPECT_EQ(calls() - before, 3);
  EXPECT_TRUE(wait_metric(p, "pgsidecar_cache_bypass_total", "reason=\"hint_no_cache\"", 3));
  EXPECT_TRUE(wait_metric(p, "pgsidecar_cache_bypass_total", "reason=\"volatile_function\"", 3));
  drop_table(other);
}

// Two roles never share an entry: a role without SELECT on the table gets 42501 from Postgres, not
// the rows another role cached; a role with it gets its own entry.
TEST_F(CacheProxyTest, RolesNeverShareAnEntry) {
  const std::string role = "pgs_cache_e2e_role";
  {
    Pg su = superuser(kDatabase);
    su.exec("DROP OWNED BY " + role);
    su.exec("DROP ROLE IF EXISTS " + role);
    su.must("CREATE ROLE " + role + " LOGIN PASSWORD 'role-pw'");
    su.must("GRANT CONNECT ON DATABASE flopods TO " + role);
  }
  ProxyOptions o = cache_options(kRedisPort, prefix_, {"t:1m:public." + table_});
  o.users.push_back({role, "role-pw", "", false});
  Proxy& p = start_proxy(o);
  Pg owner{p.spec()};
  Pg other{p.spec(role, "role-pw")};
  ASSERT_TRUE(owner.ok() && other.ok()) << other.error();
  for (int i = 0; i < 2; ++i) ASSERT_EQ(owner.exec(select_sql(1)).value(0, 1), "v1");
  for (int i = 0; i < 2; ++i) EXPECT_EQ(other.exec(select_sql(1)).sqlstate(), "42501") << "never the owner's rows";
  Pg{ConnSpec{}}.must("GRANT SELECT ON public." + table_ + " TO " + role);
  long before = calls();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(other.exec(select_sql(1)).value(0, 1), "v1");
  EXPECT_EQ(calls() - before, 1) << "the other role's own entry: one miss, then hits";
  Pg su = superuser(kDatabase);
  su.exec("DROP OWNED BY " + role);
  su.exec("DROP ROLE IF EXISTS " + role);
}

// A class hint caches a table in no class; a result above max_result_bytes is never stored.
TEST_F(CacheProxyTest, ClassHintAndResultSizeLimit) {
  ProxyOptions o = cache_options(kRedisPort, prefix_, {"t:1m:public." + table_});
  o.cache_toml += "max_result_bytes = \"1KB\"\n";
  std::string other = table_ + "_cls";
  create_table(other, 200);  // before the proxy reads the catalog: an unknown table is never cached
  Proxy& p = start_proxy(o);
  Pg c{p.spec()};
  long before = statement_calls(other);
  for (int i = 0; i < 3; ++i) c.scalar("/* pgsidecar: cache class=t */ SELECT v FROM public." + other + " WHERE id = 9");
  EXPECT_EQ(statement_calls(other) - before, 1);
  before = calls();
  Pg{ConnSpec{}}.must("INSERT INTO public." + table_ + " SELECT g, repeat('x', 20) FROM generate_series(100, 300) g");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.exec("SELECT id, v FROM public." + table_ + " ORDER BY id").rows(), 211);
  EXPECT_EQ(calls() - before, 3 + 1) << "too large to store: every read runs (plus the INSERT)";
  EXPECT_TRUE(wait_metric(p, "pgsidecar_cache_stores_total", "class=\"t\",result=\"skipped\"", 3));
  drop_table(other);
}

// Concurrent misses on one key cause one query: the first client asks Postgres (blocked here by a
// lock), the others wait for its result.
TEST_F(CacheProxyTest, ConcurrentMissesOnOneKeyRunOnce) {
  Proxy& p = start();
  Pg locker{ConnSpec{}};
  locker.must("BEGIN");
  locker.must("LOCK TABLE public." + table_ + " IN ACCESS EXCLUSIVE MODE");
  constexpr int kClients = 8;
  std::vector<std::unique_ptr<Pg>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<Pg>(p.spec()));
    ASSERT_TRUE(clients.back()->ok());
  }
  long before = calls();
  for (auto& c : clients) ASSERT_EQ(PQsendQuery(c->get(), select_sql(6).c_str()), 1);
  // All but the leader wait in the proxy (the waits counter is published every 100 ms).
  bool all_waiting = wait_until([&] {
    std::string page = scrape_metrics(p);
    return metric_value(page, "pgsidecar_cache_waits_total", "result=\"served\"") +
               metric_value(page, "pgsidecar_cache_waits_total", "result=\"fell_through\"") >=
           kClients - 1;
  }, Millis(900), Millis(20));
  locker.must("COMMIT");
  for (auto& c : clients) {
    PgResultPtr r(PQgetResult(c->get()));
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c->get());
    EXPECT_STREQ(PQgetvalue(r.get(), 0, 1), "v6");
    while (PGresult* rest = PQgetResult(c->get())) PQclear(rest);
  }
  ASSERT_TRUE(all_waiting) << "the waiters did not queue in time (slow machine?)";
  EXPECT_EQ(calls() - before, 1) << "one query for " << kClients << " clients";
}

// Redis full (maxmemory reached, noeviction): stores and bumps fail, every query still succeeds with
// fresh data (a failed bump makes the sidecar bypass the cache until Redis takes it), errors are counted.
TEST_F(CacheProxyTest, RedisFullIsAMissNeverAnError) {
  pgs::cache::testing::PrivateRedis redis;
  ASSERT_TRUE(redis.running());
  Proxy& p = start_proxy(cache_options(redis.port(), prefix_, {"t:1m:public." + table_}));
  Pg c{p.spec()};
  ASSERT_TRUE(wait_until([&] { return metric(p, "pgsidecar_cache_ready", "") == 1; }, Millis(5000)));
  ASSERT_TRUE(wait_until([&] {
    EXPECT_EQ(c.exec(select_sql(2)).value(0, 1), "v2");
    return metric(p, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\"") >= 1;
  }, Millis(5000), Millis(50))) << "the entry is stored before Redis fills up";
  pgs::cache::testing::SyncRedis admin(pgs::cache::testing::kDevRedisHost, redis.port());
  admin.run({"CONFIG", "SET", "maxmemory-policy", "noeviction"});
  admin.run({"CONFIG", "SET", "maxmemory", "1"});
  for (int i = 3; i <= 6; ++i) EXPECT_EQ(c.exec(select_sql(i)).value(0, 1), "v" + std::to_string(i));
  c.must("UPDATE public." + table_ + " SET v = 'full' WHERE id = 2");
  EXPECT_EQ(c.exec(select_sql(2)).value(0, 1), "full") << "never the entry stored before the write";
  EXPECT_TRUE(wait_metric(p, "pgsidecar_redis_errors_total", "", 2));
  admin.run({"CONFIG", "SET", "maxmemory", "0"});
  EXPECT_TRUE(wait_until([&] { return metric(p, "pgsidecar_cache_ready", "") == 1; }, Millis(5000)))
      << "the failed bump is retried, then the cache is used again";
  EXPECT_EQ(c.exec(select_sql(2)).value(0, 1), "full");
}

// Entries Redis evicts under maxmemory (volatile-lru: only entries, never the generations hash) are
// counted per class from its keyspace notifications; every query still succeeds.
TEST_F(CacheProxyTest, EvictionsAreCountedPerClass) {
  pgs::cache::testing::PrivateRedis redis;
  ASSERT_TRUE(redis.running());
  pgs::cache::testing::SyncRedis admin(pgs::cache::testing::kDevRedisHost, redis.port());
  admin.run({"CONFIG", "SET", "notify-keyspace-events", "Ee"});
  std::string info = admin.run({"INFO", "memory"});
  size_t at = info.find("used_memory:");
  ASSERT_NE(at, std::string::npos) << info;
  long used = std::stol(info.substr(at + 12));
  admin.run({"CONFIG", "SET", "maxmemory-policy", "volatile-lru"});
  admin.run({"CONFIG", "SET", "maxmemory", std::to_string(used + 512 * 1024)});
  Proxy& p = start_proxy(cache_options(redis.port(), prefix_, {"t:1m:public." + table_}));
  ASSERT_TRUE(wait_until([&] { return metric(p, "pgsidecar_cache_ready", "") == 1; }, Millis(5000)));
  Pg{ConnSpec{}}.must("INSERT INTO public." + table_ + " SELECT g, repeat('x', 2000) FROM generate_series(11, 1000) g");
  Pg c{p.spec()};
  for (int id = 11; id <= 1000; ++id) ASSERT_EQ(c.exec(select_sql(id)).rows(), 1);
  EXPECT_TRUE(wait_metric(p, "pgsidecar_cache_evictions_total", "class=\"t\"", 1))
      << "about 2 MB of entries under a 512 kB budget";
  Pg admin_console{p.spec(kAdminUser, kAdminPassword, "pgsidecar")};
  PgResult show = admin_console.exec("SHOW CACHE");
  ASSERT_TRUE(show.ok()) << show.error();
  EXPECT_EQ(show.value(0, 0), "t");
  EXPECT_GT(std::stol(show.value(0, 7)), 0) << "SHOW CACHE evictions";
}

// A write reaches more tables than it names: ON DELETE CASCADE children, a partitioned table's parent
// when a partition is written, whatever a trigger writes. The catalog tells the proxy (read at start),
// so cached results of those tables are invalidated too.
TEST_F(CacheProxyTest, CascadesPartitionsAndTriggersInvalidateWhatTheyWrite) {
  const std::string P = table_ + "_p", C = table_ + "_c", R = table_ + "_r", A = table_ + "_a", B = table_ + "_b";
  {
    Pg d{ConnSpec{}};
    for (const std::string& t : {C, P, R, A, B}) d.must("DROP TABLE IF EXISTS public." + t + " CASCADE");
    d.must("CREATE TABLE public." + P + " (id int PRIMARY KEY)");
    d.must("CREATE TABLE public." + C + " (id int PRIMARY KEY, p int REFERENCES public." + P + " ON DELETE CASCADE)");
    d.must("INSERT INTO public." + P + " VALUES (1), (2)");
    d.must("INSERT INTO public." + C + " VALUES (1, 1), (2, 2), (3, 2)");
    d.must("CREATE TABLE public." + R + " (id int) PARTITION BY RANGE (id)");
    d.must("CREATE TABLE public." + R + "_1 PARTITION OF public." + R + " FOR VALUES FROM (0) TO (1000)");
    d.must("INSERT INTO public." + R + " VALUES (1)");
    d.must("CREATE TABLE public." + B + " (n int)");
    d.must("CREATE TABLE public." + A + " (n int)");
    d.must("CREATE FUNCTION public." + A + "_f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO public." + B +
           " VALUES (NEW.n); RETURN NEW; END$$");
    d.must("CREATE TRIGGER t AFTER INSERT ON public." + A + " FOR EACH ROW EXECUTE FUNCTION public." + A + "_f()");
  }
  Proxy& p = start_proxy(cache_options(kRedisPort, prefix_,
                                       {"c:1m:public." + C, "r:1m:public." + R, "b:1m:public." + B}));
  ASSERT_TRUE(wait_metric(p, "pgsidecar_cache_catalog_reads_total", "", 1)) << "the catalog was read";
  Pg c{p.spec()};
  auto twice = [&](const std::string& sql) {  // the second read is a hit
    std::string first = c.scalar(sql);
    EXPECT_EQ(c.scalar(sql), first);
    return first;
  };
  const std::string children = "SELECT count(*) FROM public." + C;
  EXPECT_EQ(twice(children), "3");
  c.must("DELETE FROM public." + P + " WHERE id = 2");
  EXPECT_EQ(c.scalar(children), "1") << "ON DELETE CASCADE removed two children";
  const std::string parent = "SELECT count(*) FROM public." + R;
  EXPECT_EQ(twice(parent), "1");
  c.must("INSERT INTO public." + R + "_1 VALUES (2)");
  EXPECT_EQ(c.scalar(parent), "2") << "a write into the partition";
  const std::string triggered = "SELECT count(*) FROM public." + B;
  EXPECT_EQ(twice(triggered), "0");
  c.must("INSERT INTO public." + A + " VALUES (7)");
  EXPECT_EQ(c.scalar(triggered), "1") << "written by the trigger";
  Pg d{ConnSpec{}};
  for (const std::string& t : {C, P, R, A, B}) d.exec("DROP TABLE IF EXISTS public." + t + " CASCADE");
  d.exec("DROP FUNCTION IF EXISTS public." + A + "_f()");
}

// A DDL committed through the proxy (here a new trigger) makes it read the catalog again at once, so
// the new dependency counts before the periodic re-read (30 s).
TEST_F(CacheProxyTest, DdlThroughTheProxyRefreshesTheDependencies) {
  const std::string A = table_ + "_da", B = table_ + "_db";
  {
    Pg d{ConnSpec{}};
    for (const std::string& t : {A, B}) d.must("DROP TABLE IF EXISTS public." + t + " CASCADE");
    d.must("CREATE TABLE public." + B + " (n int)");
    d.must("CREATE TABLE public." + A + " (n int)");
    // Straight to the primary: one DDL through the proxy, so the re-read awaited below is the trigger's
    // (a second one through the proxy could satisfy the wait with a read that began before the trigger).
    d.must("CREATE FUNCTION public." + A + "_f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO public." + B +
           " VALUES (NEW.n); RETURN NEW; END$$");
  }
  Proxy& p = start_proxy(cache_options(kRedisPort, prefix_, {"b:1m:public." + B}));
  ASSERT_TRUE(wait_metric(p, "pgsidecar_cache_catalog_reads_total", "", 1));
  double reads = metric(p, "pgsidecar_cache_catalog_reads_total", "");
  Pg c{p.spec()};
  c.must("CREATE TRIGGER t AFTER INSERT ON public." + A + " FOR EACH ROW EXECUTE FUNCTION public." + A + "_f()");
  ASSERT_TRUE(wait_metric(p, "pgsidecar_cache_catalog_reads_total", "", reads + 1)) << "re-read after the DDL";
  const std::string triggered = "SELECT count(*) FROM public." + B;
  EXPECT_EQ(c.scalar(triggered), "0");
  EXPECT_EQ(c.scalar(triggered), "0");
  c.must("INSERT INTO public." + A + " VALUES (1)");
  EXPECT_EQ(c.scalar(triggered), "1");
  Pg d{ConnSpec{}};
  for (const std::string& t : {A, B}) d.exec("DROP TABLE IF EXISTS public." + t + " CASCADE");
  d.exec("DROP FUNCTION IF EXISTS public." + A + "_f()");
}

// A hostile client: a cacheable query pipelined with garbage (hit and miss alike) is answered, then
// the garbage gets 08P01 and the connection closes; a malformed Bind in a cacheable-looking batch is
// a miss that Postgres rejects. The proxy keeps serving others.
TEST_F(CacheProxyTest, GarbageAfterACacheableRequest) {
  Proxy& p = start();
  for (int round = 0; round < 2; ++round) {  // miss, then hit
    RawConn c(p.host(), p.port());
    ASSERT_TRUE(login(c, kUser, kPassword, kDatabase).ok);
    c.send(query_message(select_sql(4)) + typed_message('z', "junk"));
    // The query may be answered first (a hit is answered before the next frame is read; a miss may
    // be cut short when the proxy meets the garbage): either way an 08P01 ends the connection.
    std::optional<std::string> sqlstate;
    for (int i = 0; i < 10 && !sqlstate; ++i) {
      QueryOutcome out = read_until_ready(c, Millis(5000));
      for (const Msg& m : out.messages) {
        if (m.type == 'D') {
          EXPECT_NE(m.body.find("v4"), std::string::npos) << "round " << round;
        }
      }
      if (out.error) sqlstate = out.error->sqlstate();
      if (out.closed) break;
    }
    EXPECT_EQ(sqlstate.value_or("none"), "08P01") << "round " << round;
    EXPECT_TRUE(c.closed() || c.drain(Millis(2000)).closed) << "round " << round;
  }
  {
    RawConn c(p.host(), p.port());
    ASSERT_TRUE(login(c, kUser, kPassword, kDatabase).ok);
    std::string sql = "SELECT v FROM public." + table_ + " WHERE id = $1";
    std::string parse = std::string(1, '\0') + sql + std::string(1, '\0') + std::string("\0\0", 2);
    // Bind: no formats, 1 parameter whose length says 100 bytes but 2 follow, no result formats.
    std::string bind = std::string("\0\0", 2) + std::string("\0\0", 2) + std::string("\0\1", 2) +
                       std::string("\0\0\0\x64", 4) + "42" + std::string("\0\0", 2);
    c.send(typed_message('P', parse) + typed_message('B', bind) +
           typed_message('E', std::string(1, '\0') + std::string("\0\0\0\0", 4)) + typed_message('S', ""));
    QueryOutcome out = read_until_ready(c, Millis(5000));
    ASSERT_TRUE(out.error.has_value()) << "the server rejects the malformed Bind";
    EXPECT_EQ(out.error->sqlstate(), "08P01");
  }
  Pg other{p.spec()};
  EXPECT_EQ(other.scalar("SELECT v FROM public." + table_ + " WHERE id = 5"), "v5");
}

// pgbench in its three protocol modes, cached reads with concurrent updates of the same rows: no
// transaction fails, the cache answers, and afterwards every row reads back as Postgres has it.
TEST_F(CacheProxyTest, PgbenchSimpleExtendedPreparedWithWrites) {
  Proxy& p = start("1m", 2);
  std::string script_path = p.dir() + "/mixed.sql";
  {
    FILE* f = std::fopen(script_path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::string script = "\\set id random(1, 10)\n\\set w random(1, 10)\n"
                         "SELECT id, v FROM public." + table_ + " WHERE id = :id;\n"
                         "\\if :w = 1\nUPDATE public." + table_ + " SET v = 'w' || :id || '-' || :client_id WHERE id = :id;\n"
                         "\\endif\n";
    std::fputs(script.c_str(), f);
    std::fclose(f);
  }
  for (const char* mode : {"simple", "extended", "prepared"}) {
    double hits = metric(p, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\"");
    RunResult r = run_program({"pgbench", "-n", "-h", kHost, "-p", std::to_string(p.port()), "-U", kUser, "-c", "8",
                               "-j", "2", "-T", "3", "-M", mode, "-f", script_path, kDatabase},
                              {{"PGPASSWORD", kPassword}}, Millis(60000));
    EXPECT_EQ(r.exit_code, 0) << mode << "\n" << r.describe();
    EXPECT_NE(r.out.find("number of failed transactions: 0 (0.000%)"), std::string::npos) << mode << r.out;
    EXPECT_TRUE(wait_metric(p, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\"", hits + 100))
        << mode << ": the cache answered";
  }
  // Every row as the proxy (cache) serves it equals what Postgres has.
  Pg through{p.spec()};
  Pg direct{ConnSpec{}};
  for (int id = 1; id <= 10; ++id) {
    EXPECT_EQ(through.exec(select_sql(id)).value(0, 1), direct.exec(select_sql(id)).value(0, 1)) << "id " << id;
  }
}

// Redis stopped (SIGSTOP: slow), then killed and restarted during a pgbench run on cached reads: no
// transaction fails; errors are counted; hits resume once Redis is back.
TEST_F(CacheProxyTest, RedisTroubleDuringPgbenchCostsNoTransaction) {
  pgs::cache::testing::PrivateRedis redis;
  ASSERT_TRUE(redis.running());
  Proxy& p = start_proxy(cache_options(redis.port(), prefix_, {"t:1m:public." + table_}, 2));
  std::string script = "\\set id random(1, 10)\nSELECT v FROM public." + table_ + " WHERE id = :id;\n";
  std::string script_path = p.dir() + "/cached.sql";
  {
    FILE* f = std::fopen(script_path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(script.c_str(), f);
    std::fclose(f);
  }
  RunResult bench;
  std::thread runner([&] {
    bench = run_program({"pgbench", "-n", "-h", kHost, "-p", std::to_string(p.port()), "-U", kUser, "-c", "8", "-j",
                         "2", "-T", "9", "-M", "extended", "-f", script_path, kDatabase},
                        {{"PGPASSWORD", kPassword}}, Millis(60000));
  });
  EXPECT_TRUE(wait_metric(p, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\"", 100));
  redis.stop_process();
  EXPECT_TRUE(wait_metric(p, "pgsidecar_redis_errors_total", "", 1)) << "timeouts are counted";
  redis.continue_process();
  redis.kill_server();
  double errors = metric(p, "pgsidecar_redis_errors_total", "");
  EXPECT_TRUE(wait_metric(p, "pgsidecar_redis_errors_total", "", errors + 1)) << "refused while down";
  ASSERT_TRUE(redis.start());
  EXPECT_TRUE(wait_until([&] { return metric(p, "pgsidecar_cache_ready", "") == 1; }, Millis(8000), Millis(50)));
  double hits = metric(p, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\"");
  EXPECT_TRUE(wait_metric(p, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\"", hits + 10))
      << "hits resume once Redis is back";
  runner.join();
  EXPECT_EQ(bench.exit_code, 0) << bench.describe();
  EXPECT_NE(bench.out.find("number of failed transactions: 0 (0.000%)"), std::string::npos) << bench.out;
}

// Issue 13 item 4 (AUTH part): a Redis that requires an ACL login. With the right redis_user and
// redis_password (here from a file) the cache works; with a wrong one every lookup is a miss, never a
// client error, the refusal is logged and counted, and nothing is stored.
TEST_F(CacheProxyTest, RedisAclLoginWithTheRightPasswordAndAMissWithAWrongOne) {
  pgs::cache::testing::PrivateRedis redis;
  ASSERT_TRUE(redis.running());
  {
    pgs::cache::testing::SyncRedis admin("127.0.0.1", redis.port());
    ASSERT_TRUE(admin.ok());
    ASSERT_EQ(admin.run({"ACL", "SETUSER", "pgs_cache", "on", ">right-secret", "~*", "&*", "+@all"}), "OK");
    ASSERT_EQ(admin.run({"ACL", "SETUSER", "default", "off"}), "OK");  // no unauthenticated access
  }
  for (bool right : {true, false}) {
    SCOPED_TRACE(right ? "right password" : "wrong password");
    ProxyOptions o = cache_options(redis.port(), prefix_, {"t:1m:public." + table_}, 1);
    std::string secret_file = "/tmp/pgs-redis-secret-" + std::to_string(getpid());
    {
      FILE* f = std::fopen(secret_file.c_str(), "w");
      ASSERT_NE(f, nullptr);
      std::fputs(right ? "right-secret\n" : "wrong-secret\n", f);
      std::fclose(f);
    }
    o.cache_toml += "redis_user = \"pgs_cache\"\nredis_password_file = \"" + secret_file + "\"\n";
    proxy_.reset();
    Proxy& p = right ? start_proxy(o) : ProxyTest::start_proxy(o);
    std::remove(secret_file.c_str());
    Pg c{p.spec()};
    ASSERT_TRUE(c.ok()) << c.error();
    if (right) {
      EXPECT_TRUE(wait_until([&] { return metric(p, "pgsidecar_cache_ready", "") == 1; }, Millis(5000), Millis(50)));
      long before = calls();
      for (int i = 0; i < 3; ++i) EXPECT_EQ(c.exec(select_sql(2)).value(0, 1), "v2");
      EXPECT_EQ(calls() - before, 1) << "one miss, two hits";
      EXPECT_TRUE(wait_metric(p, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\"", 2));
    } else {
      EXPECT_TRUE(wait_metric(p, "pgsidecar_redis_errors_total", "", 1)) << "the refused AUTH is counted";
      long before = calls();
      for (int i = 0; i < 3; ++i) {
        PgResult r = c.exec(select_sql(2));
        ASSERT_TRUE(r.ok()) << r.error();
        EXPECT_EQ(r.value(0, 1), "v2");
      }
      EXPECT_EQ(calls() - before, 3) << "every lookup a miss";
      EXPECT_LE(metric(p, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\""), 0);  // -1: none yet
      EXPECT_NE(p.log_tail().find("Redis refused AUTH"), std::string::npos) << p.log_tail();
    }
  }
}

// Issue 12 item 4: row-level security. Two tenants share one role; a policy reads the session's
// app.tenant. A table with RLS is never cached (each tenant sees only its rows, every time), while a
// plain table next to it still hits.
TEST_F(CacheProxyTest, RowLevelSecurityTablesAreNotSharedBetweenTenants) {
  const std::string R = table_ + "_rls";
  {
    Pg d{ConnSpec{}};
    d.must("DROP TABLE IF EXISTS public." + R);
    d.must("CREATE TABLE public." + R + " (id int PRIMARY KEY, tenant text, v text)");
    d.must("INSERT INTO public." + R + " VALUES (1, 'a', 'a1'), (2, 'a', 'a2'), (3, 'b', 'b3')");
    d.must("ALTER TABLE public." + R + " ENABLE ROW LEVEL SECURITY");
    d.must("ALTER TABLE public." + R + " FORCE ROW LEVEL SECURITY");  // the test role owns it
    d.must("CREATE POLICY tenant_rows ON public." + R + " USING (tenant = current_setting('app.tenant', true))");
  }
  Proxy& p = start_proxy(cache_options(kRedisPort, prefix_, {"t:1m:public." + table_, "r:1m:public." + R}));
  Pg a{p.spec()}, b{p.spec()};
  ASSERT_TRUE(a.ok() && b.ok());
  a.must("SET app.tenant = 'a'");
  b.must("SET app.tenant = 'b'");
  const std::string rows = "SELECT string_agg(v, ',' ORDER BY id) FROM public." + R;
  const char* values[] = {"0"};
  const std::string rows_params = "SELECT string_agg(v, ',' ORDER BY id) FROM public." + R + " WHERE id > $1";
  // (pg_stat_statements: R's name contains the plain table's, so the plain reads are told by their text.)
  auto plain_calls = [&] { return statement_calls("public." + table_ + " WHERE"); };
  long plain_before = plain_calls(), rls_before = statement_calls(R);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(a.scalar(rows), "a1,a2") << "round " << i;
    EXPECT_EQ(b.scalar(rows), "b3") << "round " << i;
    for (const auto& [c, want] : {std::pair<Pg*, const char*>{&a, "a1,a2"}, {&b, "b3"}}) {
      PgResultPtr r(PQexecParams(c->get(), rows_params.c_str(), 1, nullptr, values, nullptr, nullptr, 0));
      ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c->get());
      EXPECT_STREQ(PQgetvalue(r.get(), 0, 0), want) << "round " << i;
    }
    EXPECT_EQ(a.scalar(select_sql(1)), "1");
    EXPECT_EQ(b.scalar(select_sql(1)), "1");
  }
  EXPECT_EQ(plain_calls() - plain_before, 2)
      << "the plain table is still cached: one miss per tenant (app.tenant is in every key), six hits";
  EXPECT_EQ(statement_calls(R) - rls_before, 16) << "every read of the RLS table reached Postgres";
  EXPECT_TRUE(wait_metric(p, "pgsidecar_cache_bypass_total", "reason=\"row_security\"", 16));
  Pg admin{p.spec(kAdminUser, kAdminPassword, "pgsidecar")};
  PgResult show = admin.exec("SHOW CACHE");
  ASSERT_TRUE(show.ok()) << show.error();
  bool listed = false;
  for (int r = 0; r < show.rows(); ++r) listed = listed || show.value(r, 0) == "(bypass: row_security)";
  EXPECT_TRUE(listed) << "SHOW CACHE lists the bypass";
  Pg d{ConnSpec{}};
  d.exec("DROP TABLE IF EXISTS public." + R);
}

// Default-deny: a table the catalog does not know yet (created after the proxy read it, not through
// the proxy) is not cached; once the catalog is read again it is.
TEST_F(CacheProxyTest, TablesUnknownToTheCatalogAreNotCached) {
  const std::string N = table_ + "_new";
  Proxy& p = start_proxy(cache_options(kRedisPort, prefix_, {"n:1m:public." + N}));
  create_table(N, 3);
  Pg c{p.spec()};
  const std::string sql = "SELECT v FROM public." + N + " WHERE id = 2";
  long before = statement_calls(N);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.scalar(sql), "v2");
  EXPECT_EQ(statement_calls(N) - before, 3);
  EXPECT_TRUE(wait_metric(p, "pgsidecar_cache_bypass_total", "reason=\"row_security_unknown\"", 3));
  // A DDL committed through the proxy makes it read the catalog again at once.
  double reads = metric(p, "pgsidecar_cache_catalog_reads_total", "");
  c.must("COMMENT ON TABLE public." + N + " IS 'known now'");
  ASSERT_TRUE(wait_metric(p, "pgsidecar_cache_catalog_reads_total", "", reads + 1));
  before = statement_calls(N);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.scalar(sql), "v2");
  EXPECT_EQ(statement_calls(N) - before, 1) << "known now: one miss, two hits";
  drop_table(N);
}

// Issue 12 item 4: custom settings are part of every key. A view reads current_setting('app.x'):
// SET app.x = '1' and '2' are two entries, each hit again later.
TEST_F(CacheProxyTest, CustomSettingsArePartOfTheKey) {
  const std::string V = table_ + "_v";
  {
    Pg d{ConnSpec{}};
    d.must("CREATE VIEW public." + V + " AS SELECT id, current_setting('app.x', true) AS x FROM public." + table_);
  }
  Proxy& p = start_proxy(cache_options(kRedisPort, prefix_, {"v:1m:public." + V}));
  Pg c{p.spec()}, other{p.spec()};
  ASSERT_TRUE(c.ok() && other.ok());
  const std::string sql = "SELECT x FROM public." + V + " WHERE id = 1";
  long before = statement_calls(V);
  c.must("SET app.x = '1'");
  EXPECT_EQ(c.scalar(sql), "1");
  EXPECT_EQ(c.scalar(sql), "1");
  c.must("SET app.x = '2'");
  EXPECT_EQ(c.scalar(sql), "2");
  other.must("SET app.x = '1'");
  EXPECT_EQ(other.scalar(sql), "1") << "another connection with app.x = 1 hits the first entry";
  c.must("SET app.x = '1'");
  EXPECT_EQ(c.scalar(sql), "1");
  EXPECT_EQ(statement_calls(V) - before, 2) << "two entries, each read once from Postgres";
  EXPECT_TRUE(wait_metric(p, "pgsidecar_cache_requests_total", "class=\"v\",result=\"hit\"", 3));
  Pg d{ConnSpec{}};
  d.exec("DROP VIEW IF EXISTS public." + V);
}

// Issue 12 item 6: psycopg 3 sends a statement unnamed until prepare_threshold, then as a named
// prepared statement; both forms share one entry: ten calls of each statement reach Postgres once.
TEST_F(CacheProxyTest, PsycopgNamedAndUnnamedShareOneEntry) {
  Proxy& p = start();
  long before = calls();
  RunResult r = run_program({"/usr/bin/python3", std::string(PGS_CACHE_PROXY_DIR) + "/psycopg_prepare.py", "--dsn",
                             p.conninfo(), "--table", table_, "--times", "10", "--prepare-threshold", "5"},
                            {{"PGPASSWORD", kPassword}, {"PGSSLMODE", "disable"}}, Millis(60000));
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  for (int i = 0; i < 10; ++i) {
    EXPECT_NE(r.out.find("param " + std::to_string(i) + " 3 v3\n"), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find("plain " + std::to_string(i) + " 2 v2\n"), std::string::npos) << r.describe();
  }
  EXPECT_NE(r.out.find("prepared 2\n"), std::string::npos) << "psycopg prepared both: " << r.describe();
  EXPECT_EQ(calls() - before, 2) << "one miss per statement, the named calls hit the unnamed entries";
  EXPECT_TRUE(wait_metric(p, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\"", 18));
}

// Issue 12 item 5: an unqualified name under the default search_path ("$user", public) resolves from
// the catalog: no relation of that name in the role's schema, so Postgres reads public's, and so does
// the cache (one miss, then hits, in the simple and the extended protocol).
TEST_F(CacheProxyTest, UnqualifiedNamesUnderTheDefaultSearchPathAreCached) {
  Proxy& p = start();
  Pg c{p.spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_EQ(c.scalar("SHOW search_path"), "\"$user\", public");
  const std::string sql = "SELECT v FROM " + table_ + " WHERE id = 6";
  long before = calls();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(c.scalar(sql), "v6");
  const std::string params = "SELECT v FROM " + table_ + " WHERE id = $1";
  const char* values[] = {"6"};
  for (int i = 0; i < 4; ++i) {
    PgResultPtr r(PQexecParams(c.get(), params.c_str(), 1, nullptr, values, nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c.get());
    EXPECT_STREQ(PQgetvalue(r.get(), 0, 0), "v6");
  }
  EXPECT_EQ(calls() - before, 2) << "one miss per statement, then hits";
  // A write through the proxy to the unqualified name invalidates the entry.
  c.must("UPDATE " + table_ + " SET v = 'changed' WHERE id = 6");
  EXPECT_EQ(c.scalar(sql), "changed");
}

}  // namespace
}  // namespace pgs::it::cache_proxy
