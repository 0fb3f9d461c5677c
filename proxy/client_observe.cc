// ClientConn, part 5: what a finished request leaves for observability — a per-fingerprint digest
// (lexical normalization, cheap enough for every request) and, when slow, a slow-query log line
// (the real parser's fingerprint and normalized text: constants replaced, no data in the log).
#include <chrono>

#include "proxy/client_conn.h"
#include "proxy/pool.h"
#include "proxy/process.h"
#include "proxy/worker.h"
#include "router/fingerprint.h"

namespace pgs::proxy {

void ClientConn::on_request_done(const std::string& sql, Clock::duration took, uint64_t rows,
                                 const std::string& sqlstate) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(took);
  worker_.record_digest(sql, us, rows, !sqlstate.empty());
  const auto& obs = worker_.snapshot().config->observability;
  if (obs.slow_query.count() <= 0 || took < obs.slow_query) return;
  obs::SlowQueryRecord r;
  r.time = std::chrono::system_clock::now();
  r.duration = us;
  r.database = request_.database;
  r.user = request_.user;
  if (const std::string* app = request_.gucs.get("application_name")) r.application_name = *app;
  r.client_addr = peer_;
  r.target = pool_ != nullptr ? pool_->target().name : "primary";
  r.rows = rows;
  r.sqlstate = sqlstate;
  r.fingerprint = router::fingerprint(sql).value;
  r.query = router::normalize(sql);
  worker_.process().log_slow(std::move(r));
}

}  // namespace pgs::proxy
