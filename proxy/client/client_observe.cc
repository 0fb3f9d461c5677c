// ClientConn, part 5: what a finished request leaves for observability — a per-fingerprint digest
// (lexical normalization, cheap enough for every request) and, when slow, a slow-query log line
// (the real parser's fingerprint and normalized text: constants replaced, no data in the log).
#include <chrono>

#include "protocol/frontend.h"
#include "proxy/client/client_conn.h"
#include "proxy/core/process.h"
#include "proxy/core/worker.h"
#include "proxy/pool/pool.h"
#include "router/fingerprint.h"

namespace pgs::proxy {

void ClientConn::capture_bind_params(const protocol::Frame& bind) {
  const auto& obs = worker_.snapshot().config->observability;
  if (!obs.log_parameters || obs.slow_query.count() <= 0) return;
  auto b = protocol::frontend::Bind::decode(bind.body);
  if (!b.ok()) return;
  const protocol::frontend::BindArgs& args = b->args;
  auto values = std::make_shared<BindParams>();
  protocol::frontend::ValueList::Cursor cursor(args.values);
  std::optional<protocol::Bytes> value;
  for (size_t i = 0; cursor.next(value); ++i) {
    if (!value) {
      values->push_back(std::nullopt);
      continue;
    }
    std::string_view raw = protocol::as_string_view(*value);
    if (args.param_formats.for_value(i) == 0) {
      values->emplace_back(std::string(raw));
    } else {  // binary: shown as bytea hex
      static constexpr char kHex[] = "0123456789abcdef";
      std::string hex = "\\x";
      for (unsigned char c : raw) {
        hex.push_back(kHex[c >> 4]);
        hex.push_back(kHex[c & 15]);
      }
      values->push_back(std::move(hex));
    }
  }
  batch_params_ = std::move(values);
}

void ClientConn::on_request_done(std::string_view sql, const BindParams* params, Clock::duration took,
                                 uint64_t rows, const std::string& sqlstate, uint64_t shape) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(took);
  worker_.record_digest(sql, us, rows, !sqlstate.empty(), false, shape);
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
  if (params != nullptr && obs.log_parameters) r.parameters = *params;
  worker_.process().log_slow(std::move(r));
}

}  // namespace pgs::proxy
