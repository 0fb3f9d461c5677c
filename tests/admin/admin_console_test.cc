// admin::execute: the reply bytes, decoded with protocol/frame.h and protocol/backend.h.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "conf/config.h"
#include "protocol/backend.h"
#include "protocol/frame.h"
#include "proxy/admin/admin_console.h"
#include "proxy/admin/aggregate.h"
#include "proxy/obs/metrics.h"

namespace pgs::proxy::admin {
namespace {

namespace be = protocol::backend;

struct Reply {
  std::vector<std::vector<std::string>> columns;  // per result set
  std::vector<std::vector<std::vector<std::optional<std::string>>>> rows;
  std::vector<std::string> tags;
  std::vector<std::string> notices;
  std::optional<be::ErrorFields> error;
  std::string error_message, error_hint, error_detail, error_state;
  bool empty_query = false;
};

protocol::Bytes bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

Reply decode(const std::string& wire) {
  Reply r;
  protocol::Bytes buf = bytes(wire);
  while (!buf.empty()) {
    auto fr = protocol::split_frame(buf, 1u << 24);
    auto* f = std::get_if<protocol::Frame>(&fr);
    EXPECT_NE(f, nullptr) << "not a whole frame";
    if (f == nullptr) return r;
    EXPECT_TRUE(be::validate(f->type, f->body).ok()) << f->type;
    switch (f->type) {
      case 'T': {
        auto d = be::RowDescription::decode(f->body);
        r.columns.emplace_back();
        r.rows.emplace_back();
        for (auto& fld : d.value().fields) r.columns.back().emplace_back(fld.name);
        break;
      }
      case 'D': {
        auto d = be::DataRow::decode(f->body);
        EXPECT_EQ(static_cast<size_t>(d.value().column_count), r.columns.back().size());
        be::DataRow::Cursor c(d.value());
        std::optional<protocol::Bytes> v;
        std::vector<std::optional<std::string>> row;
        while (c.next(v)) row.push_back(v ? std::optional<std::string>(std::string(v->begin(), v->end())) : std::nullopt);
        r.rows.back().push_back(std::move(row));
        break;
      }
      case 'C': r.tags.emplace_back(be::CommandComplete::decode(f->body).value().tag); break;
      case 'N': r.notices.emplace_back(be::ErrorFields::decode(f->body).value().message); break;
      case 'I': r.empty_query = true; break;
      case 'E': {
        auto e = be::ErrorFields::decode(f->body).value();
        r.error_state = e.sqlstate;
        r.error_message = e.message;
        r.error_hint = e.hint;
        r.error_detail = e.detail;
        r.error = e;
        break;
      }
      default: ADD_FAILURE() << "unexpected message " << f->type;
    }
    buf = buf.subspan(f->size);
  }
  return r;
}

WorkerStats worker(int index, int xacts, double maxwait) {
  WorkerStats w;
  w.worker = index;
  PoolStats p;
  p.database = "flopods";
  p.user = "flopods";
  p.node = "primary";
  p.pool_mode = "transaction";
  p.size_limit = 5;
  p.cl_active = 1;
  p.cl_waiting = 2;
  p.sv_active = 1;
  p.sv_idle = 3;
  p.sv_total = 5;
  p.maxwait_seconds = maxwait;
  p.xact_count = xacts;
  p.query_count = xacts * 2;
  w.pools.push_back(p);
  ClientRow c;
  c.id = 10 + index;
  c.worker = index;
  c.user = "flopods";
  c.database = "flopods";
  c.state = "active";
  c.addr = "127.0.0.1:5000" + std::to_string(index);
  w.clients.push_back(c);
  ServerRow s;
  s.id = 20 + index;
  s.user = "flopods";
  s.database = "flopods";
  s.state = "active";
  s.role = "primary";
  s.addr = "127.0.0.1:15432";
  s.backend_pid = 4242;
  w.servers.push_back(s);
  w.metrics.bytes_received = 100;
  w.metrics.bytes_sent = 1000;
  w.metrics.query_duration[0].observe(0.002);
  return w;
}

struct Fixture : ::testing::Test {
  AdminHooks hooks;
  std::vector<bool> pauses;
  int shutdowns = 0;
  bool reload_ok = true;
  void SetUp() override {
    hooks.stats = [] { return std::vector<WorkerStats>{worker(0, 3, 0.5), worker(1, 4, 1.25)}; };
    auto config = std::make_shared<conf::Config>();
    config->replicas.push_back({"replica1", "127.0.0.1", 15433, 1});
    hooks.snapshot = [config] { return make_snapshot(config); };
    hooks.reload = [this](std::string& m) {
      m = reload_ok ? "configuration reloaded" : "pgsidecar.toml:3: pool_size: must be >= 1\n";
      return reload_ok;
    };
    hooks.set_paused = [this](bool p) { pauses.push_back(p); };
    hooks.shutdown = [this] { ++shutdowns; };
    hooks.version = "pgsidecar 0.1.0";
  }
};

TEST_F(Fixture, ShowPoolsAggregatesWorkersWithPgBouncerColumns) {
  Reply r = decode(execute("show pools;", hooks));
  ASSERT_FALSE(r.error) << r.error_message;
  ASSERT_EQ(r.columns.size(), 1u);
  std::vector<std::string> want = {"database", "user", "cl_active", "cl_waiting", "cl_idle", "sv_active", "sv_idle",
                                   "sv_used", "sv_login", "maxwait", "maxwait_us", "pool_mode", "pool_size", "node",
                                   "sv_being_canceled"};
  EXPECT_EQ(r.columns[0], want);
  ASSERT_EQ(r.rows[0].size(), 1u);
  auto& row = r.rows[0][0];
  EXPECT_EQ(*row[0], "flopods");
  EXPECT_EQ(*row[2], "2");   // cl_active summed
  EXPECT_EQ(*row[3], "4");   // cl_waiting summed
  EXPECT_EQ(*row[6], "6");   // sv_idle
  EXPECT_EQ(*row[7], "2");   // sv_used = total - active - idle - login
  EXPECT_EQ(*row[9], "1");   // maxwait: max, whole seconds
  EXPECT_EQ(*row[10], "250000");
  EXPECT_EQ(*row[11], "transaction");
  EXPECT_EQ(*row[12], "10");
  EXPECT_EQ(*row[13], "primary");
  EXPECT_EQ(r.tags, std::vector<std::string>{"SHOW"});
}

// A server held until the cancels sent to it are resolved is neither idle nor "used".
TEST_F(Fixture, ShowPoolsCountsServersBeingCanceledApart) {
  hooks.stats = [] {
    WorkerStats a = worker(0, 3, 0.5);
    a.pools[0].sv_idle = 2;
    a.pools[0].sv_being_canceled = 1;
    return std::vector<WorkerStats>{a, worker(1, 4, 1.25)};
  };
  Reply r = decode(execute("SHOW POOLS", hooks));
  ASSERT_FALSE(r.error) << r.error_message;
  ASSERT_EQ(r.rows[0].size(), 1u);
  auto& row = r.rows[0][0];
  EXPECT_EQ(*row[6], "5");   // sv_idle: 2 + 3
  EXPECT_EQ(*row[7], "2");   // sv_used: 10 total - 2 active - 5 idle - 0 login - 1 being canceled
  EXPECT_EQ(*row[14], "1");  // sv_being_canceled
}

// A replica's pool of the same (database, user) is its own row: its saturation is not hidden.
TEST_F(Fixture, ShowPoolsKeepsReplicaPoolsApart) {
  hooks.stats = [] {
    WorkerStats a = worker(0, 3, 0.5);
    PoolStats replica = a.pools[0];
    replica.node = "replica1";
    replica.cl_waiting = 7;
    a.pools.push_back(replica);
    return std::vector<WorkerStats>{a, worker(1, 4, 1.25)};
  };
  Reply r = decode(execute("SHOW POOLS", hooks));
  ASSERT_FALSE(r.error) << r.error_message;
  ASSERT_EQ(r.rows[0].size(), 2u);
  EXPECT_EQ(*r.rows[0][0][13], "primary");
  EXPECT_EQ(*r.rows[0][0][3], "4") << "the primary pools of both workers";
  EXPECT_EQ(*r.rows[0][1][13], "replica1");
  EXPECT_EQ(*r.rows[0][1][3], "7");
}

TEST_F(Fixture, ShowStatsHasPerDatabaseAndTotalRows) {
  Reply r = decode(execute("SHOW STATS", hooks));
  ASSERT_FALSE(r.error);
  EXPECT_EQ(r.columns[0][0], "database");
  EXPECT_EQ(r.columns[0][1], "total_xact_count");
  EXPECT_EQ(r.columns[0][3], "total_received");
  ASSERT_EQ(r.rows[0].size(), 2u);
  EXPECT_EQ(*r.rows[0][0][1], "7");
  EXPECT_EQ(*r.rows[0][0][2], "14");
  EXPECT_FALSE(r.rows[0][0][3].has_value());  // bytes only process-wide
  EXPECT_EQ(*r.rows[0][1][0], "*");
  EXPECT_EQ(*r.rows[0][1][3], "200");
  EXPECT_EQ(*r.rows[0][1][4], "2000");
}

TEST_F(Fixture, ShowClientsAndServersListEveryWorkersRows) {
  Reply r = decode(execute("SHOW CLIENTS; SHOW SERVERS", hooks));
  ASSERT_FALSE(r.error);
  ASSERT_EQ(r.columns.size(), 2u);
  EXPECT_EQ(r.columns[0][0], "type");
  EXPECT_EQ(r.columns[0][4], "addr");
  EXPECT_EQ(r.columns[0][5], "port");
  ASSERT_EQ(r.rows[0].size(), 2u);
  EXPECT_EQ(*r.rows[0][0][0], "C");
  EXPECT_EQ(*r.rows[0][0][4], "127.0.0.1");
  EXPECT_EQ(*r.rows[0][0][5], "50000");
  EXPECT_EQ(*r.rows[0][0][10], "0xa");
  ASSERT_EQ(r.rows[1].size(), 2u);
  EXPECT_EQ(*r.rows[1][0][0], "S");
  EXPECT_EQ(*r.rows[1][0][5], "15432");
  EXPECT_EQ(*r.rows[1][0][10], "4242");
  EXPECT_EQ(r.tags.size(), 2u);
}

TEST_F(Fixture, EveryShowCommandAnswersWithColumns) {
  for (const char* what : {"POOLS", "STATS", "CLIENTS", "SERVERS", "CONFIG", "VERSION", "HELP", "REPLICAS", "CACHE",
                           "DIGESTS"}) {
    Reply r = decode(execute(std::string("  sHoW   ") + what + " ;", hooks));
    EXPECT_FALSE(r.error) << what << ": " << r.error_message;
    ASSERT_EQ(r.columns.size(), 1u) << what;
    EXPECT_FALSE(r.columns[0].empty()) << what;
    EXPECT_EQ(r.tags, std::vector<std::string>{"SHOW"}) << what;
  }
}

TEST_F(Fixture, CacheOffAndReplicas) {
  Reply cache = decode(execute("SHOW CACHE", hooks));
  ASSERT_EQ(cache.notices.size(), 1u);
  EXPECT_NE(cache.notices[0].find("cache is off"), std::string::npos);
  EXPECT_TRUE(cache.rows[0].empty());
  Reply digests = decode(execute("SHOW DIGESTS", hooks));
  EXPECT_EQ(digests.columns[0][0], "fingerprint");
  Reply replicas = decode(execute("SHOW REPLICAS", hooks));
  ASSERT_EQ(replicas.rows[0].size(), 1u);
  EXPECT_EQ(*replicas.rows[0][0][0], "replica1");
  EXPECT_EQ(*replicas.rows[0][0][4], "unknown");
}

TEST_F(Fixture, ShowCacheRowsPerClassThenTotals) {
  WorkerStats w;
  w.metrics.cache.workers_enabled = 2;
  w.metrics.cache.workers_ready = 1;
  w.metrics.cache.classes["workspace"] = CacheClassStats{.hits = 3, .misses = 1, .stores = 1, .not_stored = 0, .invalidations = 2};
  w.metrics.cache.bypass[static_cast<size_t>(cache::BypassReason::volatile_function)] = 5;
  w.metrics.cache.redis_errors = 7;
  w.metrics.cache.redis_commands = 41;
  hooks.stats = [w] { return std::vector<WorkerStats>{w}; };
  Reply r = decode(execute("SHOW CACHE", hooks));
  ASSERT_FALSE(r.error) << r.error_message;
  ASSERT_EQ(r.notices.size(), 1u) << "one worker is not in sync";
  const auto& rows = r.rows[0];
  ASSERT_GE(rows.size(), 3u);
  EXPECT_EQ(*rows[0][0], "workspace");
  EXPECT_EQ(*rows[0][1], "3");
  EXPECT_EQ(*rows[0][3], "0.750");
  EXPECT_EQ(*rows[0][6], "2");
  bool bypass = false, redis = false, commands = false;
  for (const auto& row : rows) {
    if (*row[0] == "(bypass: volatile_function)") bypass = *row[8] == "5";
    if (*row[0] == "(redis errors)") redis = *row[8] == "7";
    if (*row[0] == "(redis commands)") commands = *row[8] == "41";
  }
  EXPECT_TRUE(bypass);
  EXPECT_TRUE(redis);
  EXPECT_TRUE(commands);
}

TEST_F(Fixture, ShowConfigAndVersion) {
  Reply r = decode(execute("SHOW CONFIG;SHOW VERSION", hooks));
  ASSERT_FALSE(r.error);
  EXPECT_EQ(r.columns[0], (std::vector<std::string>{"key", "value"}));
  EXPECT_GT(r.rows[0].size(), 5u);
  EXPECT_EQ(*r.rows[1][0][0], "pgsidecar 0.1.0");
}

TEST_F(Fixture, ActionsCallHooks) {
  Reply r = decode(execute("PAUSE; resume ;;reload;shutdown", hooks));
  ASSERT_FALSE(r.error) << r.error_message;
  EXPECT_EQ(r.tags, (std::vector<std::string>{"PAUSE", "RESUME", "RELOAD", "SHUTDOWN"}));
  EXPECT_EQ(pauses, (std::vector<bool>{true, false}));
  EXPECT_EQ(shutdowns, 1);
}

TEST_F(Fixture, FailedReloadIsAnErrorWithTheConfigErrors) {
  reload_ok = false;
  Reply r = decode(execute("RELOAD; PAUSE", hooks));
  EXPECT_EQ(r.error_state, "F0000");
  EXPECT_NE(r.error_detail.find("pool_size"), std::string::npos);
  EXPECT_TRUE(r.tags.empty());
  EXPECT_TRUE(pauses.empty());  // the error ended the batch
}

TEST_F(Fixture, UnknownCommandIs42601WithHint) {
  Reply r = decode(execute("SHOW POOLS; DROP TABLE x; PAUSE", hooks));
  EXPECT_EQ(r.tags, std::vector<std::string>{"SHOW"});
  EXPECT_EQ(r.error_state, "42601");
  EXPECT_NE(r.error_message.find("DROP TABLE x"), std::string::npos);
  EXPECT_NE(r.error_hint.find("SHOW POOLS"), std::string::npos);
  EXPECT_NE(r.error_hint.find("SHUTDOWN"), std::string::npos);
  EXPECT_TRUE(pauses.empty());
  EXPECT_EQ(decode(execute("SHOW NOTHING", hooks)).error_state, "42601");
  EXPECT_EQ(decode(execute("PAUSE NOW", hooks)).error_state, "42601");
}

TEST_F(Fixture, EmptyQueryAndMissingHooks) {
  EXPECT_TRUE(decode(execute(" ; ;", hooks)).empty_query);
  AdminHooks none;
  Reply r = decode(execute("SHOW POOLS; SHOW CONFIG; RELOAD", none));
  EXPECT_EQ(r.tags.size(), 2u);
  EXPECT_EQ(r.error_state, "F0000");
}

TEST(SplitAddr, Forms) {
  EXPECT_EQ(split_addr("1.2.3.4:5"), (std::pair<std::string, std::string>{"1.2.3.4", "5"}));
  EXPECT_EQ(split_addr("[::1]:6432"), (std::pair<std::string, std::string>{"::1", "6432"}));
  EXPECT_EQ(split_addr("unix"), (std::pair<std::string, std::string>{"unix", ""}));
  EXPECT_EQ(split_addr("::1"), (std::pair<std::string, std::string>{"::1", ""}));
}

}  // namespace
}  // namespace pgs::proxy::admin

namespace pgs::proxy::admin {
namespace {

monitor::HealthSnapshot health_snapshot() {
  monitor::HealthSnapshot h;
  h.generation = 3;
  h.primary_reachable = true;
  h.primary.node = {"primary", "127.0.0.1", 15432, 1};
  h.primary.is_primary = true;
  h.primary.healthy = true;
  h.primary.reason = monitor::Reason::ok;
  monitor::NodeHealth r;
  r.node = {"replica1", "127.0.0.1", 15433, 2};
  r.healthy = false;
  r.reason = monitor::Reason::lagging_bytes;
  r.lag_bytes = 123456;
  r.lag = std::chrono::milliseconds(1500);
  r.checked_at = std::chrono::steady_clock::now();
  h.replicas.push_back(r);
  return h;
}

TEST_F(Fixture, ShowReplicasFromTheHealthMonitor) {
  auto h = std::make_shared<const monitor::HealthSnapshot>(health_snapshot());
  hooks.health = [h] { return h; };
  Reply r = decode(execute("SHOW REPLICAS", hooks));
  ASSERT_FALSE(r.error);
  EXPECT_TRUE(r.notices.empty());
  ASSERT_EQ(r.rows[0].size(), 2u);
  EXPECT_EQ(*r.rows[0][0][0], "primary");
  EXPECT_EQ(*r.rows[0][0][4], "ok");
  EXPECT_FALSE(r.rows[0][0][6].has_value());
  EXPECT_EQ(*r.rows[0][1][0], "replica1");
  EXPECT_EQ(*r.rows[0][1][3], "2");
  EXPECT_EQ(*r.rows[0][1][4], "lagging_bytes");
  EXPECT_EQ(*r.rows[0][1][5], "f");
  EXPECT_EQ(*r.rows[0][1][6], "123456");
  EXPECT_EQ(r.rows[0][1][7]->substr(0, 3), "1.5");
}

// Every bucket bound a proxy Histogram is exported under is one of its own bounds: the exported
// cumulative counts are exact (a cache hit of 80 µs is counted at le="0.0001").
TEST(HistogramBounds, CoverEveryExportedBound) {
  for (obs::MetricId m : {obs::MetricId::query_duration_seconds, obs::MetricId::transaction_duration_seconds,
                          obs::MetricId::pool_wait_seconds}) {
    for (double bound : obs::metric_def(m).buckets.span()) {
      bool found = false;
      for (double own : Histogram::kBounds) found = found || own == bound;
      EXPECT_TRUE(found) << obs::metric_def(m).name << " le=" << bound;
    }
  }
  Histogram h;
  h.observe(0.00008);
  EXPECT_EQ(h.buckets[1], 1u) << "80 µs: the 100 µs bucket";
}

TEST(LoginFailures, ReasonFromTheSqlstate) {
  EXPECT_EQ(login_failure_of("28P01", "password authentication failed"), LoginFailure::password);
  EXPECT_EQ(login_failure_of("28000", "may not use the admin console"), LoginFailure::not_allowed);
  EXPECT_EQ(login_failure_of("3D000", "database does not exist"), LoginFailure::unknown_database);
  EXPECT_EQ(login_failure_of("53300", "too many clients"), LoginFailure::too_many_clients);
  EXPECT_EQ(login_failure_of("08P01", "pgsidecar: client_login_timeout"), LoginFailure::timeout);
  EXPECT_EQ(login_failure_of("08P01", "invalid startup packet"), LoginFailure::protocol);
  EXPECT_EQ(login_failure_of("57P01", "terminating"), LoginFailure::shutdown);
  EXPECT_EQ(login_failure_of("XX000", "?"), LoginFailure::other);
  EXPECT_EQ(login_failure_name(LoginFailure::unknown_database), "unknown_database");
}

}  // namespace
}  // namespace pgs::proxy::admin
