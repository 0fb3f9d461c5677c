// Issue 12 item 3, end to end: a COMMIT the client hears is never followed by a stale hit, even when
// the bump could not be confirmed. Two pgsidecar processes share a private redis-server; the test
// pauses its writes (CLIENT PAUSE WRITE) at commit time, so the writer's bump times out.
#include <gtest/gtest.h>

#include "tests/cache/redis_env.h"
#include "tests/cache_proxy/cache_util.h"
#include "tests/session/session_util.h"

namespace pgs::it::cache_proxy {
namespace {

class CacheCommitTest : public ProxyTest {
 protected:
  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "needs the pgsidecar process";
    ASSERT_TRUE(redis_.running());
    prefix_ = unique_prefix();
    table_ = "pgs_cache_commit_" + std::to_string(getpid());
    create_table(table_);
  }
  void TearDown() override {
    unpause();
    reader_.reset();
    ProxyTest::TearDown();
    if (!table_.empty()) drop_table(table_);
  }
  ProxyOptions options() const { return cache_options(redis_.port(), prefix_, {"t:1m:public." + table_}); }
  std::string select_sql() const { return "SELECT v FROM public." + table_ + " WHERE id = 1"; }
  double metric(const Proxy& p, const std::string& name, const std::string& labels) const {
    return metric_value(scrape_metrics(p), name, labels);
  }
  void unpause() {
    pgs::cache::testing::SyncRedis r("127.0.0.1", redis_.port());
    if (r.ok()) r.run({"CLIENT", "UNPAUSE"});
  }

  pgs::cache::testing::PrivateRedis redis_;
  std::string prefix_, table_;
  std::unique_ptr<Proxy> reader_;
};

TEST_F(CacheCommitTest, UnconfirmedBumpIsNeverFollowedByAStaleHit) {
  Proxy& writer_proxy = start_proxy(options());
  reader_ = Proxy::start(options());
  ASSERT_TRUE(wait_until([&] { return metric(*reader_, "pgsidecar_cache_ready", "") == 1; }, Millis(5000),
                         Millis(50)));
  ASSERT_TRUE(wait_until([&] { return metric(writer_proxy, "pgsidecar_cache_ready", "") == 1; }, Millis(5000),
                         Millis(50)));
  {  // the old value is stored and served by the reader's proxy
    Pg r(reader_->spec());
    ASSERT_TRUE(r.ok()) << r.error();
    ASSERT_TRUE(wait_until(
        [&] {
          return r.scalar(select_sql()) == "v1" &&
                 metric(*reader_, "pgsidecar_cache_requests_total", "class=\"t\",result=\"hit\"") >= 1;
        },
        Millis(5000), Millis(50)));
  }
  Pg w(writer_proxy.spec());
  ASSERT_TRUE(w.ok()) << w.error();
  pgs::cache::testing::SyncRedis admin("127.0.0.1", redis_.port());
  ASSERT_TRUE(admin.ok());
  ASSERT_EQ(admin.run({"CLIENT", "PAUSE", "5000", "WRITE"}), "OK");
  w.must("UPDATE public." + table_ + " SET v = 'new' WHERE id = 1");  // the bump times out (200ms)
  // The client heard COMMIT: no sidecar may serve the old value now.
  for (int i = 0; i < 3; ++i) {
    Pg r(reader_->spec());
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(r.scalar(select_sql()), "new") << "read " << i << " after the COMMIT";
  }
  unpause();
  // Once Redis takes writes again, the bump is retried and the cache serves the new value.
  Pg r(reader_->spec());
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_TRUE(wait_until([&] { return r.scalar(select_sql()) == "new"; }, Millis(5000), Millis(50)));
  EXPECT_EQ(w.scalar(select_sql()), "new");
}

}  // namespace
}  // namespace pgs::it::cache_proxy
