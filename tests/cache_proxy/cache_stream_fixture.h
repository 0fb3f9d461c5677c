// The fixture of the invalidation stream's end-to-end tests (issue 12 item 1; cache_stream_test.cc,
// cache_stream_catalog_test.cc and cache_stream_faults_test.cc): real pgsidecar processes with the stream
// on, the dev primary (wal_level = logical) and a Redis (the dev one with a key prefix per test, or a
// private one). Each test's slots have their own names and are dropped after, and so are its tables.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cache/key.h"
#include "tests/cache_proxy/cache_util.h"
#include "tests/session/session_util.h"

namespace pgs::it::cache_proxy {

class CacheStreamTest : public ProxyTest {
 protected:
  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "needs the pgsidecar process";
    prefix_ = unique_prefix();
    slot_ = "pgs_stream_test_" + std::to_string(getpid()) + "_" + std::to_string(counter_);
    table_ = "pgs_cache_stream_" + std::to_string(counter_++) + "_" + std::to_string(getpid());
    create_table(table_);
    create_table(table_ + "_direct");  // written only straight to the primary (the randomized test)
  }
  void TearDown() override {
    proxies_.clear();  // stops them: their slots become inactive and can be dropped
    ProxyTest::TearDown();
    if (!table_.empty()) {
      Pg d{ConnSpec{}};
      if (d.ok()) {  // the views and the function of ViewsAndFunctions...
        d.exec("DROP VIEW IF EXISTS public." + table_ + "_w, public." + table_ + "_v, public." + table_ + "_fv");
        d.exec("DROP FUNCTION IF EXISTS public." + table_ + "_f(text)");
        d.exec("DROP TABLE IF EXISTS public." + table_ + "_p");
      }
      drop_table(table_);
      drop_table(table_ + "_direct");
    }
    if (!prefix_.empty()) redis_delete_prefix(redis_port_, prefix_);
    if (!slot_.empty()) {
      Pg su = superuser(kDatabase);
      su.exec("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE '" + slot_ +
              "%' AND NOT active");
    }
  }

  ProxyOptions options(const std::string& max_delay = "1s", const std::vector<std::string>& more_classes = {}) const {
    std::vector<std::string> classes = {"t:10m:public." + table_, "d:10m:public." + table_ + "_direct"};
    classes.insert(classes.end(), more_classes.begin(), more_classes.end());
    ProxyOptions o = cache_options(redis_port_, prefix_, classes, 1);
    o.cache_toml += "invalidation_stream = true\nstream_slot = \"" + slot_ + "\"\nstream_user = \"" + kAdminUser +
                    "\"\nstream_password = \"" + kAdminPassword + "\"\nstream_max_delay = \"" + max_delay + "\"\n" + more_toml_;
    return o;
  }
  Proxy& start_sidecar(const std::string& max_delay = "1s", const std::vector<std::string>& more_classes = {}) {
    proxies_.push_back(Proxy::start(options(max_delay, more_classes)));
    Proxy& p = *proxies_.back();
    EXPECT_TRUE(wait_catalog_read(p)) << "the catalog was not read";
    return p;
  }
  // Two sidecars on one stream, both live, exactly one of them leading: {leader, the other}; {null, null}
  // (with a failure recorded) when that does not come about.
  std::pair<Proxy*, Proxy*> start_two_sidecars() {
    Proxy& a = start_sidecar();
    Proxy& b = start_sidecar();
    EXPECT_TRUE(wait_live(a)) << a.log_tail();
    EXPECT_TRUE(wait_live(b)) << b.log_tail();
    bool one_leads = wait_until([&] {
      return metric(a, "pgsidecar_cache_stream_leader") + metric(b, "pgsidecar_cache_stream_leader") == 1;
    }, Millis(5000), Millis(20));
    EXPECT_TRUE(one_leads) << "not exactly one leader";
    if (::testing::Test::HasFailure()) return {nullptr, nullptr};
    return metric(a, "pgsidecar_cache_stream_leader") == 1 ? std::pair{&a, &b} : std::pair{&b, &a};
  }
  double metric(const Proxy& p, const std::string& name) const { return metric_value(scrape_metrics(p), name, ""); }
  bool wait_live(const Proxy& p, Millis deadline = Millis(10000)) const {
    return wait_until([&] { return metric(p, "pgsidecar_cache_stream_live") == 1; }, deadline, Millis(20));
  }
  std::string select_sql() const { return "SELECT v FROM public." + table_ + " WHERE id = 1"; }
  std::string lease_key() const { return cache::RedisNames(prefix_).base + "stream:leader"; }
  // The value a read through `c` sees for row 1 within `deadline`, once it is `want`; else the last one.
  std::string wait_value(Pg& c, const std::string& want, Millis deadline) const {
    std::string seen;
    wait_until([&] {
      seen = c.scalar(select_sql());
      return seen == want;
    }, deadline, Millis(10));
    return seen;
  }
  // True once a read of row 1 through `c` answers `want` and Postgres did not run it (a hit) within
  // `deadline`: the row is cached (again).
  bool wait_cached(Pg& c, const std::string& want, Millis deadline = Millis(5000)) const {
    return wait_until([&] {
      long before = statement_calls(table_);
      return c.scalar(select_sql()) == want && statement_calls(table_) == before;
    }, deadline, Millis(20));
  }
  void write_directly(const std::string& v) const {
    Pg su = superuser(kDatabase);
    ASSERT_TRUE(su.ok()) << su.error();
    su.must("UPDATE public." + table_ + " SET v = '" + v + "' WHERE id = 1");
  }

  static inline int counter_ = 0;
  uint16_t redis_port_ = kRedisPort;  // a test may point its sidecars at a private Redis
  std::string more_toml_;            // more [cache] keys for this test

  std::string prefix_, slot_, table_;
  std::vector<std::unique_ptr<Proxy>> proxies_;
};

}  // namespace pgs::it::cache_proxy
