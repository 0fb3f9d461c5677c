// AuthCache: auth_query's answers with their TTLs, shared lookups and the bounds, with a test clock.
#include <gtest/gtest.h>

#include "proxy/auth/auth_cache.h"

namespace pgs::proxy {
namespace {

using namespace std::chrono_literals;
using Begin = AuthCache::Begin;
using Kind = AuthAnswer::Kind;

constexpr const char* kVerifier =
    "SCRAM-SHA-256$4096:bkS/DFUkZl+VVmiMosuLSA==$Fpq472QrSmpiDnKI+dVM/IZS4AvdRj6WZGrDuROCXJs=:"
    "JqjncTHdl2O2XQz9bLdW1XldBbE7fwSRTcqRVQI44v4=";

AuthCache::Options opts(size_t entries = 100, size_t pending = 10) {
  return {.ttl = 60s, .negative_ttl = 5s, .max_entries = entries, .max_pending = pending};
}

AuthAnswer found() { return answer_from_secret(kVerifier); }
AuthAnswer failed() { return {.kind = Kind::failed, .sqlstate = "08006", .error = "down"}; }

TEST(AuthAnswer, OnlyAScramVerifierIsFound) {
  EXPECT_EQ(found().kind, Kind::found);
  ASSERT_TRUE(found().secrets);
  EXPECT_TRUE(found().secrets->has_scram);
  EXPECT_EQ(found().secrets->scram.iterations, 4096);
  EXPECT_TRUE(found().secrets->server_password.empty());
  for (const char* other : {static_cast<const char*>(nullptr), "", "md50123456789abcdef0123456789abcdef",
                            "cleartext", "SCRAM-SHA-256$4096:bad"}) {
    EXPECT_EQ(answer_from_secret(other).kind, Kind::unknown) << (other ? other : "NULL");
  }
}

TEST(AuthCache, ConcurrentLoginsShareOneLookup) {
  AuthCache c(opts());
  auto t0 = AuthCache::Clock::now();
  const std::string k = AuthCache::key("db", "alice");
  EXPECT_EQ(c.begin(k, 1, t0).what, Begin::start);
  EXPECT_EQ(c.begin(k, 2, t0).what, Begin::joined);
  EXPECT_EQ(c.begin(k, 3, t0).what, Begin::joined);
  EXPECT_EQ(c.pending(), 1u);
  EXPECT_EQ(c.complete(k, found(), t0), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(c.pending(), 0u);
  auto hit = c.begin(k, 4, t0 + 1s);
  EXPECT_EQ(hit.what, Begin::hit);
  EXPECT_EQ(hit.answer.kind, Kind::found);
}

TEST(AuthCache, KeysAreDatabaseAndUser) {
  AuthCache c(opts());
  auto t0 = AuthCache::Clock::now();
  EXPECT_EQ(c.begin(AuthCache::key("a", "u"), 1, t0).what, Begin::start);
  EXPECT_EQ(c.begin(AuthCache::key("b", "u"), 2, t0).what, Begin::start);
  EXPECT_NE(AuthCache::key("a", "bc"), AuthCache::key("ab", "c"));
}

TEST(AuthCache, FoundIsKeptTtlUnknownNegativeTtlFailedNot) {
  AuthCache c(opts());
  auto t0 = AuthCache::Clock::now();
  const std::string f = AuthCache::key("db", "found"), u = AuthCache::key("db", "unknown"),
                    x = AuthCache::key("db", "failed");
  for (const auto& k : {f, u, x}) ASSERT_EQ(c.begin(k, 1, t0).what, Begin::start);
  c.complete(f, found(), t0);
  c.complete(u, AuthAnswer{}, t0);
  c.complete(x, failed(), t0);
  EXPECT_EQ(c.begin(x, 2, t0).what, Begin::start);  // a failure is not remembered
  c.complete(x, failed(), t0);
  EXPECT_EQ(c.begin(u, 2, t0 + 4s).what, Begin::hit);
  EXPECT_EQ(c.begin(u, 2, t0 + 5s).what, Begin::start);  // the negative TTL passed
  EXPECT_EQ(c.begin(f, 2, t0 + 59s).what, Begin::hit);
  EXPECT_EQ(c.begin(f, 2, t0 + 60s).what, Begin::start);  // the TTL passed: looked up again
  c.complete(f, AuthAnswer{}, t0 + 60s);
  EXPECT_EQ(c.begin(f, 3, t0 + 61s).answer.kind, Kind::unknown);  // the new answer replaced the old
}

TEST(AuthCache, AtMostMaxEntriesLeastRecentlyUsedDropped) {
  AuthCache c(opts(3));
  auto t0 = AuthCache::Clock::now();
  for (const char* u : {"a", "b", "c"}) {
    c.begin(AuthCache::key("db", u), 1, t0);
    c.complete(AuthCache::key("db", u), found(), t0);
  }
  EXPECT_EQ(c.begin(AuthCache::key("db", "a"), 1, t0).what, Begin::hit);  // a is now the most recent
  c.begin(AuthCache::key("db", "d"), 1, t0);
  c.complete(AuthCache::key("db", "d"), found(), t0);
  EXPECT_EQ(c.entries(), 3u);
  EXPECT_EQ(c.begin(AuthCache::key("db", "b"), 1, t0).what, Begin::start);  // b was dropped
  EXPECT_EQ(c.begin(AuthCache::key("db", "a"), 1, t0).what, Begin::hit);
  c.set_options(opts(1));
  EXPECT_EQ(c.entries(), 1u);
}

TEST(AuthCache, PendingLookupsAreBounded) {
  AuthCache c(opts(100, 2));
  auto t0 = AuthCache::Clock::now();
  EXPECT_EQ(c.begin(AuthCache::key("db", "a"), 1, t0).what, Begin::start);
  EXPECT_EQ(c.begin(AuthCache::key("db", "b"), 2, t0).what, Begin::start);
  EXPECT_EQ(c.begin(AuthCache::key("db", "c"), 3, t0).what, Begin::full);
  EXPECT_EQ(c.begin(AuthCache::key("db", "a"), 4, t0).what, Begin::joined);  // joining costs no lookup
  c.complete(AuthCache::key("db", "a"), AuthAnswer{}, t0);
  EXPECT_EQ(c.begin(AuthCache::key("db", "c"), 3, t0).what, Begin::start);
}

TEST(AuthCache, ClearDropsAnswersButNotLookupsInFlight) {
  AuthCache c(opts());
  auto t0 = AuthCache::Clock::now();
  c.begin(AuthCache::key("db", "a"), 1, t0);
  c.complete(AuthCache::key("db", "a"), found(), t0);
  c.begin(AuthCache::key("db", "b"), 2, t0);
  c.clear();
  EXPECT_EQ(c.entries(), 0u);
  EXPECT_EQ(c.begin(AuthCache::key("db", "b"), 3, t0).what, Begin::joined);
  EXPECT_EQ(c.complete(AuthCache::key("db", "b"), found(), t0), (std::vector<uint64_t>{2, 3}));
}

}  // namespace
}  // namespace pgs::proxy
