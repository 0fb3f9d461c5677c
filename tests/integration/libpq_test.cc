// libpq through the proxy: pipeline mode across several Syncs, COPY in and out, a 100 MB result
// read by a slow client with the proxy's memory bounded, and PQcancel of one client's query while
// another client's query completes.
#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/support/raw_client.h"

namespace pgs::it {
namespace {

using Clock = std::chrono::steady_clock;
using LibpqTest = ProxyTest;

void send_param_query(PGconn* c, const std::string& sql, const std::string& param) {
  const char* values[1] = {param.c_str()};
  ASSERT_EQ(PQsendQueryParams(c, sql.c_str(), 1, nullptr, values, nullptr, nullptr, 0), 1)
      << PQerrorMessage(c);
}

// Next result of a pipeline, then the NULL that ends it.
PgResult next_result(PGconn* c) {
  PgResult r(PQgetResult(c));
  if (r.status() != PGRES_PIPELINE_SYNC) {
    PGresult* end = PQgetResult(c);
    EXPECT_EQ(end, nullptr) << "more than one result for one query";
    PQclear(end);
  }
  return r;
}

TEST_F(LibpqTest, PipelineAcrossSeveralSyncs) {
  Proxy& p = start_proxy();
  Pg pg(p.spec());
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string t = "it_pipe_" + std::to_string(getpid());
  pg.must("DROP TABLE IF EXISTS " + t + "; CREATE TABLE " + t + " (n int)");
  PGconn* c = pg.get();
  ASSERT_EQ(PQenterPipelineMode(c), 1);
  constexpr int kBatches = 5, kPerBatch = 40;
  // Batch 0 opens a transaction that stays open across the Sync; batch 1 sees its row and commits.
  ASSERT_EQ(PQsendQueryParams(c, "BEGIN", 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
  send_param_query(c, "INSERT INTO " + t + " VALUES ($1::int)", "7");
  ASSERT_EQ(PQpipelineSync(c), 1);
  send_param_query(c, "SELECT count(*) + $1::int FROM " + t, "0");
  ASSERT_EQ(PQsendQueryParams(c, "COMMIT", 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQpipelineSync(c), 1);
  for (int b = 0; b < kBatches; ++b) {
    for (int i = 0; i < kPerBatch; ++i) {
      if (b == 2 && i == 10) send_param_query(c, "SELECT 1 / $1::int", "0");  // aborts batch 2
      send_param_query(c, "SELECT $1::int * 2", std::to_string(b * 1000 + i));
    }
    ASSERT_EQ(PQpipelineSync(c), 1);
  }
  EXPECT_TRUE(next_result(c).ok());                           // BEGIN
  EXPECT_TRUE(next_result(c).ok());                           // INSERT
  EXPECT_EQ(next_result(c).status(), PGRES_PIPELINE_SYNC);
  EXPECT_EQ(next_result(c).value(0, 0), "1");                 // own uncommitted row
  EXPECT_TRUE(next_result(c).ok());                           // COMMIT
  EXPECT_EQ(next_result(c).status(), PGRES_PIPELINE_SYNC);
  for (int b = 0; b < kBatches; ++b) {
    bool aborted = false;
    for (int i = 0; i < kPerBatch; ++i) {
      if (b == 2 && i == 10) {
        PgResult e = next_result(c);
        EXPECT_EQ(e.sqlstate(), "22012") << e.error();
        aborted = true;
      }
      PgResult r = next_result(c);
      if (aborted) {
        EXPECT_EQ(r.status(), PGRES_PIPELINE_ABORTED) << "batch " << b << " query " << i;
      } else {
        ASSERT_EQ(r.status(), PGRES_TUPLES_OK) << r.error();
        EXPECT_EQ(r.value(0, 0), std::to_string(2 * (b * 1000 + i)));
      }
    }
    EXPECT_EQ(next_result(c).status(), PGRES_PIPELINE_SYNC) << "batch " << b;
  }
  ASSERT_EQ(PQexitPipelineMode(c), 1) << PQerrorMessage(c);
  EXPECT_EQ(pg.scalar("SELECT count(*) FROM " + t), "1");
  pg.must("DROP TABLE " + t);
}

// 100k rows "<id>\t<text>\n" as COPY text format.
std::string copy_payload(int rows) {
  std::string s;
  for (int i = 1; i <= rows; ++i) {
    s += std::to_string(i) + "\trow-" + std::to_string(i * 7919 % 100003) + "-payload\n";
  }
  return s;
}

TEST_F(LibpqTest, CopyInAndOutChecksum) {
  Proxy& p = start_proxy();
  Pg pg(p.spec());
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string t = "it_copy_" + std::to_string(getpid());
  pg.must("DROP TABLE IF EXISTS " + t + "; CREATE TABLE " + t + " (id int, v text)");
  const std::string data = copy_payload(100000);
  ASSERT_EQ(pg.exec("COPY " + t + " FROM STDIN").status(), PGRES_COPY_IN);
  for (size_t at = 0; at < data.size(); at += 8192) {
    size_t n = std::min<size_t>(8192, data.size() - at);
    ASSERT_EQ(PQputCopyData(pg.get(), data.data() + at, static_cast<int>(n)), 1);
  }
  ASSERT_EQ(PQputCopyEnd(pg.get(), nullptr), 1);
  PgResult done(PQgetResult(pg.get()));
  ASSERT_EQ(done.status(), PGRES_COMMAND_OK) << done.error();
  EXPECT_STREQ(PQcmdTuples(done.get()), "100000");
  PQclear(PQgetResult(pg.get()));

  ASSERT_EQ(pg.exec("COPY (SELECT id, v FROM " + t + " ORDER BY id) TO STDOUT").status(),
            PGRES_COPY_OUT);
  std::string out;
  char* buf = nullptr;
  int n = 0;
  while ((n = PQgetCopyData(pg.get(), &buf, 0)) > 0) {
    out.append(buf, static_cast<size_t>(n));
    PQfreemem(buf);
  }
  EXPECT_EQ(n, -1);
  PgResult end(PQgetResult(pg.get()));
  EXPECT_EQ(end.status(), PGRES_COMMAND_OK) << end.error();
  PQclear(PQgetResult(pg.get()));
  EXPECT_EQ(out.size(), data.size());
  EXPECT_EQ(md5_hex(out), md5_hex(data));
  std::string server_md5 = pg.scalar("SELECT md5(string_agg(id || E'\\t' || v || E'\\n', '' "
                                     "ORDER BY id)) FROM " + t);
  EXPECT_EQ(server_md5, md5_hex(data));
  // A COPY that fails half-way (CopyFail) leaves the connection usable.
  ASSERT_EQ(pg.exec("COPY " + t + " FROM STDIN").status(), PGRES_COPY_IN);
  ASSERT_EQ(PQputCopyData(pg.get(), "1\tx\n", 4), 1);
  ASSERT_EQ(PQputCopyEnd(pg.get(), "client gave up"), 1);
  PgResult failed(PQgetResult(pg.get()));
  EXPECT_EQ(failed.sqlstate(), "57014") << failed.error();
  PQclear(PQgetResult(pg.get()));
  EXPECT_EQ(pg.scalar("SELECT count(*) FROM " + t), "100000");
  pg.must("DROP TABLE " + t);
}

// COPY FROM STDIN through the extended protocol (libpq PQexecParams): the Sync libpq sends after the
// Execute reaches the server in COPY mode, which ignores it, and libpq sends another after CopyDone or
// CopyFail. The proxy must count one ReadyForQuery, not two: otherwise it waits for one that never
// comes and the server is never released (pool of one: the next client times out).
TEST_F(LibpqTest, ExtendedProtocolCopyReleasesTheServer) {
  ProxyOptions o;
  o.pool_size = 1;
  o.query_wait_timeout = "3s";
  Proxy& p = start_proxy(o);
  Pg pg(p.spec());
  ASSERT_TRUE(pg.ok()) << pg.error();
  std::string t = "it_xcopy_" + std::to_string(getpid());
  pg.must("DROP TABLE IF EXISTS " + t + "; CREATE TABLE " + t + " (id int, v text)");
  for (const char* end : {"done", "fail"}) {
    SCOPED_TRACE(end);
    PgResult copy(PQexecParams(pg.get(), ("COPY " + t + " FROM STDIN").c_str(), 0, nullptr, nullptr, nullptr,
                               nullptr, 0));
    ASSERT_EQ(copy.status(), PGRES_COPY_IN) << copy.error();
    ASSERT_EQ(PQputCopyData(pg.get(), "1\tx\n", 4), 1);
    ASSERT_EQ(PQputCopyEnd(pg.get(), std::string(end) == "done" ? nullptr : "client gave up"), 1);
    PgResult result(PQgetResult(pg.get()));
    if (std::string(end) == "done") {
      EXPECT_EQ(result.status(), PGRES_COMMAND_OK) << result.error();
    } else {
      EXPECT_EQ(result.sqlstate(), "57014") << result.error();
    }
    PQclear(PQgetResult(pg.get()));
    EXPECT_EQ(pg.scalar("SELECT count(*) FROM " + t), "1");
    Pg other(p.spec());
    ASSERT_TRUE(other.ok()) << other.error();
    PgResult r = other.exec("SELECT 'the only server was released'");
    EXPECT_TRUE(r.ok()) << "[" << r.sqlstate() << "] " << r.error();
  }
  pg.must("DROP TABLE " + t);
}

// Reads the whole result at ~`bytes_per_sec`, sampling the proxy's RSS; returns the DataRow count.
long slow_read(RawConn& c, Proxy& p, double bytes_per_sec, long* max_rss_kb, std::string* error) {
  auto start = Clock::now();
  long rows = 0;
  size_t bytes = 0, next_check = 0;
  while (true) {
    auto m = c.read_message(Millis(30000));
    if (!m) {
      *error = c.closed() ? "connection closed" : "timeout";
      return rows;
    }
    bytes += 5 + m->body.size();
    if (m->type == 'D') {
      ++rows;
      if (m->body.size() != 2 + 4 + 1000) *error = "unexpected DataRow size";
    }
    if (m->type == 'E') *error = parse_error_fields(m->body).describe();
    if (m->type == 'Z') return rows;
    if (bytes >= next_check) {
      next_check = bytes + (256 << 10);
      *max_rss_kb = std::max(*max_rss_kb, p.rss_kb());
      auto due = start + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(double(bytes) / bytes_per_sec));
      // Deliberate throttling (this is the slow client), not a wait for a condition.
      if (due > Clock::now()) std::this_thread::sleep_until(due);
    }
  }
}

TEST_F(LibpqTest, HundredMegabytesToASlowClientKeepsMemoryBounded) {
  Proxy& p = start_proxy();
  RawConn c(p.host(), p.port());
  c.set_rcvbuf(64 << 10);
  ASSERT_TRUE(login(c, kUser, kPassword, kDatabase).ok);
  long baseline = p.rss_kb();
  ASSERT_TRUE(c.send(query_message("SELECT repeat('x', 1000) FROM generate_series(1, 100000)")));
  long max_rss = baseline;
  std::string error;
  long rows = slow_read(c, p, 25e6, &max_rss, &error);  // 100 MB at 25 MB/s: ~4 s
  EXPECT_EQ(rows, 100000);
  EXPECT_EQ(error, "");
  if (!p.direct()) {
    EXPECT_LT(max_rss - baseline, 64 * 1024) << "baseline " << baseline << " kB, max " << max_rss;
    std::cout << "proxy RSS baseline " << baseline << " kB, max " << max_rss << " kB\n";
  }
  QueryOutcome q = simple_query(c, "SELECT 'after'");
  EXPECT_EQ(q.status, 'I');
}

TEST_F(LibpqTest, CancelLongQueryWhileAnotherClientCompletes) {
  Proxy& p = start_proxy();
  Pg a(p.spec()), b(p.spec()), su = superuser();
  ASSERT_TRUE(a.ok() && b.ok() && su.ok()) << a.error() << b.error() << su.error();
  std::string marker = "it-cancel-" + std::to_string(getpid());
  ASSERT_EQ(PQsendQuery(a.get(), ("SELECT pg_sleep(30) /* " + marker + " */").c_str()), 1);
  ASSERT_TRUE(wait_query_running(marker, Millis(5000)));
  ASSERT_EQ(PQsendQuery(b.get(), "SELECT pg_sleep(0.3), 'b-answer'"), 1);
  auto t0 = Clock::now();
  PGcancel* cancel = PQgetCancel(a.get());
  char err[256];
  EXPECT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
  PQfreeCancel(cancel);
  PgResult ra(PQgetResult(a.get()));
  auto took = Clock::now() - t0;
  PQclear(PQgetResult(a.get()));
  EXPECT_EQ(ra.sqlstate(), "57014") << ra.error();
  EXPECT_LT(took, std::chrono::seconds(2));
  PgResult rb(PQgetResult(b.get()));
  PQclear(PQgetResult(b.get()));
  ASSERT_EQ(rb.status(), PGRES_TUPLES_OK) << rb.error();
  EXPECT_EQ(rb.value(0, 1), "b-answer");
  EXPECT_EQ(a.scalar("SELECT 'a still works'"), "a still works");
  EXPECT_EQ(b.scalar("SELECT 'b still works'"), "b still works");
}

TEST_F(LibpqTest, CancelOfAnIdleClientCancelsNothing) {
  ProxyOptions o;
  o.pool_size = 1;  // b's query runs on the very server a used a moment ago
  o.workers = 1;    // pool_size is split across workers: one worker, one server
  Proxy& p = start_proxy(o);
  Pg a(p.spec()), b(p.spec()), su = superuser();
  ASSERT_TRUE(a.ok() && b.ok() && su.ok());
  EXPECT_EQ(a.scalar("SELECT 'a ran first'"), "a ran first");
  std::string marker = "it-idle-cancel-" + std::to_string(getpid());
  ASSERT_EQ(PQsendQuery(b.get(), ("SELECT pg_sleep(1), 'b' /* " + marker + " */").c_str()), 1);
  ASSERT_TRUE(wait_query_running(marker, Millis(5000)));
  // `a` holds no server now: its cancel must not reach b's query, although b runs on the server
  // that served a (forwarding with that server's key would cancel a stranger's query).
  PGcancel* cancel = PQgetCancel(a.get());
  char err[256];
  PQcancel(cancel, err, sizeof err);
  PQfreeCancel(cancel);
  PgResult rb(PQgetResult(b.get()));
  PQclear(PQgetResult(b.get()));
  ASSERT_EQ(rb.status(), PGRES_TUPLES_OK) << rb.error();
  EXPECT_EQ(a.scalar("SELECT 'a'"), "a");
}

}  // namespace
}  // namespace pgs::it
