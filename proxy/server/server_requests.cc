// ServerConn: what the client sends — binding and reset, the proxy's own statements (settings and
// SQL-prepared sync, the session probe), forwarded messages and the replies each one is owed.
// them, swallowing the replies to what the proxy injected, and streaming large rows through.
#include <algorithm>
#include <cctype>

#include "protocol/backend.h"
#include "protocol/writer.h"
#include "proxy/client/client_conn.h"
#include "proxy/core/log.h"
#include "proxy/core/worker.h"
#include "proxy/pool/pool.h"
#include "proxy/server/server_conn.h"

namespace pgs::proxy {

using protocol::Frame;

void ServerConn::attach(ClientConn* client, const std::string& sync_sql, GucMap applied_after) {
  client_ = client;
  set_state(State::active);
  sync_failed_ = false;
  replied_bytes_ = 0;
  batch_client_bytes_ = 0;
  retrying_batch_ = false;
  if (!sync_sql.empty()) {
    protocol::write_query(outbox(), sync_sql);
    enqueue(Reply::internal_query);
    pending_applied_ = std::move(applied_after);
  }
  start_reading();
}

void ServerConn::detach() {
  client_ = nullptr;
  passthrough_remaining_ = 0;
  if (state_ == State::active) set_state(State::idle);
  start_reading();  // an idle server is still read: it may say it is going away
}

void ServerConn::reset_and_release() {
  set_state(State::resetting);
  client_ = nullptr;
  if (pool_.defer_reset_for_cancels(this)) return;  // Pool::on_cancel_done calls this again
  protocol::write_query(outbox(), "DISCARD ALL");
  enqueue(Reply::internal_query);
  pending_applied_ = GucMap{};
  settings_unknown_ = false;  // DISCARD ALL includes RESET ALL
  clear_statements_on_ready_ = true;
  flush();
  start_reading();
}

size_t ServerConn::sql_capacity() const {
  return static_cast<size_t>(pool_.worker().snapshot().config->session.max_prepared_statements);
}

void ServerConn::attach_sql_effects(SqlPrepEffectsRef effects) {
  if (expected_.empty() || !effects) return;
  Expected& e = expected_.back();
  if (e.kind == Reply::query || e.kind == Reply::execute || e.kind == Reply::close) e.sql_effects = std::move(effects);
}

// Sent only at a request boundary (never inside an extended-protocol batch), so it always gets its own
// ReadyForQuery; the client holds its request until then.
void ServerConn::start_sql_sync(const SqlSyncPlan& plan) {
  protocol::write_query(outbox(), plan.sql);
  enqueue(Reply::internal_sql);
  expected_.back().sql_effects = plan.effects;
  sql_sync_done_ = false;
  sql_sync_error_.clear();
  flush();
}

// The n-th CommandComplete of a request confirms the effect of its n-th statement (a failed statement
// ends the request with an ErrorResponse instead, so what it would have done never happens).
void ServerConn::apply_sql_effect(Expected& e, std::string_view tag) {
  if (!e.sql_effects) return;
  size_t i = e.completed++;
  const auto& list = e.sql_effects->by_statement;
  if (i >= list.size() || !list[i]) return;
  const SqlPrepEffect& eff = *list[i];
  while (!tag.empty() && tag.back() == '\0') tag.remove_suffix(1);
  if (eff.tag != tag) {
    LOG_WARN("SQL prepared statement tracking: expected " + eff.tag + ", server said " + std::string(tag));
    return;
  }
  sql_statements_.apply(eff);
  if (!e.sql_effects->injected && client_ != nullptr) client_->apply_sql_effect(eff);
}

void ServerConn::start_probe(const std::string& sql) {
  protocol::write_query(outbox(), sql);
  enqueue(Reply::internal_probe);
  flush();
}

void ServerConn::set_applied(const std::string& name, const std::optional<std::string>& value) {
  if (value) {
    applied_.set(name, *value);
  } else {
    applied_.erase(name);
  }
}

// ---- what the client sends ----

void ServerConn::forward(char type, std::string_view whole_message) {
  outbox().append(whole_message);
  expect_reply_to(type);
}

void ServerConn::send_query(std::string_view sql) {
  protocol::write_query(outbox(), sql);
  expect_reply_to('Q');
}

void ServerConn::send_parse(const std::string& statement, std::string_view sql, const std::vector<uint32_t>& types,
                            bool tracked) {
  protocol::write_parse(outbox(), statement, sql, types);
  expect_reply_to('P', tracked ? statement : std::string());
}

void ServerConn::send_bind(std::string_view portal, const std::string& statement, std::string_view rest,
                           size_t streamed, bool tracked) {
  protocol::write_bind(outbox(), portal, statement, rest, streamed);
  expect_reply_to('B', tracked ? statement : std::string());
}

void ServerConn::send_describe_statement(const std::string& statement) {
  protocol::write_describe(outbox(), 'S', statement);
  expect_reply_to('D');
}

void ServerConn::expect_reply_to(char type, const std::string& statement) {
  switch (type) {
    case 'Q':
    case 'F':
      enqueue(Reply::query);
      break;
    case 'S':
      if (copy_in_open_) break;  // ignored in COPY FROM STDIN (Postgres CopyGetData): no reply
      unsynced_ = false;
      enqueue(Reply::sync);
      break;
    case 'P':
      unsynced_ = true;
      enqueue(Reply::parse, statement);
      break;
    case 'B':
      unsynced_ = true;
      enqueue(Reply::bind, statement);
      break;
    case 'D':
      unsynced_ = true;
      enqueue(Reply::describe);
      break;
    case 'E':
      unsynced_ = true;
      enqueue(Reply::execute);
      break;
    case 'C':
      unsynced_ = true;
      enqueue(Reply::close);
      break;
    case 'H':
      if (copy_in_open_) break;
      unsynced_ = true;  // Flush: no reply of its own; the batch stays open until Sync
      break;
    case 'c':
    case 'f':
      // CopyDone / CopyFail: answered within the COPY's own entry. Remember where the COPY ended in
      // the queue: the CopyInResponse may come later (a pipelining client), see note_copy_in_started().
      if (copy_in_open_) {
        copy_in_open_ = false;
      } else if (!expected_.empty()) {
        expected_.back().copy_end_after = true;
      }
      break;
    default:
      break;  // CopyData
  }
}

void ServerConn::annotate_last_query(std::string_view sql, uint64_t shape) {
  if (expected_.empty()) return;
  Expected& e = expected_.back();
  if (e.kind != Reply::query) return;
  e.query_text = std::move(spare_text_);
  e.query_text.assign(sql);
  e.shape = shape;
}

void ServerConn::annotate_last_request(std::shared_ptr<const std::string> sql,
                                       std::shared_ptr<const BindParams> params, uint64_t shape) {
  if (expected_.empty()) return;
  Expected& e = expected_.back();
  if (e.kind == Reply::query || e.kind == Reply::sync) {
    e.sql = std::move(sql);
    e.params = std::move(params);
    e.shape = shape;
  }
}

void ServerConn::ensure_prepared(const std::string& name, std::string_view sql, const std::vector<uint32_t>& types) {
  if (statements_.contains(name)) {
    statements_.touch(name);
    return;
  }
  close_if_stale(name);
  protocol::write_parse(outbox(), name, sql, types);
  enqueue(Reply::injected_parse, name);
  note_prepared(name);
}

void ServerConn::close_if_stale(const std::string& name) {
  if (stale_.erase(name) == 0) return;
  // Its plan went stale after DDL: the server still has it under this name, so close it first.
  protocol::write_close(outbox(), 'S', name);
  enqueue(Reply::injected_close, name);
}

void ServerConn::note_prepared(const std::string& name) {
  if (auto victim = statements_.insert(name)) {
    protocol::write_close(outbox(), 'S', *victim);
    enqueue(Reply::injected_close, *victim);
  }
}

}  // namespace pgs::proxy
