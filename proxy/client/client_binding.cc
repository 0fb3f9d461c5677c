// ClientConn: binding a server and letting it go (assignment, release point, refusal, detach, shutdown).
#include <algorithm>
#include <array>
#include <cctype>

#include "protocol/frontend.h"
#include "protocol/writer.h"
#include "proxy/admin/admin_console.h"
#include "proxy/client/client_conn.h"
#include "proxy/core/log.h"
#include "proxy/core/process.h"
#include "proxy/core/worker.h"
#include "proxy/pool/pool.h"
#include "proxy/server/server_conn.h"
#include "proxy/session/session_code.h"
#include "proxy/session/statement_text.h"

namespace pgs::proxy {

namespace pf = protocol::frontend;
using protocol::Frame;

void ClientConn::on_server_assigned(ServerConn* server) {
  auto now = Clock::now();
  if (state_ == State::waiting) pool_->note_wait(now - state_since_);
  bound_at_ = now;
  server_ = server;
  set_state(State::active);
  cache_observe_ = worker_.result_cache() != nullptr && worker_.snapshot().config->cache.enabled;
  std::string settings_sql;
  if (server->settings_unknown()) {
    // Unseen code may have left settings nobody can list: start from the connection's defaults.
    settings_sql = "RESET ALL;" + build_sync_sql(request_.gucs, GucMap{}, server->defaults());
    server->clear_settings_unknown();
  } else {
    settings_sql = build_sync_sql(request_.gucs, server->applied(), server->defaults());
  }
  GucMap applied_after = settings_sql.empty() ? server->applied() : applied_after_sync(request_.gucs, server->defaults());
  // Another client's SQL-prepared statements go first (nothing to do for apps that never PREPARE).
  std::string sync_sql =
      server->sql_statements().size() == 0 ? std::string() : deallocate_strangers(sql_prepared_, server->sql_statements());
  sync_sql += settings_sql;
  server->attach(this, sync_sql, std::move(applied_after));
  batches_ = 0;
  flushed_since_bind_ = false;
  statements_.on_server_bound();
  wrote_ = batch_may_write_ && !pool_->is_replica();
  note_cache_read_target();
  if (!pending_replay_.empty()) replay_batch();
  if (!reading()) start_reading();
  process_session();
}

void ClientConn::on_server_bytes() {
  // A read on a replica keeps its reply here until it is complete (or large): if the replica dies
  // first, the read is re-run on the primary and the client never sees the failed attempt.
  // Below half the backpressure mark: a larger hold would stop the server's reads (process_active)
  // while nothing drains the client, and neither would ever resume.
  const size_t hold_limit =
      std::min<size_t>(64 * 1024, worker_.snapshot().config->proxy.client_buffer_high_water / 2);
  if (server_ != nullptr && pool_ != nullptr && pool_->is_replica() && replica_batch_ok_ &&
      server_->pending_ready() > 0 && outbox().size() < hold_limit) {
    return;
  }
  if (!lsn_hold_ && hold_reply_until_lsn_recorded()) {
    // The reply that ends a write transaction waits until its LSN is the user's floor (on_probe_row).
    lsn_hold_ = true;
    hold_output_from(0);
  }
  if (!outbox().empty()) flushed_since_bind_ = true;
  flush();
}

void ClientConn::on_write_progress() {
  // The client drained below the low-water mark: let the server's bytes flow again, and the client's
  // own requests if they waited for it (replies answered from the cache).
  if (queued_bytes() >= worker_.snapshot().config->proxy.client_buffer_high_water / 2) return;
  if (server_ != nullptr) server_->resume_reading();
  if (!reading() && (state_ == State::idle || state_ == State::active)) process_session();
}

void ClientConn::on_server_drained() {
  if (state_ != State::active || server_ == nullptr) return;
  if (server_->queued_bytes() < worker_.snapshot().config->proxy.client_buffer_high_water / 2) {
    if (!reading()) start_reading();
    process_session();
  }
}

void ClientConn::on_server_at_release_point() {
  if (server_ == nullptr) return;
  probe_kind_ = ProbeKind::none;  // nothing is in flight here: a probe, if any, has ended
  bool session_mode = pool_->settings().pool_mode == conf::PoolMode::session;
  if (session_mode && !shutting_down_) return;  // session mode keeps the server until the client leaves
  if (!session_mode && tracker_.needs_probe()) {
    // The transaction may have changed session state: ask the server what holds before letting go.
    ++worker_.metrics().session_probes;
    probe_kind_ = ProbeKind::session;
    std::vector<std::string> known;
    if (tracker_.full_probe_requested()) {
      for (const auto& [name, value] : request_.gucs.items()) known.push_back(name);
    }
    server_->start_probe(tracker_.begin_probe(request_.user, known));
    return;
  }
  bool lsn_probe = false;
  start_lsn_probe_if_needed(lsn_probe);
  if (lsn_probe) return;
  if (tracker_.pinned() && !shutting_down_) {  // LISTEN, advisory lock, temp table ...: keep it
    if (rbuf_.size() > 0 || !reading()) process_session();  // what the client sent during the probe
    return;
  }
  auto held = Clock::now() - bound_at_;
  pool_->note_transaction(held);
  worker_.metrics().transaction_duration[static_cast<size_t>(Target::primary)].observe(
      std::chrono::duration<double>(held).count());
  release_lsn_hold();  // never outlives the binding (a probe that returned no row)
  ServerConn* s = server_;
  server_ = nullptr;
  statements_.on_server_gone();  // portals and the unnamed statement stay with the server
  replica_batch_.clear();
  replica_batch_ok_ = false;
  set_state(State::idle);
  if (session_mode) {
    s->detach();
    s->reset_and_release();
  } else {
    pool_->release(s, true);
  }
  if (shutting_down_) {
    fail("57P01", "terminating connection due to administrator command");
    return;
  }
  if (rbuf_.size() > 0 || !reading()) process_session();
}

void ClientConn::refuse_batch(const char* sqlstate, const std::string& message) {
  if (state_ != State::waiting) return;
  // No server was bound, so the client is outside any transaction: answer its first request with an
  // ERROR as a server would, and keep the connection (a pool of app connections survives a busy spell).
  set_state(State::idle);
  abort_capture();  // a cache miss that never reached a server: its waiters ask Postgres themselves
  protocol::write_error(outbox(), {.severity = "ERROR", .sqlstate = sqlstate, .message = message});
  if (drop_head_query()) {
    protocol::write_ready_for_query(outbox(), 'I');
  } else {
    skip_until_sync_ = true;  // extended protocol: the batch ends at its Sync
  }
  flush();
  if (!reading()) start_reading();
  process_session();
}


void ClientConn::on_parameter_status(std::string_view name, std::string_view value) {
  if (is_tracked_setting(name)) request_.gucs.set(name, value);
  const std::string* told = reported_.get(name);
  if (told != nullptr && *told == value) return;
  reported_.set(name, value);
  protocol::write_parameter_status(outbox(), name, value);
}

void ClientConn::detach_server(bool client_gone) {
  (void)client_gone;
  if (state_ == State::waiting || state_ == State::login_wait) {
    ConnList<ClientConn>::unlink(this);  // no pool may hand it anything now; set_state(closing) follows
  }
  if (server_ == nullptr) return;
  ServerConn* s = server_;
  server_ = nullptr;
  bool session_mode = pool_->settings().pool_mode == conf::PoolMode::session;
  if (s->at_release_point()) {
    if (session_mode || tracker_.pinned() || tracker_.needs_probe()) {
      // Session state may live on this server: DISCARD ALL before anyone else gets it.
      s->detach();
      s->reset_and_release();
    } else {
      pool_->release(s, true);
    }
    return;
  }
  // Mid-transaction or mid-query: never hand this server to anyone. Cancel what runs, then close;
  // the backend rolls back and drops its locks when it sees the connection end.
  if (s->running_query()) worker_.send_cancel(pool_->target(), s->backend_pid(), s->backend_secret());
  pool_->release(s, false);
}

void ClientConn::begin_shutdown() {
  shutting_down_ = true;
  switch (state_) {
    case State::active:
      // Closes at the end of its transaction (on_server_at_release_point). A client that holds its
      // server between transactions (session mode, pinned) may already be there: nothing runs, so
      // it goes now rather than when it next speaks or shutdown_timeout cuts it off.
      if (server_ != nullptr && probe_kind_ == ProbeKind::none && server_->at_release_point()) {
        on_server_at_release_point();
      }
      return;
    case State::closing:
      return;
    default:
      fail("57P01", "terminating connection due to administrator command");
  }
}

}  // namespace pgs::proxy
