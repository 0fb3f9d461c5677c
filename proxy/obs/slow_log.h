// Slow-query log: one JSON object per line, written by a background thread.
//
// Line fields: time (ISO-8601 UTC, ms), duration_ms, database, user, application_name, client_addr,
// target, rows, sqlstate (null on success), fingerprint (16 hex digits), query (normalized text),
// and parameters (array of strings / null) only when log_parameters is on.
//
// Contract: submit() never waits for I/O. It takes a mutex for a queue push and returns false when
// the bounded queue is full (the record is dropped and counted). reopen() asks the writer to reopen
// its file before the next write (for log rotation on SIGHUP); it does not wait either.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace pgs::obs {

struct SlowQueryRecord {
  std::chrono::system_clock::time_point time;  // when the statement finished
  std::chrono::microseconds duration{0};
  std::string database;
  std::string user;
  std::string application_name;
  std::string client_addr;  // "ip:port" or "unix"
  std::string target;       // primary | replica name | cache
  uint64_t rows = 0;
  std::string sqlstate;     // empty when the statement succeeded
  uint64_t fingerprint = 0;
  std::string query;        // normalized statement text
  std::vector<std::optional<std::string>> parameters;  // text form; nullopt = SQL NULL
};

struct SlowLogOptions {
  std::string path;               // file to append to; "" or "-" = stderr
  size_t queue_capacity = 4096;   // records waiting for the writer; beyond it submit() drops
  bool log_parameters = false;    // include bound parameter values (may contain personal data)
  size_t max_query_bytes = 8192;  // longer statement text is cut (at a UTF-8 boundary)
  size_t max_parameter_bytes = 1024;  // each parameter value is cut to this
};

// Where the writer thread puts lines. Called only from the writer thread.
class LineSink {
 public:
  virtual ~LineSink() = default;
  // Writes complete lines (each ends in '\n'). False on an I/O error.
  virtual bool write(std::string_view lines) = 0;
  // Closes and reopens the destination. False if it could not be opened.
  virtual bool reopen() = 0;
};

// Appends to `path` ("" or "-" = stderr, where reopen() is a no-op).
std::unique_ptr<LineSink> make_file_sink(std::string path);

struct SlowLogStats {
  uint64_t submitted = 0;   // accepted into the queue
  uint64_t written = 0;     // lines handed to the sink successfully
  uint64_t dropped = 0;     // refused because the queue was full
  uint64_t write_errors = 0;  // lines lost to sink errors
  uint64_t reopens = 0;
};

class SlowLog {
 public:
  explicit SlowLog(SlowLogOptions options);                     // file / stderr sink
  SlowLog(SlowLogOptions options, std::unique_ptr<LineSink> sink);
  ~SlowLog();  // writes what is queued, then joins the writer
  SlowLog(const SlowLog&) = delete;
  SlowLog& operator=(const SlowLog&) = delete;

  // Thread-safe. False when the queue was full and the record was dropped.
  bool submit(SlowQueryRecord record);
  // Thread-safe. The writer reopens the sink before its next write (and at once if idle).
  void reopen();
  // Waits until every record submitted before the call has been written (or failed), at most
  // `timeout`. True if that happened in time.
  bool flush(std::chrono::milliseconds timeout);
  SlowLogStats stats() const;

  // The JSON line (with its '\n') for `r`; pure.
  static std::string format_line(const SlowQueryRecord& r, const SlowLogOptions& options);

 private:
  void run();

  const SlowLogOptions options_;
  std::unique_ptr<LineSink> sink_;
  mutable std::mutex mu_;
  std::condition_variable wake_;      // writer waits for work
  std::condition_variable progress_;  // flush() waits for the writer
  std::deque<SlowQueryRecord> queue_;
  bool reopen_requested_ = false;
  bool stopping_ = false;
  uint64_t done_ = 0;  // records written or failed (by submission order)
  SlowLogStats stats_;
  std::thread writer_;
};

}  // namespace pgs::obs
