#include "proxy/obs/slow_log.h"

#include <pthread.h>

#include <cstdio>
#include <utility>

#include <boost/json.hpp>

#include "proxy/obs/json_text.h"

namespace pgs::obs {

namespace {

class FileSink final : public LineSink {
 public:
  explicit FileSink(std::string path) : path_(std::move(path)) {
    if (!use_stderr()) open();
  }
  ~FileSink() override {
    if (file_ != nullptr) std::fclose(file_);
  }

  bool write(std::string_view lines) override {
    std::FILE* f = use_stderr() ? stderr : file_;
    if (f == nullptr && !open()) return false;
    f = use_stderr() ? stderr : file_;
    if (std::fwrite(lines.data(), 1, lines.size(), f) != lines.size()) return false;
    return std::fflush(f) == 0;
  }

  bool reopen() override {
    if (use_stderr()) return true;
    if (file_ != nullptr) std::fclose(file_);
    file_ = nullptr;
    return open();
  }

 private:
  bool use_stderr() const { return path_.empty() || path_ == "-"; }
  bool open() {
    file_ = std::fopen(path_.c_str(), "a");
    return file_ != nullptr;
  }

  std::string path_;
  std::FILE* file_ = nullptr;
};

boost::json::string json_str(std::string_view s, size_t max_bytes) {
  return boost::json::string(sanitize_utf8(truncate_utf8(s, max_bytes)));
}

}  // namespace

std::unique_ptr<LineSink> make_file_sink(std::string path) {
  return std::make_unique<FileSink>(std::move(path));
}

std::string SlowLog::format_line(const SlowQueryRecord& r, const SlowLogOptions& o) {
  constexpr size_t kField = 1024;  // identity fields are short; bound them anyway
  boost::json::object obj;
  obj["time"] = iso8601_utc(r.time);
  obj["duration_ms"] = static_cast<double>(r.duration.count()) / 1000.0;
  obj["database"] = json_str(r.database, kField);
  obj["user"] = json_str(r.user, kField);
  obj["application_name"] = json_str(r.application_name, kField);
  obj["client_addr"] = json_str(r.client_addr, kField);
  obj["target"] = json_str(r.target, kField);
  obj["rows"] = r.rows;
  if (r.sqlstate.empty()) {
    obj["sqlstate"] = nullptr;
  } else {
    obj["sqlstate"] = json_str(r.sqlstate, 5);
  }
  obj["fingerprint"] = fingerprint_hex(r.fingerprint);
  obj["query"] = json_str(r.query, o.max_query_bytes);
  if (o.log_parameters) {
    boost::json::array params;
    params.reserve(r.parameters.size());
    for (const auto& p : r.parameters) {
      if (p) {
        params.emplace_back(json_str(*p, o.max_parameter_bytes));
      } else {
        params.emplace_back(nullptr);
      }
    }
    obj["parameters"] = std::move(params);
  }
  std::string line = boost::json::serialize(obj);
  line += '\n';
  return line;
}

SlowLog::SlowLog(SlowLogOptions options) : SlowLog(options, make_file_sink(options.path)) {}

SlowLog::SlowLog(SlowLogOptions options, std::unique_ptr<LineSink> sink)
    : options_(std::move(options)), sink_(std::move(sink)) {
  writer_ = std::thread([this] { run(); });
}

SlowLog::~SlowLog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  writer_.join();
}

bool SlowLog::submit(SlowQueryRecord record) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= options_.queue_capacity) {
      ++stats_.dropped;
      return false;
    }
    queue_.push_back(std::move(record));
    ++stats_.submitted;
  }
  wake_.notify_one();
  return true;
}

void SlowLog::reopen() {
  {
    std::lock_guard lock(mu_);
    reopen_requested_ = true;
  }
  wake_.notify_one();
}

bool SlowLog::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  const uint64_t target = stats_.submitted;
  return progress_.wait_for(lock, timeout, [&] { return done_ >= target; });
}

SlowLogStats SlowLog::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void SlowLog::run() {
  pthread_setname_np(pthread_self(), "pgs-slow-log");  // names in top -H, ps -L, perf: 15 bytes at most
  std::deque<SlowQueryRecord> batch;
  std::string text;
  for (;;) {
    bool reopen_now = false;
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] { return stopping_ || reopen_requested_ || !queue_.empty(); });
      if (stopping_ && queue_.empty() && !reopen_requested_) return;
      batch.swap(queue_);
      reopen_now = std::exchange(reopen_requested_, false);
    }
    // I/O happens without the mutex, so submit() never waits for the disk. Lines are written in
    // chunks of about kChunk bytes to bound the writer's memory.
    constexpr size_t kChunk = 64 * 1024;
    const bool reopened = reopen_now && sink_->reopen();
    uint64_t written = 0, failed = 0;
    size_t pending = 0;
    text.clear();
    for (size_t i = 0; i < batch.size(); ++i) {
      text += format_line(batch[i], options_);
      ++pending;
      if (text.size() >= kChunk || i + 1 == batch.size()) {
        (sink_->write(text) ? written : failed) += pending;
        text.clear();
        pending = 0;
      }
    }
    {
      std::lock_guard lock(mu_);
      stats_.written += written;
      stats_.write_errors += failed;
      if (reopened) ++stats_.reopens;
      done_ += batch.size();
    }
    progress_.notify_all();
    batch.clear();
  }
}

}  // namespace pgs::obs
