// CatalogWatcher: reads, from the primary's catalog of each served database, what else a write to a
// table may write (cache/dependencies.h: cascading foreign keys, partitions, triggers, rules) and which
// relations run user code (session_code.h) — at start and then every `period` — and publishes them for
// the result cache's invalidation and the session tracking's default-deny.
//
// Threads: its own thread makes blocking libpq calls (connect and statement timeouts of a few
// seconds); current() from any thread; start()/stop() from the owner. A database it cannot read keeps
// its last known rows (none before the first success); failures are logged, never fatal.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cache/dependencies.h"
#include "proxy/session/session_code.h"

namespace pgs::proxy {

struct CatalogTarget {
  std::string host;
  int port = 5432;
  std::string dbname;
  std::string user;
  std::string password;
  std::string sslmode = "disable";  // the primary's server_tls (conf::libpq_tls)
  std::string sslrootcert;          // its CA file; "" = none
};

class CatalogWatcher {
 public:
  CatalogWatcher(std::vector<CatalogTarget> targets, std::chrono::milliseconds period);
  ~CatalogWatcher();  // stop()
  CatalogWatcher(const CatalogWatcher&) = delete;
  CatalogWatcher& operator=(const CatalogWatcher&) = delete;

  void start();
  void stop() noexcept;
  void refresh_soon();  // read again now (after a DDL through this sidecar); any thread

  // The latest dependencies (empty before the first read); loads() counts successful full reads.
  std::shared_ptr<const cache::WriteDependencies> current() const;
  // The latest session-code facts (null before the first read: nothing is known to be plain).
  std::shared_ptr<const SessionCodeCatalog> session_code() const;
  uint64_t loads() const { return loads_.load(std::memory_order_acquire); }
  // Counts publications (a read of some or all databases): a reader holding an older copy re-fetches.
  uint64_t version() const { return version_.load(std::memory_order_acquire); }

 private:
  void run();
  bool read_target(const CatalogTarget& t, std::vector<cache::CatalogRow>& rows, std::string& error) const;

  std::vector<CatalogTarget> targets_;
  std::chrono::milliseconds period_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool poke_ = false;
  std::shared_ptr<const cache::WriteDependencies> current_ = std::make_shared<cache::WriteDependencies>();
  std::shared_ptr<const SessionCodeCatalog> session_code_;
  std::vector<std::vector<cache::CatalogRow>> last_rows_;  // per target: kept when a read fails
  std::atomic<uint64_t> loads_{0};
  std::atomic<uint64_t> version_{0};
  std::thread thread_;
};

}  // namespace pgs::proxy
