// Pure parts of flopods-api: input validation, routing, tokens, partition naming, CLI parsing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>

#include "app/auth.h"
#include "app/cli.h"
#include "app/json_util.h"
#include "app/partitions.h"
#include "app/router.h"

namespace pgs::app {
namespace {

TEST(ParseId, AcceptsOnlyCanonicalPositiveIntegers) {
  EXPECT_EQ(parse_id("1"), 1);
  EXPECT_EQ(parse_id("9223372036854775807"), INT64_MAX);
  for (const char* bad : {"", "0", "-1", "+1", "01", "1a", " 1", "1.0", "9223372036854775808", "99999999999999999999"}) {
    EXPECT_FALSE(parse_id(bad)) << bad;
  }
}

TEST(UrlDecode, EscapesAndPlus) {
  EXPECT_EQ(url_decode("a%20b+c", true), "a b c");
  EXPECT_EQ(url_decode("a%20b+c", false), "a b+c");
  EXPECT_FALSE(url_decode("%", true));
  EXPECT_FALSE(url_decode("%4", true));
  EXPECT_FALSE(url_decode("%zz", true));
  auto q = parse_query("limit=5&q=hello+world&&x");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->at("limit"), "5");
  EXPECT_EQ(q->at("q"), "hello world");
  EXPECT_EQ(q->at("x"), "");
}

TEST(JsonFields, TypesBoundsAndUnknownKeys) {
  auto obj = parse_object(R"({"name":"x","n":5,"big":1e3,"o":{"a":1}})");
  ASSERT_TRUE(obj);
  EXPECT_TRUE(check_keys(*obj, {"name", "n"}).has_value());
  EXPECT_FALSE(check_keys(*obj, {"name", "n", "big", "o"}).has_value());
  EXPECT_EQ(*opt_string(*obj, "name", 1, 10).value(), "x");
  EXPECT_FALSE(opt_string(*obj, "name", 2, 10));
  EXPECT_FALSE(opt_string(*obj, "n", 0, 10));
  EXPECT_FALSE(opt_string(*obj, "missing", 1, 10).value().has_value());
  EXPECT_EQ(*opt_int(*obj, "n", 0, 10).value(), 5);
  EXPECT_FALSE(opt_int(*obj, "n", 6, 10));
  EXPECT_FALSE(opt_int(*obj, "big", 0, 10000));  // a double is not an integer
  EXPECT_EQ(*opt_json(*obj, "o").value(), R"({"a":1})");
  EXPECT_FALSE(parse_object("[1]"));
  EXPECT_FALSE(parse_object("{"));
  EXPECT_FALSE(parse_object(""));
  EXPECT_FALSE(parse_object(std::string(100, '[') + std::string(100, ']')));
}

TEST(Router, MatchesSegmentsCapturesIdsAndReportsAllowedMethods) {
  Router r;
  r.add("GET", "/api/v1/flows/{id}", [](Request&) { return Response{}; });
  r.add("PATCH", "/api/v1/flows/{id}", [](Request&) { return Response{}; });
  r.add("GET", "/api/v1/flows/{id}/executions", [](Request&) { return Response{}; });
  auto m = r.match("GET", "/api/v1/flows/42/executions");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.params, std::vector<std::string>{"42"});
  auto wrong = r.match("DELETE", "/api/v1/flows/42");
  EXPECT_EQ(wrong.route, nullptr);
  EXPECT_EQ(wrong.allow, "GET, PATCH");
  auto none = r.match("GET", "/api/v1/flows");
  EXPECT_EQ(none.route, nullptr);
  EXPECT_EQ(none.allow, "");
}

TEST(Tokens, BearerParsingAndDerivation) {
  const std::string t = derived_token("flopods-dev-seed", "user1@flopods.dev");
  EXPECT_EQ(t.size(), 43u);
  EXPECT_EQ(t, derived_token("flopods-dev-seed", "user1@flopods.dev"));
  EXPECT_NE(t, derived_token("other-secret", "user1@flopods.dev"));
  EXPECT_EQ(bearer_token("Bearer " + t), t);
  EXPECT_EQ(bearer_token("bearer  " + t + " "), t);
  EXPECT_FALSE(bearer_token("Basic " + t));
  EXPECT_FALSE(bearer_token("Bearer " + t.substr(0, 42)));
  EXPECT_FALSE(bearer_token("Bearer " + t + "0"));
  EXPECT_EQ(random_token().size(), 43u);
  EXPECT_NE(random_token(), random_token());
  EXPECT_EQ(token_hash_param("x").size(), 66u);
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Partitions, NamesAndBoundsInUtcMonths) {
  EXPECT_EQ((YearMonth{2026, 12}.plus(1)), (YearMonth{2027, 1}));
  EXPECT_EQ((YearMonth{2026, 1}.plus(-1)), (YearMonth{2025, 12}));
  EXPECT_EQ((YearMonth{2026, 11}.plus(-14)), (YearMonth{2025, 9}));
  EXPECT_EQ(partition_name("canvas.pod_executions", {2026, 3}), "canvas.pod_executions_y2026m03");
  EXPECT_EQ(partition_ddl("billing.pod_usage_logs", {2026, 12}),
            "CREATE TABLE IF NOT EXISTS billing.pod_usage_logs_y2026m12 PARTITION OF billing.pod_usage_logs FOR "
            "VALUES FROM ('2026-12-01 00:00:00+00') TO ('2027-01-01 00:00:00+00')");
}

TEST(Cli, ParsesTheDevScriptsCommands) {
  auto o = parse_cli({"serve", "--listen", "127.0.0.1:8080", "--db", "host=x", "--redis", "127.0.0.1:16379",
                      "--readyz", "http://127.0.0.1:9930/readyz", "--threads", "3", "--pool", "6"});
  ASSERT_TRUE(o) << o.error();
  EXPECT_EQ(o->server.port, 8080);
  EXPECT_EQ(o->redis.port, 16379);
  EXPECT_EQ(o->server.io_threads, 3);
  EXPECT_EQ(o->pool.size, 6);
  EXPECT_EQ(o->server.handler_threads, 6);
  EXPECT_EQ(o->pool.conninfo, "host=x");
  EXPECT_EQ(parse_cli({"seed", "--users", "20", "--db", "x"})->seed.users, 20);
  EXPECT_FALSE(parse_cli({"serve", "--pool", "0"}));
  EXPECT_FALSE(parse_cli({"serve", "--listen", "8080"}));
  EXPECT_FALSE(parse_cli({"serve", "--bogus", "1"}));
  EXPECT_FALSE(parse_cli({"serve", "--db"}));
  EXPECT_FALSE(parse_cli({"destroy"}));
}

// A file /tmp/pgs-app-unit-<name>-<pid> holding `content` ("" when it cannot be written); the test removes it.
std::string temp_file(const std::string& name, const std::string& content) {
  const std::string path = "/tmp/pgs-app-unit-" + name + "-" + std::to_string(::getpid());
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return "";
  std::fputs(content.c_str(), f);
  std::fclose(f);
  return path;
}

// The Redis Cluster, TLS and ACL flags (`./dev up --redis cluster` passes them all).
TEST(Cli, ParsesTheRedisClusterTlsAndLoginFlags) {
  const std::string file = temp_file("password", "s3cret\n");
  ASSERT_FALSE(file.empty());
  auto o = parse_cli({"serve", "--redis-cluster", "127.0.0.1:17000,127.0.0.1:17001", "--redis-user", "pgsidecar",
                      "--redis-password-file", file, "--redis-tls", "verify-full", "--redis-tls-ca", "/x/ca.crt",
                      "--redis-tls-server-name", "localhost"});
  std::remove(file.c_str());
  ASSERT_TRUE(o) << o.error();
  EXPECT_EQ(o->redis.cluster_nodes, (std::vector<std::string>{"127.0.0.1:17000", "127.0.0.1:17001"}));
  EXPECT_EQ(o->redis.user, "pgsidecar");
  EXPECT_EQ(o->redis.password, "s3cret") << "the file without its newline";
  EXPECT_EQ(o->redis.tls, conf::RedisTls::verify_full);
  EXPECT_EQ(o->redis.tls_ca_file, "/x/ca.crt");
  EXPECT_EQ(o->redis.tls_server_name, "localhost");
  EXPECT_FALSE(parse_cli({"serve", "--redis-cluster", "127.0.0.1:17000,redis.local:17001"})) << "IP addresses only";
  EXPECT_FALSE(parse_cli({"serve", "--redis-cluster", ""}));
  EXPECT_FALSE(parse_cli({"serve", "--redis-tls", "yes"}));
  EXPECT_FALSE(parse_cli({"serve", "--redis-tls-ca", "/x/ca.crt"})) << "a CA without --redis-tls";
  EXPECT_FALSE(parse_cli({"serve", "--redis-password-file", "/nonexistent/password"}));
}

// The app and the proxy read one password file (./dev up --redis cluster gives both the same one): the
// app takes what the proxy's redis_password_file takes, the whole file less its trailing newline.
TEST(Cli, ReadsAPasswordFileAsTheProxyDoes) {
  const std::string file = temp_file("password2", "first\nsecond\r\n");
  ASSERT_FALSE(file.empty());
  auto o = parse_cli({"serve", "--redis-password-file", file});
  std::optional<std::string> proxy_reads = conf::read_secret_file(file, 4096);
  std::remove(file.c_str());
  ASSERT_TRUE(o) << o.error();
  ASSERT_TRUE(proxy_reads.has_value());
  EXPECT_EQ(*proxy_reads, "first\nsecond");
  EXPECT_EQ(o->redis.password, *proxy_reads);
}

}  // namespace
}  // namespace pgs::app
