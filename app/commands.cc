// The sub-commands behind the CLI: migrate, seed, serve.
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "app/cli.h"
#include "app/log.h"
#include "app/migrate.h"
#include "app/partitions.h"

namespace pgs::app {
namespace {

// Keeps this month's and the next three months' partitions in place while serving: at start-up
// (retrying every 10 s while the database is unreachable) and then every hour, so a long-running
// server crosses month boundaries without failing inserts.
class PartitionKeeper {
 public:
  explicit PartitionKeeper(std::string conninfo) : conninfo_(std::move(conninfo)), thread_([this] { loop(); }) {}
  ~PartitionKeeper() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  bool once() {
    auto conn = PgConn::connect(conninfo_);
    if (!conn) {
      log::warn("partitions: cannot connect: " + conn.error().message);
      return false;
    }
    auto done = ensure_partitions(**conn, current_utc_month(), 4);
    if (!done) log::warn("partitions: " + done.error().message);
    return done.ok();
  }

  void loop() {
    std::unique_lock lock(mutex_);
    while (!stop_) {
      lock.unlock();
      const bool ok = once();
      lock.lock();
      wake_.wait_for(lock, ok ? std::chrono::hours(1) : std::chrono::seconds(10), [this] { return stop_; });
    }
  }

  std::string conninfo_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after the members it uses exist
};

}  // namespace

int run_migrate(const CliOptions& o) {
  auto conn = PgConn::connect(o.db);
  if (!conn) {
    log::error("migrate: " + conn.error().message);
    return 1;
  }
  auto applied = migrate(**conn);
  if (!applied) {
    log::error("migrate: " + applied.error().message);
    return 1;
  }
  std::printf("migrations applied: %d (of %zu)\n", *applied, embedded_migrations().size());
  return 0;
}

int run_seed(const CliOptions& o) {
  auto conn = PgConn::connect(o.db);
  if (!conn) {
    log::error("seed: " + conn.error().message);
    return 1;
  }
  auto created = seed(**conn, o.seed);
  if (!created) {
    log::error("seed: " + created.error().message);
    return 1;
  }
  return 0;
}

int run_serve(const CliOptions& o) {
  if (!log::set_access_log(o.access_log)) {
    log::error("cannot open access log " + o.access_log);
    return 1;
  }
  DbPool pool(o.pool);
  RateLimiter limiter(o.redis);
  if (!limiter.setup_error().empty()) {
    log::error("serve: " + limiter.setup_error());
    return 1;
  }
  Api api(Services{pool, limiter, o.api});
  PartitionKeeper keeper(o.db);
  HttpServer server(o.server, api);
  auto port = server.listen();
  if (!port) {
    log::error("serve: " + port.error());
    return 1;
  }
  // The tests and the dev script wait for this line (it carries the port chosen for --listen :0).
  std::printf("flopods-api listening on http://%s:%u\n", o.server.address.c_str(), *port);
  std::fflush(stdout);
  log::info("serving with " + std::to_string(o.server.io_threads) + " I/O threads, " +
            std::to_string(o.server.handler_threads) + " handler threads, pool " + std::to_string(o.pool.size) +
            (o.pool.prepared ? " (prepared statements)" : ""));
  server.run();
  return 0;
}

}  // namespace pgs::app
