// A small, bounded pool of PgConn shared by the handler threads. Connections are opened lazily (so
// the app starts while the database is down) and dropped when broken; acquire() waits at most
// `wait` for a free slot and then fails with DbError::Kind::unavailable (HTTP 503).
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "app/pg.h"

namespace pgs::app {

class DbPool;

// Exclusive use of one connection; returns it to the pool on destruction. A connection left inside
// a transaction (a handler bailed out early) is rolled back before it is reused.
class Lease {
 public:
  Lease(DbPool* pool, std::unique_ptr<PgConn> conn) : pool_(pool), conn_(std::move(conn)) {}
  Lease(Lease&&) noexcept = default;
  Lease& operator=(Lease&&) = delete;
  ~Lease();
  PgConn& operator*() { return *conn_; }
  PgConn* operator->() { return conn_.get(); }

 private:
  DbPool* pool_;
  std::unique_ptr<PgConn> conn_;
};

struct DbPoolOptions {
  std::string conninfo;
  int size = 8;                                   // connections at most
  std::chrono::milliseconds wait{5000};           // longest wait for a free connection
  bool prepared = false;                          // PQprepare each statement once per connection
};

class DbPool {
 public:
  explicit DbPool(DbPoolOptions options);
  Outcome<Lease, DbError> acquire();
  // Runs one read-only statement; if the connection turns out to be dead (e.g. the proxy restarted
  // since it was last used), retries once on a fresh one. Only for statements safe to repeat.
  Outcome<Rows, DbError> read(std::string_view sql, const std::vector<Param>& params = {});
  const DbPoolOptions& options() const { return options_; }

 private:
  friend class Lease;
  void release(std::unique_ptr<PgConn> conn);

  DbPoolOptions options_;
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<PgConn>> idle_;
  int open_ = 0;  // connections in use or idle (guarded by mutex_)
};

}  // namespace pgs::app
