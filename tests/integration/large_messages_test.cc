// Messages of any legal size (issue 10, item 2): a client message larger than max_parse_bytes streams
// to the server (simple Query, extended Bind with a 20 MB parameter — unnamed and re-addressed named
// statements —, a COPY row of 50 MB) and an 80 MB DataRow streams back, with the proxy's memory bounded
// well below the message size (VmHWM of the proxy before and after). A message above max_message_bytes
// gets FATAL 54000 that the client reads, and leaks no server (a pool of one keeps working).
// Memory per client (item 5): buffers that grew are released; connections count against
// max_client_conn from accept; the open-file limit is raised at start.
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/support/raw_client.h"

namespace pgs::it {
namespace {

constexpr size_t kMiB = 1 << 20;

// A line of /proc/<pid>/status in kB ("VmHWM", "VmRSS"); -1 when unknown.
long proc_status_kb(pid_t pid, const std::string& key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
  }
  return -1;
}

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(gen() & 0xff);
  return out;
}

std::string hex_literal(const std::string& blob) {  // '\x...'::bytea, as psycopg2 writes bytes
  static const char* kHex = "0123456789abcdef";
  std::string out = "'\\x";
  out.reserve(blob.size() * 2 + 16);
  for (unsigned char c : blob) {
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out + "'::bytea";
}

class LargeMessagesTest : public ProxyTest {
 protected:
  Proxy& start(ProxyOptions o = {}) {
    o.workers = 1;
    return start_proxy(o);
  }
  long hwm_kb() { return proc_status_kb(proxy_->pid(), "VmHWM"); }
};

// The brief's psycopg2 case in libpq form: a 20 MB blob twice as a hex literal, an 80 MB Query.
TEST_F(LargeMessagesTest, SimpleQueryOf80MBStreamsWithBoundedMemory) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start();
  Pg c(p.spec());
  ASSERT_TRUE(c.ok()) << c.error();
  c.must("SELECT 1");
  const long before = hwm_kb();
  std::string blob = random_bytes(20 * kMiB, 1);
  std::string lit = hex_literal(blob);
  PgResult r = c.exec("SELECT length(" + lit + "), md5(" + lit + ")");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(0, 0), std::to_string(blob.size()));
  EXPECT_EQ(r.value(0, 1), md5_hex(blob));
  const long grew_mb = (hwm_kb() - before) / 1024;
  RecordProperty("proxy_peak_growth_mb", static_cast<int>(grew_mb));
  EXPECT_LT(grew_mb, 16) << "the proxy's peak memory grew by " << grew_mb << " MB for an 80 MB message";
  EXPECT_EQ(c.scalar("SELECT 2"), "2");  // framing carries on after the streamed message
}

// Extended protocol, binary parameter: an unnamed statement (Bind streams as is) and a named one (the
// Bind is re-addressed to the proxy's server-side name: its header changes length, its tail streams).
TEST_F(LargeMessagesTest, BindOf20MBBinaryParameterNamedAndUnnamed) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start();
  Pg c(p.spec());
  ASSERT_TRUE(c.ok()) << c.error();
  std::string blob = random_bytes(20 * kMiB, 2);
  const char* values[1] = {blob.data()};
  int lengths[1] = {static_cast<int>(blob.size())};
  int formats[1] = {1};
  Oid types[1] = {17};  // bytea
  const long before = hwm_kb();
  PgResult unnamed(PQexecParams(c.get(), "SELECT length($1), md5($1)", 1, types, values, lengths, formats, 0));
  ASSERT_TRUE(unnamed.ok()) << unnamed.error();
  EXPECT_EQ(unnamed.value(0, 0), std::to_string(blob.size()));
  EXPECT_EQ(unnamed.value(0, 1), md5_hex(blob));
  PgResult prep(PQprepare(c.get(), "big_blob", "SELECT length($1), md5($1)", 1, types));
  ASSERT_TRUE(prep.ok()) << prep.error();
  for (int i = 0; i < 2; ++i) {
    PgResult named(PQexecPrepared(c.get(), "big_blob", 1, values, lengths, formats, 0));
    ASSERT_TRUE(named.ok()) << named.error();
    EXPECT_EQ(named.value(0, 0), std::to_string(blob.size()));
    EXPECT_EQ(named.value(0, 1), md5_hex(blob));
  }
  const long grew_mb = (hwm_kb() - before) / 1024;
  RecordProperty("proxy_peak_growth_mb", static_cast<int>(grew_mb));
  EXPECT_LT(grew_mb, 12) << "peak memory grew by " << grew_mb << " MB for 20 MB Binds";
  EXPECT_EQ(c.scalar("SELECT 3"), "3");
}

TEST_F(LargeMessagesTest, CopyInOfOne50MBRow) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start();
  Pg c(p.spec());
  ASSERT_TRUE(c.ok()) << c.error();
  c.must("DROP TABLE IF EXISTS it_stream_copy");
  c.must("CREATE TABLE it_stream_copy (t text)");
  const long before = hwm_kb();
  PgResult start_copy = c.exec("COPY it_stream_copy FROM STDIN");
  ASSERT_EQ(start_copy.status(), PGRES_COPY_IN) << start_copy.error();
  std::string row(50 * kMiB, 'y');
  row += '\n';
  ASSERT_EQ(PQputCopyData(c.get(), row.data(), static_cast<int>(row.size())), 1) << c.error();
  ASSERT_EQ(PQputCopyEnd(c.get(), nullptr), 1) << c.error();
  PgResult done(PQgetResult(c.get()));
  EXPECT_TRUE(done.ok()) << done.error();
  while (PGresult* extra = PQgetResult(c.get())) PQclear(extra);
  EXPECT_EQ(c.scalar("SELECT length(t) FROM it_stream_copy"), std::to_string(50 * kMiB));
  const long grew_mb = (hwm_kb() - before) / 1024;
  RecordProperty("proxy_peak_growth_mb", static_cast<int>(grew_mb));
  EXPECT_LT(grew_mb, 16) << "peak memory grew by " << grew_mb << " MB for a 50 MB CopyData";
  c.must("DROP TABLE it_stream_copy");
}

TEST_F(LargeMessagesTest, ReplyOf80MBStreamsWithBoundedMemory) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start();
  Pg c(p.spec());
  ASSERT_TRUE(c.ok()) << c.error();
  c.must("SELECT 1");
  const long before = hwm_kb();
  PgResult r = c.exec("SELECT repeat('z', 80 * 1024 * 1024)");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(std::string(PQgetvalue(r.get(), 0, 0)).size(), 80 * kMiB);
  const long grew_mb = (hwm_kb() - before) / 1024;
  RecordProperty("proxy_peak_growth_mb", static_cast<int>(grew_mb));
  EXPECT_LT(grew_mb, 16) << "peak memory grew by " << grew_mb << " MB for an 80 MB DataRow";
}

TEST_F(LargeMessagesTest, CopyOutOfOne50MBRow) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start();
  Pg c(p.spec());
  ASSERT_TRUE(c.ok()) << c.error();
  c.must("SELECT 1");
  const long before = hwm_kb();
  PgResult out = c.exec("COPY (SELECT repeat('o', 50 * 1024 * 1024)) TO STDOUT");
  ASSERT_EQ(out.status(), PGRES_COPY_OUT) << out.error();
  size_t got = 0;
  char* buf = nullptr;
  int n = 0;
  while ((n = PQgetCopyData(c.get(), &buf, 0)) > 0) {
    got += static_cast<size_t>(n);
    PQfreemem(buf);
  }
  EXPECT_EQ(n, -1) << c.error();
  EXPECT_EQ(got, 50 * kMiB + 1);  // the row and its newline
  while (PGresult* rest = PQgetResult(c.get())) PQclear(rest);
  const long grew_mb = (hwm_kb() - before) / 1024;
  RecordProperty("proxy_peak_growth_mb", static_cast<int>(grew_mb));
  EXPECT_LT(grew_mb, 16) << "peak memory grew by " << grew_mb << " MB for a 50 MB CopyData";
}

// An error or notice of tens of MB (Postgres quotes the bad value) is not buffered whole: the client
// gets it shortened — its fields up to the cut, the cut one marked — with the SQLSTATE intact.
TEST_F(LargeMessagesTest, HugeErrorAndNoticeAreShortenedNotBuffered) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start();
  Pg c(p.spec());
  ASSERT_TRUE(c.ok()) << c.error();
  c.must("SELECT 1");
  const long before = hwm_kb();
  PgResult r = c.exec("SELECT ('" + std::string(30 * kMiB, 'x') + "')::int");
  EXPECT_EQ(r.sqlstate(), "22P02") << r.error().substr(0, 200);
  EXPECT_NE(r.error().find("invalid input syntax for type integer"), std::string::npos) << r.error().substr(0, 200);
  EXPECT_NE(r.error().find("truncated by pgsidecar"), std::string::npos);
  EXPECT_LT(r.error().size(), 4 * kMiB);
  static std::string notice;
  PQsetNoticeProcessor(c.get(), [](void*, const char* m) { notice = m; }, nullptr);
  c.must("DO $$BEGIN RAISE NOTICE '%', repeat('n', 30 * 1024 * 1024); END$$");
  EXPECT_NE(notice.find("truncated by pgsidecar"), std::string::npos) << notice.substr(0, 200);
  const long grew_mb = (hwm_kb() - before) / 1024;
  RecordProperty("proxy_peak_growth_mb", static_cast<int>(grew_mb));
  EXPECT_LT(grew_mb, 16) << "peak memory grew by " << grew_mb << " MB for a 30 MB ErrorResponse";
  EXPECT_EQ(c.scalar("SELECT 8"), "8");
}

// Above the hard cap: an ErrorResponse the client reads (not a reset), and no server leaked — with a
// pool of one, the next client gets a server, also after a refusal inside a transaction.
TEST_F(LargeMessagesTest, MessageAboveMaxMessageBytesGetsAReadable54000) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.pool_size = 1;
  o.max_message_bytes = 8 * kMiB;
  Proxy& p = start(o);
  std::string big = "SELECT length('" + std::string(20 * kMiB, 'q') + "')";
  {
    Pg c(p.spec());
    ASSERT_TRUE(c.ok()) << c.error();
    std::vector<PgResult> rs = c.exec_all(big);
    ASSERT_FALSE(rs.empty()) << c.error();
    EXPECT_EQ(rs.front().sqlstate(), "54000") << rs.front().error() << " / " << c.error();
    EXPECT_NE(rs.front().error().find("max_message_bytes"), std::string::npos) << rs.front().error();
  }
  {
    Pg c(p.spec());
    ASSERT_TRUE(c.ok()) << c.error();
    c.must("BEGIN");
    c.must("SELECT 1");  // holds the only server
    std::vector<PgResult> rs = c.exec_all(big);
    ASSERT_FALSE(rs.empty()) << c.error();
    EXPECT_EQ(rs.front().sqlstate(), "54000") << rs.front().error() << " / " << c.error();
  }
  Pg next(p.spec());
  ASSERT_TRUE(next.ok()) << next.error();
  EXPECT_EQ(next.scalar("SELECT 4"), "4");
}

// A client that vanishes halfway through a streamed message: its server holds half a message and is
// closed, never handed on; with a pool of one the next client still gets a (new) server.
TEST_F(LargeMessagesTest, ClientGoneMidStreamLeaksNoServer) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.pool_size = 1;
  Proxy& p = start(o);
  {
    RawConn c(p.host(), p.port());
    LoginOutcome l = login(c, kUser, kPassword, kDatabase);
    ASSERT_TRUE(l.ok) << l.describe();
    std::string sql = "SELECT length('" + std::string(20 * kMiB, 'h') + "')";
    std::string msg = query_message(sql);
    ASSERT_TRUE(c.send(std::string_view(msg).substr(0, msg.size() / 2)));
    c.close_with_reset();
  }
  Pg next(p.spec());
  ASSERT_TRUE(next.ok()) << next.error();
  std::optional<PgResult> r = next.exec_within("SELECT 9", Millis(10000));
  ASSERT_TRUE(r.has_value()) << "no server for the next client";
  EXPECT_EQ(r->value(0, 0), "9");
}

// A named Parse beyond max_parse_bytes cannot be kept for re-preparing elsewhere: a readable 54000.
TEST_F(LargeMessagesTest, NamedParseAboveMaxParseBytesGetsAReadable54000) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.pool_size = 1;
  o.proxy_toml = "max_parse_bytes = \"64kB\"\n";
  Proxy& p = start(o);
  {
    Pg c(p.spec());
    ASSERT_TRUE(c.ok()) << c.error();
    // PQprepare keeps only the last result (the close); the first is the proxy's FATAL.
    std::string sql = "SELECT length('" + std::string(200000, 'p') + "')";
    ASSERT_EQ(PQsendPrepare(c.get(), "huge", sql.c_str(), 0, nullptr), 1) << c.error();
    PGresult* first = PQgetResult(c.get());
    ASSERT_NE(first, nullptr) << c.error();
    PgResult r(first);
    EXPECT_EQ(r.sqlstate(), "54000") << r.error() << " / " << c.error();
    while (PGresult* more = PQgetResult(c.get())) PQclear(more);
  }
  Pg next(p.spec());
  ASSERT_TRUE(next.ok()) << next.error();
  // The unnamed statement streams.
  PgResult r = next.exec_params("SELECT length('" + std::string(200000, 'p') + "') + $1::int", {"1"});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(0, 0), "200001");
}

// A request streamed past the proxy may change session state it cannot see (here a temporary table):
// the session probe runs before the server is released, and the client stays pinned to it instead of
// leaking the table to the next client of a pool of one.
TEST_F(LargeMessagesTest, StreamedQueryIsProbedForSessionState) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.pool_size = 1;
  o.query_wait_timeout = "1s";
  o.proxy_toml = "max_parse_bytes = \"64kB\"\n";
  Proxy& p = start(o);
  Pg c(p.spec());
  ASSERT_TRUE(c.ok()) << c.error();
  c.must("CREATE TEMP TABLE it_stream_tmp (x int); SELECT '" + std::string(200000, 'a') + "'");
  EXPECT_EQ(c.scalar("SELECT count(*) FROM it_stream_tmp"), "0");
  Pg other(p.spec());
  ASSERT_TRUE(other.ok()) << other.error();
  PgResult r = other.exec("SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema()");
  if (r.ok()) {
    EXPECT_EQ(r.value(0, 0), "0") << "another client sees the streamed request's temporary table";
  } else {
    EXPECT_EQ(r.sqlstate(), "57014") << r.error();  // the only server stays pinned to its client
  }
}

// A streamed Query may name any SQL-prepared statement: the server is brought to every one of this
// client's definitions first, so it never runs another client's statement of the same name.
TEST_F(LargeMessagesTest, StreamedQueryRunsTheClientsOwnSqlPreparedStatement) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.pool_size = 1;
  o.proxy_toml = "max_parse_bytes = \"64kB\"\n";
  Proxy& p = start(o);
  Pg c(p.spec());
  ASSERT_TRUE(c.ok()) << c.error();
  c.must("PREPARE it_stream_q AS SELECT 42");
  {
    Pg other(p.spec());
    ASSERT_TRUE(other.ok()) << other.error();
    other.must("PREPARE it_stream_q AS SELECT 7");  // the only server now holds the other definition
    EXPECT_EQ(other.scalar("EXECUTE it_stream_q"), "7");
  }
  EXPECT_EQ(c.scalar("SELECT '" + std::string(200000, 's') + "'; EXECUTE it_stream_q"), "42");
}

// A buffer grown by one large message is released once it drained (max_parse_bytes raised so that the
// message is buffered whole).
TEST_F(LargeMessagesTest, GrownBuffersAreReleased) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.proxy_toml = "max_parse_bytes = \"128MB\"\n";
  Proxy& p = start(o);
  Pg c(p.spec());
  ASSERT_TRUE(c.ok()) << c.error();
  c.must("SELECT 1");
  const long base = proc_status_kb(p.pid(), "VmRSS");
  PgResult r = c.exec("SELECT length('" + std::string(60 * kMiB, 'r') + "')");
  ASSERT_TRUE(r.ok()) << r.error();
  long now = 0;
  EXPECT_TRUE(wait_until([&] {
    now = proc_status_kb(p.pid(), "VmRSS");
    return now - base < 16 * 1024;
  }, Millis(5000))) << "RSS " << base << " kB before, " << now << " kB after a 60 MB message";
  EXPECT_EQ(c.scalar("SELECT 5"), "5");
}

// Connections count from accept: silent ones beyond max_client_conn are closed at once, the others by
// client_login_timeout, after which a real client logs in.
TEST_F(LargeMessagesTest, SilentConnectionsCountAgainstMaxClientConn) {
  PGS_IT_REQUIRE_PROXY();
  ProxyOptions o;
  o.max_client_conn = 20;
  o.client_login_timeout = "3s";
  Proxy& p = start(o);
  std::vector<std::unique_ptr<RawConn>> silent;
  for (int i = 0; i < 40; ++i) silent.push_back(std::make_unique<RawConn>(p.host(), p.port()));
  std::string refusals;
  auto closed_count = [&] {
    int n = 0;
    for (auto& s : silent) {
      if (!s->closed()) refusals += s->drain(Millis(1)).bytes;
      if (s->closed()) ++n;
    }
    return n;
  };
  // Beyond the limit: 53300 and a close at once; the first 20 stay open (no startup packet yet).
  EXPECT_TRUE(wait_until([&] { return closed_count() >= 20; }, Millis(2000))) << closed_count() << " closed";
  // 21 if the harness's own readiness login had not been released yet when these arrived.
  int closed = closed_count();
  EXPECT_GE(closed, 20);
  EXPECT_LE(closed, 21);
  EXPECT_NE(refusals.find("53300"), std::string::npos);
  // The admitted ones are closed by the login timeout; then there is room again.
  EXPECT_TRUE(wait_until([&] { return closed_count() == 40; }, Millis(10000))) << closed_count() << " closed";
  Pg c(p.spec());
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c.scalar("SELECT 6"), "6");
}

// At start the proxy raises its open-file soft limit to the hard limit when the config needs more.
TEST_F(LargeMessagesTest, OpenFileSoftLimitIsRaisedAtStart) {
  PGS_IT_REQUIRE_PROXY();
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  if (saved.rlim_max < 4096) GTEST_SKIP() << "hard limit too low to tell";
  rlimit low = saved;
  low.rlim_cur = 512;  // inherited by the proxy; max_client_conn 2000 needs more
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  std::unique_ptr<Proxy> started;
  try {
    ProxyOptions o;
    o.workers = 1;
    started = Proxy::start(o);
  } catch (...) {
    setrlimit(RLIMIT_NOFILE, &saved);
    throw;
  }
  setrlimit(RLIMIT_NOFILE, &saved);
  std::ifstream f("/proc/" + std::to_string(started->pid()) + "/limits");
  std::string line, soft;
  while (std::getline(f, line)) {
    if (line.rfind("Max open files", 0) == 0) {
      std::istringstream in(line.substr(14));
      in >> soft;
    }
  }
  EXPECT_EQ(soft, std::to_string(saved.rlim_max));
}

// When even the hard limit is too low, the proxy says so clearly in its log, and still serves. The
// proxy runs under a wrapper that lowers both limits for it alone.
TEST_F(LargeMessagesTest, TooLowHardOpenFileLimitIsLogged) {
  PGS_IT_REQUIRE_PROXY();
  const std::string real = proxy_binary();
  char dir_template[] = "/tmp/pgs-it-nofile-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string wrapper = std::string(dir_template) + "/pgsidecar";
  {
    std::ofstream w(wrapper);
    w << "#!/bin/sh\nulimit -Sn 1024 && ulimit -Hn 1024 && exec '" << real << "' \"$@\"\n";
  }
  ASSERT_EQ(chmod(wrapper.c_str(), 0755), 0);
  const char* before = getenv("PGSIDECAR_BIN");
  std::string saved = before != nullptr ? before : "";
  setenv("PGSIDECAR_BIN", wrapper.c_str(), 1);
  std::unique_ptr<Proxy> started;
  try {
    ProxyOptions o;  // max_client_conn 2000 needs more than 1024
    o.workers = 1;
    started = Proxy::start(o);
  } catch (...) {
    before != nullptr ? setenv("PGSIDECAR_BIN", saved.c_str(), 1) : unsetenv("PGSIDECAR_BIN");
    throw;
  }
  before != nullptr ? setenv("PGSIDECAR_BIN", saved.c_str(), 1) : unsetenv("PGSIDECAR_BIN");
  EXPECT_NE(started->log_tail().find("open-file limit (RLIMIT_NOFILE) is 1024"), std::string::npos)
      << started->log_tail();
  Pg c(started->spec());
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c.scalar("SELECT 7"), "7");
  started.reset();
  std::remove(wrapper.c_str());
  rmdir(dir_template);
}

}  // namespace
}  // namespace pgs::it

namespace pgs::it {
namespace {

// The brief's clients themselves: psycopg2 (an 80 MB Query) and psycopg 3 binary parameters (40 MB
// Binds, unnamed and prepared), with the proxy's peak memory well under the message size.
TEST_F(LargeMessagesTest, PythonClientsWithA20MBBlob) {
  PGS_IT_REQUIRE_PROXY();
  Proxy& p = start();
  const long before = hwm_kb();
  RunResult r = run_program({"/usr/bin/python3", std::string(PGS_CLIENTS_DIR) + "/large_blob.py", "--dsn",
                             p.conninfo(), "--mb", "20"},
                            {{"PGSSLMODE", "disable"}}, Millis(120000));
  if (r.exit_code == 77) GTEST_SKIP() << r.describe();
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("ok psycopg3-binary-prepared"), std::string::npos) << r.describe();
  const long grew_mb = (hwm_kb() - before) / 1024;
  RecordProperty("proxy_peak_growth_mb", static_cast<int>(grew_mb));
  EXPECT_LT(grew_mb, 16) << "peak memory grew by " << grew_mb << " MB";
}

}  // namespace
}  // namespace pgs::it
