#include "app/db_pool.h"

namespace pgs::app {

Lease::~Lease() {
  if (!conn_) return;
  if (conn_->in_transaction() && !conn_->broken()) (void)conn_->exec("ROLLBACK");
  pool_->release(std::move(conn_));
}

DbPool::DbPool(DbPoolOptions options) : options_(std::move(options)) {}

Outcome<Lease, DbError> DbPool::acquire() {
  std::unique_lock lock(mutex_);
  const auto deadline = std::chrono::steady_clock::now() + options_.wait;
  while (idle_.empty() && open_ >= options_.size) {
    if (freed_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= options_.size) {
      return DbError{DbError::Kind::unavailable, "", "timed out waiting for a database connection"};
    }
  }
  if (!idle_.empty()) {
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    return Lease(this, std::move(conn));
  }
  ++open_;  // reserve the slot, then connect without holding the lock
  lock.unlock();
  auto conn = PgConn::connect(options_.conninfo);
  if (!conn) {
    lock.lock();
    --open_;
    freed_.notify_one();
    return conn.error();
  }
  (*conn)->set_prepared(options_.prepared);
  return Lease(this, std::move(*conn));
}

void DbPool::release(std::unique_ptr<PgConn> conn) {
  const bool keep = !conn->broken() && !conn->in_transaction();
  if (!keep) conn.reset();  // PQfinish outside the lock
  std::lock_guard lock(mutex_);
  if (keep) {
    idle_.push_back(std::move(conn));
  } else {
    --open_;
  }
  freed_.notify_one();
}

Outcome<Rows, DbError> DbPool::read(std::string_view sql, const std::vector<Param>& params) {
  for (int attempt = 0;; ++attempt) {
    auto lease = acquire();
    if (!lease) return lease.error();
    auto rows = (*lease)->exec(sql, params);
    if (rows || rows.error().kind != DbError::Kind::unavailable || attempt > 0 || !(*lease)->broken()) {
      return rows;
    }
  }
}

}  // namespace pgs::app
