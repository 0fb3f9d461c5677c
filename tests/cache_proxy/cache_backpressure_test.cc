// Memory per client under the result cache (issue 10, item 5): a client that pipelines thousands of
// requests answered from the cache and reads nothing must not make the proxy queue every reply; the
// proxy stops reading it above client_buffer_high_water and resumes as it drains, so every reply still
// arrives, in order.
#include <gtest/gtest.h>

#include <fstream>

#include "tests/cache_proxy/cache_util.h"
#include "tests/support/raw_client.h"

namespace pgs::it::cache_proxy {
namespace {

class CacheBackpressureTest : public ProxyTest {
 protected:
  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "needs the pgsidecar process";
    prefix_ = unique_prefix();
    table_ = "pgs_cache_bp_" + std::to_string(getpid());
    create_table(table_, 1);
    Pg c{ConnSpec{}};
    c.must("UPDATE public." + table_ + " SET v = repeat('x', 65536)");
  }
  void TearDown() override {
    ProxyTest::TearDown();
    if (!table_.empty()) drop_table(table_);
    if (!prefix_.empty()) redis_delete_prefix(kRedisPort, prefix_);
  }
  std::string prefix_, table_;
};

TEST_F(CacheBackpressureTest, PipelinedCacheHitsDoNotGrowTheOutbox) {
  Proxy& p = start_proxy(cache_options(kRedisPort, prefix_, {"t:1m:public." + table_}, 1));
  ASSERT_TRUE(wait_catalog_read(p)) << "nothing is cached before the catalog is read";
  const std::string sql = "SELECT v FROM public." + table_ + " WHERE id = 1";
  {
    Pg warm{p.spec()};
    ASSERT_TRUE(warm.ok()) << warm.error();
    for (int i = 0; i < 3; ++i) ASSERT_EQ(warm.scalar(sql).size(), 65536u);  // stored, then hits
  }
  RawConn c(p.host(), p.port());
  c.set_rcvbuf(64 * 1024);
  LoginOutcome login_result = login(c, kUser, kPassword, kDatabase);
  ASSERT_TRUE(login_result.ok) << login_result.describe();
  constexpr int kRequests = 3000;  // ~190 MB of replies
  std::string burst;
  for (int i = 0; i < kRequests; ++i) burst += query_message(sql);
  const long base = p.rss_kb();
  ASSERT_TRUE(c.send(burst));
  long rss = 0;
  // Without backpressure the proxy queues every reply within a second or so.
  wait_until([&] {
    rss = p.rss_kb();
    return rss - base > 64 * 1024;
  }, Millis(3000));
  EXPECT_LT(rss - base, 64 * 1024) << "RSS grew from " << base << " kB to " << rss << " kB";
  // Reading resumes the proxy: every reply arrives.
  int ready = 0;
  while (ready < kRequests) {
    auto m = c.read_message(Millis(20000));
    ASSERT_TRUE(m.has_value()) << "after " << ready << " replies";
    ASSERT_NE(m->type, 'E') << parse_error_fields(m->body).describe();
    if (m->type == 'Z') ++ready;
  }
  EXPECT_EQ(ready, kRequests);
}

}  // namespace
}  // namespace pgs::it::cache_proxy
