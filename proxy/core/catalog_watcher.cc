#include "proxy/core/catalog_watcher.h"

#include <libpq-fe.h>
#include <pthread.h>

#include "proxy/core/log.h"

namespace pgs::proxy {

CatalogWatcher::CatalogWatcher(std::vector<CatalogTarget> targets, std::chrono::milliseconds period)
    : targets_(std::move(targets)), period_(period), last_rows_(targets_.size()) {}

CatalogWatcher::~CatalogWatcher() { stop(); }

void CatalogWatcher::start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void CatalogWatcher::stop() noexcept {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CatalogWatcher::refresh_soon() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    poke_ = true;
  }
  wake_.notify_all();
}

std::shared_ptr<const cache::WriteDependencies> CatalogWatcher::current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return current_;
}

std::shared_ptr<const SessionCodeCatalog> CatalogWatcher::session_code() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return session_code_;
}

bool CatalogWatcher::read_target(const CatalogTarget& t, std::vector<cache::CatalogRow>& rows,
                                 std::string& error) const {
  const char* keys[] = {"host", "port", "dbname", "user", "password", "connect_timeout", "sslmode",
                        "sslrootcert", "application_name", "options", nullptr};
  std::string port = std::to_string(t.port);
  const char* values[] = {t.host.c_str(), port.c_str(), t.dbname.c_str(), t.user.c_str(), t.password.c_str(),
                          "3", t.sslmode.c_str(), t.sslrootcert.c_str(), "pgsidecar-catalog",
                          "-c statement_timeout=3000", nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, 0);
  if (PQstatus(conn) != CONNECTION_OK) {
    error = PQerrorMessage(conn);
    PQfinish(conn);
    return false;
  }
  // Both queries read one snapshot: a view created between them would otherwise be known (cacheable)
  // without its edges (a write under it would not reach it until the next read).
  PQclear(PQexec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  bool ok = true;
  std::vector<cache::CatalogRow> read;
  for (std::string_view q : {cache::kCatalogQuery, kSessionCodeQuery}) {
    std::string query(q);
    PGresult* res = PQexec(conn, query.c_str());
    ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQnfields(res) == 3;
    if (ok) {
      for (int i = 0; i < PQntuples(res); ++i) {
        read.push_back({PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2)});
      }
    } else {
      error = PQresultErrorMessage(res);
    }
    PQclear(res);
    if (!ok) break;
  }
  PQfinish(conn);
  if (ok) rows = std::move(read);
  return ok;
}

void CatalogWatcher::run() {
  pthread_setname_np(pthread_self(), "pgs-catalog");  // names in top -H, ps -L, perf: 15 bytes at most
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    poke_ = false;
    lock.unlock();
    bool all = true;
    for (size_t i = 0; i < targets_.size(); ++i) {
      std::vector<cache::CatalogRow> rows;
      std::string error;
      if (read_target(targets_[i], rows, error)) {
        last_rows_[i] = std::move(rows);
      } else {
        all = false;
        LOG_WARN("catalog: cannot read write dependencies and session code of database " + targets_[i].dbname + ": " + error);
      }
    }
    std::vector<cache::CatalogRow> merged;
    for (const auto& rows : last_rows_) merged.insert(merged.end(), rows.begin(), rows.end());
    auto deps = std::make_shared<const cache::WriteDependencies>(cache::WriteDependencies::from_rows(merged));
    auto code = std::make_shared<const SessionCodeCatalog>(SessionCodeCatalog::from_rows(merged));
    lock.lock();
    current_ = std::move(deps);
    session_code_ = std::move(code);
    version_.fetch_add(1, std::memory_order_release);
    if (all) loads_.fetch_add(1, std::memory_order_release);
    wake_.wait_for(lock, period_, [this] { return stopping_ || poke_; });
  }
}

}  // namespace pgs::proxy
