// Issue 13 item 4 end to end: a Redis that requires TLS and an ACL login (ElastiCache in-transit
// encryption). A private redis-server serving TLS only (tests/support/redis_server.h) with certificates
// made for the run (tests/support/certs.h); the real pgsidecar, the dev primary. A certificate that does
// not verify or a wrong password is a logged, counted miss, never a client error; nothing is sent in
// plaintext; the invalidation stream leads and bumps over TLS too.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/cache_proxy/cache_stream_fixture.h"
#include "tests/cache_proxy/cache_util.h"
#include "tests/session/session_util.h"
#include "tests/support/certs.h"
#include "tests/support/net.h"
#include "tests/support/redis_server.h"

namespace pgs::it::cache_proxy {
namespace {

constexpr const char* kUser = "pgs_cache";
constexpr const char* kPassword = "tls-secret";

// The run's PKI (SAN DNS:localhost, IP:127.0.0.1) and an unrelated CA.
const test::TwoAuthorities& pki() { return test::two_authorities(); }

test::RedisServerOptions tls_redis_options() {
  return {pki().main.cert, pki().main.key, pki().main.ca, {{"admin", "admin-secret"}, {kUser, kPassword}}};
}

// [cache] keys for TLS and the ACL login.
std::string tls_toml(const std::string& mode, const std::string& ca, const std::string& server_name = "",
                     const std::string& password = kPassword) {
  std::string t = "redis_tls = \"" + mode + "\"\nredis_user = \"" + kUser + "\"\nredis_password = \"" + password + "\"\n";
  if (!ca.empty()) t += "redis_tls_ca_file = \"" + ca + "\"\n";
  if (!server_name.empty()) t += "redis_tls_server_name = \"" + server_name + "\"\n";
  return t;
}

class CacheRedisTlsTest : public ProxyTest {
 protected:
  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "needs the pgsidecar process";
    ASSERT_EQ(pki().error(), "");
    prefix_ = unique_prefix();
    table_ = "pgs_cache_tls_" + std::to_string(counter_++) + "_" + std::to_string(getpid());
    create_table(table_);
  }
  void TearDown() override {
    ProxyTest::TearDown();
    if (!table_.empty()) drop_table(table_);
  }
  ProxyOptions options(uint16_t port, const std::string& more_toml) const {
    ProxyOptions o = cache_options(port, prefix_, {"t:1m:public." + table_}, 1);
    o.cache_toml += more_toml;
    return o;
  }
  std::string select_sql() const { return "SELECT id, v FROM public." + table_ + " WHERE id = 2"; }
  long calls() const { return statement_calls(table_); }
  double metric(const Proxy& p, const std::string& name, const std::string& labels = "") const {
    return metric_value(scrape_metrics(p), name, labels);
  }
  bool wait_metric(const Proxy& p, const std::string& name, const std::string& labels, double at_least) const {
    return wait_until([&] { return metric(p, name, labels) >= at_least; }, Millis(5000), Millis(50));
  }
  // Three reads through `p`: each answers right; returns how many reached Postgres.
  long three_reads(Proxy& p) {
    Pg c{p.spec()};
    EXPECT_TRUE(c.ok()) << c.error();
    long before = calls();
    for (int i = 0; i < 3; ++i) {
      PgResult r = c.exec(select_sql());
      EXPECT_TRUE(r.ok()) << r.error();
      if (r.ok()) EXPECT_EQ(r.value(0, 1), "v2");
    }
    return calls() - before;
  }

  static inline int counter_ = 0;
  std::string prefix_, table_;
};

// verify-full with the ACL user: the cache works (one miss, two hits) and stores its entries over TLS.
TEST_F(CacheRedisTlsTest, VerifyFullWithAnAclUserCachesAndHits) {
  test::PrivateRedis redis(tls_redis_options());
  ASSERT_TRUE(redis.running()) << redis.log_tail();
  Proxy& p = start_proxy(options(redis.port(), tls_toml("verify-full", pki().main.ca)));
  ASSERT_TRUE(wait_catalog_read(p));
  ASSERT_TRUE(wait_until([&] { return metric(p, "pgsidecar_cache_ready") == 1; }, Millis(5000), Millis(50)))
      << p.log_tail();
  EXPECT_EQ(three_reads(p), 1) << "one miss, two hits";
  EXPECT_TRUE(wait_metric(p, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\"", 2));
  EXPECT_GE(redis.keys(prefix_), 1) << "entries and generations are in the TLS Redis";
  EXPECT_LE(metric(p, "pgsidecar_redis_errors_total"), 0);  // -1: none
}

// A certificate from another CA, or one that does not name the host asked for: the connection is refused
// by the proxy (logged, counted), every lookup is a miss, clients never see an error, nothing is stored.
// A wrong password over TLS is the same kind of miss.
TEST_F(CacheRedisTlsTest, AnUnverifiedCertificateOrAWrongPasswordIsAMissNeverAClientError) {
  test::PrivateRedis redis(tls_redis_options());
  ASSERT_TRUE(redis.running()) << redis.log_tail();
  struct Case {
    const char* name;
    std::string toml, log;
  };
  const Case cases[] = {
      {"another CA", tls_toml("verify-ca", pki().other.ca), "Redis TLS failed"},
      {"another name", tls_toml("verify-full", pki().main.ca, "redis.example.com"), "Redis TLS failed"},
      {"wrong password", tls_toml("verify-full", pki().main.ca, "localhost", "wrong"), "Redis refused AUTH"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    proxy_.reset();
    Proxy& p = start_proxy(options(redis.port(), c.toml));
    EXPECT_TRUE(wait_metric(p, "pgsidecar_redis_errors_total", "", 1)) << p.log_tail();
    EXPECT_EQ(three_reads(p), 3) << "every lookup a miss";
    EXPECT_LE(metric(p, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\""), 0);
    EXPECT_TRUE(wait_until([&] { return p.log_tail().find(c.log) != std::string::npos; }, Millis(5000), Millis(50)))
        << p.log_tail();
    EXPECT_EQ(redis.keys(prefix_), 0) << "nothing stored";
  }
}

// A listener that is not TLS at all: what the proxy sends it is a TLS ClientHello and nothing else (no
// RESP, no AUTH with the password in clear), and the proxy keeps serving clients from Postgres.
TEST_F(CacheRedisTlsTest, NothingIsSentInPlaintextToAServerWithoutTls) {
  uint16_t port = 0;
  int listener = test::listen_loopback(port);
  ASSERT_GE(listener, 0);
  Proxy& p = start_proxy(options(port, tls_toml("require", "")));
  std::string got;
  pollfd pl{listener, POLLIN, 0};
  ASSERT_EQ(::poll(&pl, 1, 5000), 1) << "the proxy did not connect";
  int conn = ::accept(listener, nullptr, nullptr);
  ASSERT_GE(conn, 0);
  // Everything the proxy says until it gives up on the handshake (its connect timeout).
  wait_until([&] {
    pollfd pc{conn, POLLIN, 0};
    if (::poll(&pc, 1, 50) != 1) return false;
    char buf[4096];
    ssize_t n = ::recv(conn, buf, sizeof buf, 0);
    if (n <= 0) return true;
    got.append(buf, static_cast<size_t>(n));
    return false;
  }, Millis(3000), Millis(0));
  ::close(conn);
  ::close(listener);
  ASSERT_GE(got.size(), 5u);
  EXPECT_EQ(got[0], '\x16') << "a TLS handshake record";
  EXPECT_EQ(got[1], '\x03');
  EXPECT_EQ(got.find(kPassword), std::string::npos);
  EXPECT_EQ(got.find("AUTH"), std::string::npos);
  EXPECT_EQ(three_reads(p), 3);
}

// The invalidation stream's leader takes its lease, beats and bumps over TLS with the ACL login: a write
// straight to the primary is seen through the cache.
class CacheStreamTlsTest : public CacheStreamTest {};

TEST_F(CacheStreamTlsTest, TheStreamLeadsAndBumpsOverTls) {
  ASSERT_EQ(pki().error(), "");
  test::PrivateRedis redis(tls_redis_options());
  ASSERT_TRUE(redis.running()) << redis.log_tail();
  redis_port_ = redis.port();
  more_toml_ = tls_toml("verify-full", pki().main.ca);
  Proxy& p = start_sidecar();
  ASSERT_TRUE(wait_live(p)) << p.log_tail();
  EXPECT_EQ(metric(p, "pgsidecar_cache_stream_leader"), 1);
  test::RunResult lease = redis.cli({"GET", lease_key()});
  EXPECT_EQ(lease.exit_code, 0) << lease.describe();
  EXPECT_GT(lease.out.size(), 1u) << "the lease is held in the TLS Redis";
  Pg c{p.spec()};
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c.scalar(select_sql()), "v1");
  ASSERT_TRUE(wait_cached(c, "v1"));
  ASSERT_NO_FATAL_FAILURE(write_directly("over-tls"));
  EXPECT_EQ(wait_value(c, "over-tls", Millis(2000)), "over-tls") << "the stream's bump reached the cache";
  EXPECT_GE(metric(p, "pgsidecar_cache_stream_transactions_total"), 1);
}

}  // namespace
}  // namespace pgs::it::cache_proxy
