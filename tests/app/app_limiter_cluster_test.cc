// Issue 13 item 5: the app's rate limiter on a Redis Cluster that serves TLS only and requires an ACL login
// (a private one: ports 27010-27015, buses 27110-27115; certificates made for the run). The limiter in
// process (pgs::app::RateLimiter): limits are enforced, keys of different subjects are counted on different
// masters, two instances share one count; the real binary with the --redis-* flags enforces the limit; a
// wrong password fails open as an unreachable Redis does (requests served, no RateLimit headers, the outage
// logged once, health "degraded"). One TLS-only Redis with the login (no cluster) works the same way.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>

#include "app/rate_limiter.h"
#include "cache/cluster_keys.h"
#include "tests/app/harness.h"
#include "tests/support/certs.h"
#include "tests/support/redis_cluster.h"

namespace pgs::app::test {
namespace {

constexpr uint16_t kBasePort = 27010;
constexpr const char* kUser = "flopods";
constexpr const char* kPassword = "limiter-cluster-secret";

const ::pgs::test::TwoAuthorities& pki() { return ::pgs::test::two_authorities(); }

std::string unique_prefix(const std::string& tag) {
  return "flopods-test-" + tag + "-" + std::to_string(getpid()) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + ":";
}

class LimiterClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!pki().error().empty()) {
      error_ = pki().error();
      return;
    }
    ::pgs::test::RedisServerOptions o{pki().main.cert, pki().main.key, pki().main.ca,
                                      {{"admin", "admin-secret"}, {kUser, kPassword}}};
    cluster_ = ::pgs::test::PrivateRedisCluster::start_new(kBasePort, error_, o);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(cluster_, nullptr) << error_;
    ASSERT_TRUE(cluster_->wait_healthy(std::chrono::seconds(30))) << cluster_->cli(kBasePort, {"CLUSTER", "NODES"});
  }
  // verify-full against the run's CA, the ACL user, one seed (the rest is learnt from CLUSTER SLOTS).
  static RateLimitOptions options(const std::string& prefix, const std::string& password = kPassword) {
    RateLimitOptions o;
    o.cluster_nodes = {"127.0.0.1:" + std::to_string(kBasePort)};
    o.user = kUser;
    o.password = password;
    o.tls = conf::RedisTls::verify_full;
    o.tls_ca_file = pki().main.ca;
    o.tls_server_name = "localhost";
    o.prefix = prefix;
    return o;
  }
  // The same settings as flags of `flopods-api serve`; the password in a file.
  std::vector<std::string> flags(const std::string& prefix, const std::string& password) {
    password_file_ = ::pgs::test::make_temp_dir("pgs-limiter-") + "/password";
    std::ofstream(password_file_) << password << "\n";
    return {"--redis-cluster", "127.0.0.1:" + std::to_string(kBasePort) + ",127.0.0.1:" + std::to_string(kBasePort + 1),
            "--redis-user", kUser, "--redis-password-file", password_file_, "--redis-tls", "verify-full",
            "--redis-tls-ca", pki().main.ca, "--redis-tls-server-name", "localhost", "--redis-prefix", prefix};
  }
  // The port of the master that holds `key` now, 0 when none does.
  static uint16_t master_of(const std::string& key) {
    auto m = cluster_->master_of_slot(cache::key_slot(key));
    return m ? m->port : 0;
  }

  static ::pgs::test::PrivateRedisCluster* cluster_;
  static std::string error_;
  std::string password_file_;
};

::pgs::test::PrivateRedisCluster* LimiterClusterTest::cluster_ = nullptr;
std::string LimiterClusterTest::error_;

// 12 subjects with a limit of 3 each: every subject gets exactly 3, whichever master holds its key, and the
// keys lie on every master.
TEST_F(LimiterClusterTest, LimitsAreEnforcedPerKeyOnEveryMaster) {
  const std::string prefix = unique_prefix("cluster");
  RateLimiter limiter(options(prefix));
  ASSERT_EQ(limiter.setup_error(), "");
  std::set<uint16_t> masters;
  for (int s = 0; s < 12; ++s) {
    const std::string key = "user:" + std::to_string(s);
    for (int i = 1; i <= 3; ++i) {
      RateDecision d = limiter.check(key, 3);
      ASSERT_TRUE(d.enforced) << "subject " << s << ", request " << i;
      EXPECT_TRUE(d.allowed) << "subject " << s << ", request " << i;
      EXPECT_EQ(d.remaining, 3 - i);
    }
    RateDecision refused = limiter.check(key, 3);
    EXPECT_TRUE(refused.enforced);
    EXPECT_FALSE(refused.allowed) << "subject " << s;
    EXPECT_GE(refused.reset_seconds, 1);
    const std::string full = prefix + "rl:" + key;
    const uint16_t holder = master_of(full);
    ASSERT_NE(holder, 0) << full;
    EXPECT_EQ(cluster_->cli(holder, {"ZCARD", full}), "3") << full << " is counted on its master";
    masters.insert(holder);
  }
  EXPECT_EQ(masters.size(), 3u) << "the subjects' keys spread over the three masters";
  EXPECT_EQ(limiter.ping(), "");
}

// Two app instances (two limiters) share one count per subject.
TEST_F(LimiterClusterTest, TwoInstancesShareOneCount) {
  const std::string prefix = unique_prefix("shared");
  RateLimiter a(options(prefix)), b(options(prefix));
  int allowed = 0;
  for (int i = 0; i < 10; ++i) {
    RateDecision d = (i % 2 == 0 ? a : b).check("ip:10.0.0.1", 5);
    ASSERT_TRUE(d.enforced);
    allowed += d.allowed;
  }
  EXPECT_EQ(allowed, 5);
}

// A wrong password: every node refuses the login; the limiter fails open, as when Redis is down.
TEST_F(LimiterClusterTest, AWrongPasswordFailsOpen) {
  RateLimiter limiter(options(unique_prefix("wrong"), "not-the-password"));
  for (int i = 0; i < 5; ++i) {
    RateDecision d = limiter.check("ip:10.0.0.2", 1);
    EXPECT_TRUE(d.allowed);
    EXPECT_FALSE(d.enforced);
  }
  EXPECT_NE(limiter.ping().find("WRONGPASS"), std::string::npos) << limiter.ping();
}

// The real binary with the --redis-* flags: the anonymous limit is enforced over the TLS cluster.
TEST_F(LimiterClusterTest, TheServerEnforcesItsLimitsOverTheCluster) {
  const std::string prefix = unique_prefix("serve");
  std::vector<std::string> args = flags(prefix, kPassword);
  args.insert(args.end(), {"--rate-anon", "5"});
  ApiServer api(args);
  ASSERT_NE(api.port(), 0);
  for (int i = 1; i <= 5; ++i) {
    auto r = http(api.port(), "GET", "/api/v1/me");
    EXPECT_EQ(r.status, 401) << "request " << i << ": " << r.body;
    EXPECT_EQ(r.header("ratelimit-remaining"), std::to_string(5 - i)) << api.process().output();
  }
  auto limited = http(api.port(), "GET", "/api/v1/me");
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_NE(limited.header("retry-after"), "");
  const std::string key = prefix + "rl:ip:127.0.0.1";
  EXPECT_EQ(cluster_->cli(master_of(key), {"ZCARD", key}), "5");
  auto health = http(api.port(), "GET", "/api/v1/health");
  EXPECT_EQ(health.json.at("checks").at("redis").at("ok"), true) << health.body;
}

// The real binary with a wrong password: served unchecked (no RateLimit headers), logged, health degraded.
TEST_F(LimiterClusterTest, TheServerWithAWrongPasswordFailsOpen) {
  std::vector<std::string> args = flags(unique_prefix("serve-wrong"), "not-the-password");
  args.insert(args.end(), {"--rate-anon", "1"});
  ApiServer api(args);
  ASSERT_NE(api.port(), 0);
  for (int i = 0; i < 3; ++i) {
    auto r = http(api.port(), "GET", "/api/v1/me");
    EXPECT_EQ(r.status, 401) << r.body;
    EXPECT_EQ(r.header("ratelimit-limit"), "") << "nothing was counted";
  }
  EXPECT_TRUE(wait_for([&] {
    const std::string out = api.process().output();
    return out.find("rate limiting fails open") != std::string::npos && out.find("WRONGPASS") != std::string::npos;
  }, std::chrono::seconds(5))) << api.process().output();
  auto health = http(api.port(), "GET", "/api/v1/health");
  EXPECT_EQ(health.json.at("checks").at("redis").at("ok"), false) << health.body;
  EXPECT_NE(health.body.find("WRONGPASS"), std::string::npos) << health.body;
}

// One Redis (no cluster) serving TLS only with the ACL login: the same limiter, the same policy.
TEST(LimiterSingleTls, EnforcedOverTlsWithTheLoginAndFailsOpenWithAWrongPassword) {
  ASSERT_EQ(pki().error(), "");
  ::pgs::test::PrivateRedis redis({pki().main.cert, pki().main.key, pki().main.ca, {{kUser, kPassword}}});
  ASSERT_TRUE(redis.running()) << redis.log_tail();
  RateLimitOptions o;
  o.port = redis.port();
  o.user = kUser;
  o.password = kPassword;
  o.tls = conf::RedisTls::verify_full;  // the certificate names 127.0.0.1: no server name needed
  o.tls_ca_file = pki().main.ca;
  o.prefix = unique_prefix("single");
  RateLimiter limiter(o);
  EXPECT_TRUE(limiter.check("ip:10.0.0.3", 2).allowed);
  EXPECT_TRUE(limiter.check("ip:10.0.0.3", 2).allowed);
  RateDecision refused = limiter.check("ip:10.0.0.3", 2);
  EXPECT_TRUE(refused.enforced);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(limiter.ping(), "");
  o.password = "not-the-password";
  RateLimiter wrong(o);
  RateDecision open = wrong.check("ip:10.0.0.3", 2);
  EXPECT_TRUE(open.allowed);
  EXPECT_FALSE(open.enforced);
  EXPECT_NE(wrong.ping().find("WRONGPASS"), std::string::npos) << wrong.ping();
}

// A CA file that cannot be read stops `serve` (it would never connect, and never in plaintext instead).
TEST(LimiterOptions, AnUnreadableCaFileStopsTheServer) {
  std::string out;
  const int rc = run_to_end(api_binary(),
                            {"serve", "--listen", "127.0.0.1:0", "--redis-tls", "verify-full", "--redis-tls-ca",
                             "/nonexistent/ca.pem"},
                            &out, std::chrono::seconds(20));
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("/nonexistent/ca.pem"), std::string::npos) << out;
}

}  // namespace
}  // namespace pgs::app::test
