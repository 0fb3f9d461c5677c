// Slow-query log: JSON lines, reopen after rotation, the bounded queue and its drop count.
#include "proxy/obs/slow_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "proxy/obs/json_text.h"

namespace pgs::obs {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

SlowQueryRecord sample(int i = 0) {
  SlowQueryRecord r;
  r.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1790000000123));
  r.duration = std::chrono::microseconds(1234567 + i);
  r.database = "flopods";
  r.user = "flopods";
  r.application_name = "psql \"quoted\"\n";
  r.client_addr = "127.0.0.1:50000";
  r.target = "replica1";
  r.rows = 42;
  r.sqlstate = i % 2 ? "57014" : "";
  r.fingerprint = 0x0123456789abcdefULL;
  r.query = "SELECT * FROM pages WHERE id = $1 AND title = $2";
  r.parameters = {std::string("7"), std::nullopt, std::string("bad \xff utf8")};
  return r;
}

std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/pgs_slowlogXXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

TEST(SlowLogFormat, LineIsOneJsonObjectWithEveryField) {
  SlowLogOptions o;
  const std::string line = SlowLog::format_line(sample(1), o);
  ASSERT_EQ(line.back(), '\n');
  ASSERT_EQ(line.find('\n'), line.size() - 1) << "exactly one line";
  const boost::json::object v = boost::json::parse(line).as_object();
  EXPECT_EQ(v.at("time").as_string(), "2026-09-21T14:13:20.123Z");
  EXPECT_DOUBLE_EQ(v.at("duration_ms").as_double(), 1234.568);
  EXPECT_EQ(v.at("database").as_string(), "flopods");
  EXPECT_EQ(v.at("user").as_string(), "flopods");
  EXPECT_EQ(v.at("application_name").as_string(), "psql \"quoted\"\n");
  EXPECT_EQ(v.at("client_addr").as_string(), "127.0.0.1:50000");
  EXPECT_EQ(v.at("target").as_string(), "replica1");
  EXPECT_EQ(v.at("rows").to_number<uint64_t>(), 42u);
  EXPECT_EQ(v.at("sqlstate").as_string(), "57014");
  EXPECT_EQ(v.at("fingerprint").as_string(), "0123456789abcdef");
  EXPECT_EQ(v.at("query").as_string(), "SELECT * FROM pages WHERE id = $1 AND title = $2");
  EXPECT_FALSE(v.contains("parameters")) << "parameters only with log_parameters";
  const auto ok = boost::json::parse(SlowLog::format_line(sample(0), o)).as_object();
  EXPECT_TRUE(ok.at("sqlstate").is_null());
}

TEST(SlowLogFormat, ParametersWhenEnabledWithNullsAndInvalidUtf8Replaced) {
  SlowLogOptions o;
  o.log_parameters = true;
  const auto v = boost::json::parse(SlowLog::format_line(sample(), o)).as_object();
  const auto& p = v.at("parameters").as_array();
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].as_string(), "7");
  EXPECT_TRUE(p[1].is_null());
  EXPECT_EQ(p[2].as_string(), "bad \xEF\xBF\xBD utf8");
}

TEST(SlowLogFormat, LongQueryIsCutAtACharacterBoundary) {
  SlowLogOptions o;
  o.max_query_bytes = 11;
  SlowQueryRecord r = sample();
  r.query = "SELECT 'ééééééé'";  // é is two bytes; byte 11 is inside the second
  const auto v = boost::json::parse(SlowLog::format_line(r, o)).as_object();
  EXPECT_EQ(v.at("query").as_string(), "SELECT 'é");
}

TEST(JsonText, Utf8Sanitizer) {
  EXPECT_EQ(sanitize_utf8("plain"), "plain");
  EXPECT_EQ(sanitize_utf8("\xC3\xA9"), "\xC3\xA9");
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(sanitize_utf8("a\xE2\x82"), "a\xEF\xBF\xBD\xEF\xBF\xBD");  // truncated
  EXPECT_EQ(sanitize_utf8("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");
}

TEST(SlowLogFile, WritesLinesAndReopensAfterRotation) {
  TempDir dir;
  const fs::path log = dir.path / "slow.log";
  SlowLogOptions o;
  o.path = log.string();
  SlowLog slow(o);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(slow.submit(sample(i)));
  ASSERT_TRUE(slow.flush(5s));
  fs::rename(log, dir.path / "slow.log.1");  // logrotate's move, then SIGHUP -> reopen()
  ASSERT_TRUE(slow.submit(sample(3)));
  ASSERT_TRUE(slow.flush(5s));
  slow.reopen();
  ASSERT_TRUE(slow.submit(sample(4)));
  ASSERT_TRUE(slow.flush(5s));

  const auto rotated = read_lines(dir.path / "slow.log.1");
  const auto fresh = read_lines(log);
  ASSERT_EQ(rotated.size(), 4u) << "lines before reopen go to the old (moved) file";
  ASSERT_EQ(fresh.size(), 1u);
  for (const auto& l : rotated) EXPECT_NO_THROW(boost::json::parse(l)) << l;
  EXPECT_DOUBLE_EQ(boost::json::parse(fresh[0]).at("duration_ms").as_double(), 1234.571);
  const SlowLogStats st = slow.stats();
  EXPECT_EQ(st.written, 5u);
  EXPECT_EQ(st.reopens, 1u);
  EXPECT_EQ(st.dropped, 0u);
}

// A sink that blocks every write until released, so the queue can be filled deterministically.
class GatedSink final : public LineSink {
 public:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool open = false;
    bool writer_blocked = false;
    std::string text;
  };
  explicit GatedSink(std::shared_ptr<State> s) : s_(std::move(s)) {}
  bool write(std::string_view lines) override {
    std::unique_lock lock(s_->mu);
    s_->writer_blocked = true;
    s_->cv.notify_all();
    s_->cv.wait(lock, [&] { return s_->open; });
    s_->text += lines;
    return true;
  }
  bool reopen() override { return true; }

 private:
  std::shared_ptr<State> s_;
};

TEST(SlowLogQueue, FullQueueDropsAndCountsWithoutBlocking) {
  auto state = std::make_shared<GatedSink::State>();
  SlowLogOptions o;
  o.queue_capacity = 4;
  SlowLog slow(o, std::make_unique<GatedSink>(state));
  ASSERT_TRUE(slow.submit(sample(0)));  // taken by the writer, which then blocks in write()
  {
    std::unique_lock lock(state->mu);
    ASSERT_TRUE(state->cv.wait_for(lock, 5s, [&] { return state->writer_blocked; }));
  }
  for (int i = 1; i <= 4; ++i) EXPECT_TRUE(slow.submit(sample(i))) << i;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 5; i < 15; ++i) EXPECT_FALSE(slow.submit(sample(i))) << i;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s) << "submit must not wait for the writer";
  EXPECT_EQ(slow.stats().dropped, 10u);
  EXPECT_FALSE(slow.flush(50ms)) << "the writer is still blocked";
  {
    std::lock_guard lock(state->mu);
    state->open = true;
  }
  state->cv.notify_all();
  ASSERT_TRUE(slow.flush(5s));
  const SlowLogStats st = slow.stats();
  EXPECT_EQ(st.submitted, 5u);
  EXPECT_EQ(st.written, 5u);
  std::lock_guard lock(state->mu);
  std::istringstream in(state->text);
  int lines = 0;
  for (std::string l; std::getline(in, l); ++lines) EXPECT_NO_THROW(boost::json::parse(l));
  EXPECT_EQ(lines, 5);
}

TEST(SlowLogQueue, DestructorWritesWhatIsQueued) {
  TempDir dir;
  const fs::path log = dir.path / "slow.log";
  {
    SlowLogOptions o;
    o.path = log.string();
    SlowLog slow(o);
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(slow.submit(sample(i)));
  }
  EXPECT_EQ(read_lines(log).size(), 100u);
}

TEST(SlowLogFile, UnwritablePathCountsErrors) {
  SlowLogOptions o;
  o.path = "/nonexistent-dir/slow.log";
  SlowLog slow(o);
  ASSERT_TRUE(slow.submit(sample()));
  ASSERT_TRUE(slow.flush(5s));
  EXPECT_EQ(slow.stats().write_errors, 1u);
  EXPECT_EQ(slow.stats().written, 0u);
}

}  // namespace
}  // namespace pgs::obs
