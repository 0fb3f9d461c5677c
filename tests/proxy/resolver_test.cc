// The servers' host names (proxy/net/resolver.h; issue 13): numeric hosts never reach getaddrinfo, a name
// is looked up on libuv's thread pool (the loop goes on), concurrent requests share one lookup, an answer
// is kept for its TTL and looked up again after, a name that does not resolve says why, and a cancelled
// request is never answered. ResolveCache alone is pure.
#include <uv.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "proxy/net/resolver.h"

namespace pgs::proxy {
namespace {

using std::chrono::milliseconds;

sockaddr_storage v4(const char* ip) { return *numeric_address(ip, 0); }

TEST(NumericAddress, AddressesAreNumericNamesAreNot) {
  auto a = numeric_address("10.1.2.3", 5432);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->ss_family, AF_INET);
  EXPECT_EQ(address_text(*a), "10.1.2.3");
  EXPECT_EQ(address_port(*a), 5432);
  auto b = numeric_address("::1", 6432);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->ss_family, AF_INET6);
  EXPECT_EQ(address_text(*b), "::1");
  EXPECT_EQ(address_port(*b), 6432);
  for (const char* name : {"localhost", "db.example.com", "10.1.2", "", "10.1.2.3.4"}) {
    EXPECT_FALSE(numeric_address(name, 1).has_value()) << name;
  }
}

TEST(ResolveCache, AnAnswerIsKeptForItsTtlOnly) {
  ResolveCache cache(milliseconds(5000));
  const auto t0 = ResolveClock::now();
  EXPECT_EQ(cache.find("db", t0), nullptr);
  cache.store("db", {v4("10.0.0.1"), v4("10.0.0.2")}, t0);
  const auto* kept = cache.find("db", t0 + milliseconds(4999));
  ASSERT_NE(kept, nullptr);
  ASSERT_EQ(kept->size(), 2u);
  EXPECT_EQ(address_text((*kept)[1]), "10.0.0.2");
  EXPECT_EQ(cache.find("db", t0 + milliseconds(5000)), nullptr);  // expired: dropped
  EXPECT_EQ(cache.size(), 0u);
}

TEST(ResolveCache, IsBoundedAndDropsTheOldestAnswer) {
  ResolveCache cache(milliseconds(5000));
  const auto t0 = ResolveClock::now();
  for (size_t i = 0; i < kMaxResolvedNames; ++i) cache.store("n" + std::to_string(i), {v4("10.0.0.1")}, t0 + milliseconds(i));
  EXPECT_EQ(cache.size(), kMaxResolvedNames);
  cache.store("newest", {v4("10.0.0.9")}, t0 + milliseconds(1000));
  EXPECT_EQ(cache.size(), kMaxResolvedNames);
  EXPECT_EQ(cache.find("n0", t0 + milliseconds(1000)), nullptr);
  EXPECT_NE(cache.find("n1", t0 + milliseconds(1000)), nullptr);
  EXPECT_NE(cache.find("newest", t0 + milliseconds(1000)), nullptr);
}

class ResolverTest : public ::testing::Test {
 protected:
  void SetUp() override { uv_loop_init(&loop_); }
  void TearDown() override {
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0) << "a request was left";
  }
  // Runs the loop until `done` or the deadline (a timer): a lookup must not hang the test.
  void run_until(const bool& done, milliseconds deadline = milliseconds(10000)) {
    uv_timer_t timer;
    uv_timer_init(&loop_, &timer);
    uv_timer_start(&timer, [](uv_timer_t* t) { uv_stop(t->loop); }, static_cast<uint64_t>(deadline.count()), 0);
    while (!done && uv_run(&loop_, UV_RUN_ONCE) != 0 && uv_is_active(reinterpret_cast<uv_handle_t*>(&timer))) {
    }
    bool closed = false;
    timer.data = &closed;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), [](uv_handle_t* h) { *static_cast<bool*>(h->data) = true; });
    while (!closed) uv_run(&loop_, UV_RUN_ONCE);  // the handle lives on this stack until its close callback
  }
  uv_loop_t loop_{};
};

TEST_F(ResolverTest, ANumericHostIsAnsweredAtOnceWithoutALookup) {
  HostResolver r(&loop_);
  std::optional<Resolution> got;
  EXPECT_EQ(r.resolve("127.0.0.1", 15432, [&](const Resolution& x) { got = x; }), 0u);
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->addresses.size(), 1u);
  EXPECT_EQ(address_port(got->addresses[0]), 15432);
  EXPECT_EQ(r.lookups_started(), 0u);
}

TEST_F(ResolverTest, ANameIsLookedUpOnceForConcurrentRequestsAndKeptForItsTtl) {
  HostResolver r(&loop_, milliseconds(300));
  std::vector<Resolution> got;
  bool done = false;
  for (uint16_t port : {5432, 6432}) {
    EXPECT_NE(r.resolve("localhost", port, [&](const Resolution& x) {
      got.push_back(x);
      done = got.size() == 2;
    }), 0u);
  }
  EXPECT_EQ(r.lookups_started(), 1u);  // the second request joined the first's lookup
  EXPECT_TRUE(got.empty());            // not answered inline: the loop was never blocked on it
  run_until(done);
  ASSERT_EQ(got.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(got[i].error, "");
    ASSERT_FALSE(got[i].addresses.empty());
    EXPECT_EQ(address_text(got[i].addresses[0]), "127.0.0.1");  // /etc/hosts
    EXPECT_EQ(address_port(got[i].addresses[0]), i == 0 ? 5432 : 6432);
  }
  // Kept: answered at once, no lookup.
  bool kept = false;
  EXPECT_EQ(r.resolve("localhost", 7000, [&](const Resolution& x) { kept = !x.addresses.empty(); }), 0u);
  EXPECT_TRUE(kept);
  EXPECT_EQ(r.lookups_started(), 1u);
  // Past the TTL: looked up again (the next failover's address is seen).
  const auto expire = ResolveClock::now() + milliseconds(300);
  bool expired = false;
  while (!expired) {
    run_until(expired, milliseconds(20));
    expired = ResolveClock::now() > expire;
  }
  bool again = false;
  EXPECT_NE(r.resolve("localhost", 7000, [&](const Resolution&) { again = true; }), 0u);
  EXPECT_EQ(r.lookups_started(), 2u);
  run_until(again);
  EXPECT_TRUE(again);
}

TEST_F(ResolverTest, ANameThatDoesNotResolveSaysWhy) {
  HostResolver r(&loop_);
  std::optional<Resolution> got;
  bool done = false;
  r.resolve("no-such-host.invalid", 5432, [&](const Resolution& x) {
    got = x;
    done = true;
  });
  run_until(done);
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(got->addresses.empty());
  EXPECT_NE(got->error, "");
  // Not kept: the next request looks it up again.
  r.resolve("no-such-host.invalid", 5432, [&](const Resolution&) {});
  EXPECT_EQ(r.lookups_started(), 2u);
}

TEST_F(ResolverTest, ACancelledRequestIsNeverAnswered) {
  HostResolver r(&loop_);
  int first = 0, second = 0;
  bool done = false;
  uint64_t t1 = r.resolve("localhost", 1, [&](const Resolution&) { ++first; });
  r.resolve("localhost", 2, [&](const Resolution&) {
    ++second;
    done = true;
  });
  r.cancel(t1);
  run_until(done);
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, 1);
}

// A resolver destroyed while its lookup runs (a worker's shutdown): the lookup ends on its own, frees
// itself, and calls nobody (TearDown runs the loop to its end and checks nothing was left).
TEST_F(ResolverTest, ALookupOutlivingItsResolverCallsNobody) {
  int calls = 0;
  {
    HostResolver r(&loop_);
    r.resolve("localhost", 1, [&](const Resolution&) { ++calls; });
    r.shutdown();
  }
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace pgs::proxy
