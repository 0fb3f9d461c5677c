// SHOW POOLS counts clients per pool the way PgBouncer does (issue 10, item 6), summed over the
// workers: a logged-in client that is not waiting is cl_active (bound to a server or idle), one
// queued for a server is cl_waiting; /metrics has the same counts (pgsidecar_pool_clients).
#include <gtest/gtest.h>
#include <libpq-fe.h>


#include "tests/integration/harness.h"

namespace pgs::it {
namespace {

constexpr const char* kAdminDb = kAdminDatabase;

// The client columns of the (flopods, flopods, primary) row; -1 when absent or on error.
struct PoolCounts {
  int active = -1, waiting = -1, idle = -1;
  bool operator==(const PoolCounts&) const = default;
};

std::ostream& operator<<(std::ostream& os, const PoolCounts& c) {
  return os << "{cl_active " << c.active << ", cl_waiting " << c.waiting << ", cl_idle " << c.idle << "}";
}

class ShowPoolsTest : public ProxyTest {
 protected:
  PoolCounts show_pools() {
    Pg admin(proxy_->conninfo(kAdminUser, kAdminPassword, kAdminDb));
    if (!admin.ok()) return {};
    PgResult r = admin.exec("SHOW POOLS");
    if (!r.ok()) return {};
    PGresult* res = r.get();
    int db = PQfnumber(res, "database"), node = PQfnumber(res, "node");
    int active = PQfnumber(res, "cl_active"), waiting = PQfnumber(res, "cl_waiting"), idle = PQfnumber(res, "cl_idle");
    for (int i = 0; i < r.rows(); ++i) {
      if (r.value(i, db) != kDatabase || r.value(i, node) != "primary") continue;
      return {std::stoi(r.value(i, active)), std::stoi(r.value(i, waiting)), std::stoi(r.value(i, idle))};
    }
    return {0, 0, 0};  // no pool yet: nobody counted
  }

  // pgsidecar_pool_clients{pool="flopods/flopods",node="primary",state=...}; -1 when absent.
  long metric(const std::string& state) {
    std::string page = scrape_metrics(*proxy_);
    return static_cast<long>(
        metric_value(page, "pgsidecar_pool_clients", "pool=\"flopods/flopods\",node=\"primary\",state=\"" + state + "\""));
  }

  // Published once per worker tick: wait (deadline) for the expected counts.
  void expect_counts(PoolCounts want, const char* when) {
    PoolCounts got;
    bool ok = wait_until([&] { return (got = show_pools()) == want; }, Millis(5000), Millis(50));
    EXPECT_TRUE(ok) << when << ": SHOW POOLS " << got << ", want " << want;
    long m_active = -1, m_waiting = -1;
    ok = wait_until(
        [&] {
          m_active = metric("active");
          m_waiting = metric("waiting");
          return m_active == want.active && m_waiting == want.waiting;
        },
        Millis(5000), Millis(50));
    EXPECT_TRUE(ok) << when << ": /metrics active " << m_active << ", waiting " << m_waiting;
  }
};

TEST_F(ShowPoolsTest, IdleClientsAreActiveSummedOverWorkers) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.workers = 2;  // the kernel spreads the clients over both workers' listeners
  start_proxy(o);
  std::vector<std::unique_ptr<Pg>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<Pg>(proxy_->spec()));
    ASSERT_TRUE(clients.back()->ok()) << clients.back()->error();
    clients.back()->must("SELECT 1");  // and back to idle: no server held
  }
  expect_counts({4, 0, 4}, "4 idle clients");
  clients.clear();
  expect_counts({0, 0, 0}, "after they left");
}

TEST_F(ShowPoolsTest, AClientQueuedBehindAnOpenTransactionIsWaiting) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.workers = 1;    // one pool, one server
  o.pool_size = 1;
  start_proxy(o);
  Pg holder(proxy_->spec()), waiter(proxy_->spec());
  ASSERT_TRUE(holder.ok() && waiter.ok()) << holder.error() << waiter.error();
  holder.must("BEGIN");
  holder.must("SELECT 1");  // the transaction keeps the only server
  expect_counts({2, 0, 1}, "one client in a transaction, one idle");
  ASSERT_EQ(PQsendQuery(waiter.get(), "SELECT 'served'"), 1);
  expect_counts({1, 1, 0}, "one client in a transaction, one waiting");
  holder.must("COMMIT");
  PgResult r(PQgetResult(waiter.get()));
  PQclear(PQgetResult(waiter.get()));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(0, 0), "served");
  expect_counts({2, 0, 2}, "both idle");
  holder.close();
  waiter.close();
  expect_counts({0, 0, 0}, "after they left");
}

}  // namespace
}  // namespace pgs::it
