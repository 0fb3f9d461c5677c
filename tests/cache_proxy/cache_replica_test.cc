// Issue 12 item 2, end to end: a miss answered by a replica that has not replayed the newest write of
// the tables it read is served but not stored. Two pgsidecar processes share one Redis key prefix and
// one private replica (tests/routing/private_replica.h), whose replay the test pauses; the writer
// goes through proxy A, the reader through proxy B.
#include <gtest/gtest.h>

#include "tests/cache_proxy/cache_util.h"
#include "tests/routing/private_env.h"
#include "tests/routing/routing_support.h"
#include "tests/session/session_util.h"

namespace pgs::it::cache_proxy {
namespace {

using routing::private_replica;
using routing::PrivateReplica;

// Resumes replay however the test ends: the replica is this process's, but a paused one would stall
// every later test of the binary.
struct ReplayGuard {
  PrivateReplica& replica;
  ~ReplayGuard() {
    try {
      replica.resume_replay();
    } catch (...) {
    }
  }
};

class CacheReplicaTest : public ProxyTest {
 protected:
  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "needs the pgsidecar process";
    prefix_ = unique_prefix();
    table_ = "pgs_cache_replica_" + std::to_string(getpid());
    create_table(table_);
    PrivateReplica& replica = private_replica();
    replica.resume_replay();
    replica.set_apply_delay(0);
    replica.wait_caught_up(Millis(30000));
  }
  void TearDown() override {
    reader_.reset();
    ProxyTest::TearDown();
    if (!table_.empty()) drop_table(table_);
    if (!prefix_.empty()) redis_delete_prefix(kRedisPort, prefix_);
  }
  // Cache on (this test's prefix, class "t" over the table) and routing to the private replica.
  ProxyOptions options() const {
    ProxyOptions o = routing::routing_options({{"private1", private_replica().port()}}, "consistency = \"session\"\n");
    ProxyOptions c = cache_options(kRedisPort, prefix_, {"t:1m:public." + table_});
    o.workers = 1;
    o.pool_size = 4;
    o.cache_toml = c.cache_toml;
    o.extra_toml += c.extra_toml;
    return o;
  }
  std::string select_sql() const { return "SELECT v FROM public." + table_ + " WHERE id = 1"; }
  double metric(const Proxy& p, const std::string& name, const std::string& labels) const {
    return metric_value(scrape_metrics(p), name, labels);
  }

  std::string prefix_, table_;
  std::unique_ptr<Proxy> reader_;
};

TEST_F(CacheReplicaTest, MissFromLaggingReplicaIsNotStored) {
  Proxy& writer_proxy = start_proxy(options());
  reader_ = Proxy::start(options());
  PrivateReplica& replica = private_replica();
  {  // both proxies route reads to the replica (its monitor saw it healthy)
    Pg a(writer_proxy.spec()), b(reader_->spec());
    ASSERT_TRUE(a.ok() && b.ok()) << a.error() << b.error();
    ASSERT_TRUE(routing::wait_node(b, "replica", Millis(15000))) << routing::node_of(b);
    ASSERT_TRUE(routing::wait_node(a, "replica", Millis(15000))) << routing::node_of(a);
  }
  ReplayGuard guard{replica};
  replica.pause_replay();

  Pg w(writer_proxy.spec());
  ASSERT_TRUE(w.ok()) << w.error();
  w.must("UPDATE public." + table_ + " SET v = 'new' WHERE id = 1");

  // A fresh connection through the other proxy: a miss, answered by the paused replica (old value).
  {
    Pg r(reader_->spec());
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(r.scalar(select_sql()), "v1") << "the paused replica should have answered";
  }
  EXPECT_TRUE(wait_until(
      [&] { return metric(*reader_, "pgsidecar_cache_stores_total", "class=\"t\",result=\"replica_behind\"") >= 1; },
      Millis(5000), Millis(50)))
      << "the skipped store is not counted";
  EXPECT_EQ(metric(*reader_, "pgsidecar_cache_stores_total", "class=\"t\",result=\"stored\""), 0);

  replica.resume_replay();
  replica.wait_caught_up(Millis(30000));
  // The writer reads its own row: never the old value stored from the lagging replica.
  EXPECT_EQ(w.scalar(select_sql()), "new");
  Pg fresh(writer_proxy.spec());
  ASSERT_TRUE(fresh.ok()) << fresh.error();
  EXPECT_EQ(fresh.scalar(select_sql()), "new");
}

// Once the replica has replayed the write (and the reader's monitor has seen it), a miss it answers
// is stored again, and a read the primary answers always was.
TEST_F(CacheReplicaTest, CaughtUpReplicaStoresAgain) {
  Proxy& writer_proxy = start_proxy(options());
  reader_ = Proxy::start(options());
  Pg w(writer_proxy.spec());
  ASSERT_TRUE(w.ok()) << w.error();
  w.must("UPDATE public." + table_ + " SET v = 'again' WHERE id = 1");
  private_replica().wait_caught_up(Millis(30000));
  // The reader's monitor refreshes every 100 ms: within the deadline a replica-served miss is stored,
  // and the next read is a hit with the new value.
  bool stored = wait_until(
      [&] {
        Pg r(reader_->spec());
        return r.ok() && r.scalar(select_sql()) == "again" &&
               metric(*reader_, "pgsidecar_cache_stores_total", "class=\"t\",result=\"stored\"") >= 1;
      },
      Millis(10000), Millis(50));
  EXPECT_TRUE(stored) << reader_->log_tail();
  Pg r(reader_->spec());
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.scalar(select_sql()), "again");
}

}  // namespace
}  // namespace pgs::it::cache_proxy
