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
  cache_.set_observing(cache_enabled());
  // Another client's SQL-prepared statements go first, then this client's settings (from the server's
  // defaults after a RESET ALL when unseen code may have left settings nobody can list).
  std::string sync_sql = sql_gate_.strangers_on(server->sql_statements());
  if (!server->settings_unknown() && settings_in_sync(request_.gucs, server->applied(), server->defaults())) {
    // Nearly always: nothing to build and, without another client's statements to run, nothing to copy
    // (attach() takes the settings the server will have only when it runs a statement).
    server->attach(this, sync_sql, sync_sql.empty() ? GucMap{} : server->applied());
  } else {
    SettingsSync settings =
        settings_sync(request_.gucs, server->applied(), server->defaults(), server->settings_unknown());
    server->clear_settings_unknown();
    sync_sql += settings.sql;
    server->attach(this, sync_sql, std::move(settings.applied_after));
  }
  const std::string replay = routing_.on_server_bound(pool_->is_replica());
  statements_.on_server_bound();
  note_cache_read_target();
  if (!replay.empty()) forward_saved_request(replay);  // a failed replica's read, run here as if it came now
  if (!reading()) start_reading();
  process_session();
}

void ClientConn::on_server_bytes() {
  ReplyFacts reply;
  reply.bound = server_ != nullptr && pool_ != nullptr;
  if (reply.bound) {
    reply.on_replica = pool_->is_replica();
    reply.transaction_pooling = pool_->settings().pool_mode == conf::PoolMode::transaction;
    reply.at_release_point = server_->at_release_point();
    reply.replies_pending = server_->pending_ready();
  }
  reply.outbox_bytes = outbox().size();
  // A replica's reply is kept below half the backpressure mark: a larger one would stop the server's
  // reads (process_active) while nothing drains the client, and neither would ever resume.
  reply.keep_limit = std::min<size_t>(64 * 1024, worker_.snapshot().config->proxy.client_buffer_high_water / 2);
  switch (routing_.on_server_bytes(reply, routing_policy())) {
    case ReplyStep::keep:
      return;
    case ReplyStep::hold_for_lsn:  // until the LSN is the user's floor (on_probe_row)
      hold_output_from(0);
      break;
    case ReplyStep::flush:
      break;
  }
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
  session_state_.on_release_point();  // nothing is in flight here: a probe, if any, has ended
  routing_.on_release_point();
  bool session_mode = pool_->settings().pool_mode == conf::PoolMode::session;
  if (session_mode && !shutting_down_) return;  // session mode keeps the server until the client leaves
  if (!session_mode) {
    // The transaction may have changed session state: ask the server what holds before letting go.
    if (std::optional<std::string> probe = session_state_.probe_at_release(request_.user, request_.gucs)) {
      ++worker_.metrics().session_probes;
      server_->start_probe(*probe);
      return;
    }
  }
  if (start_lsn_probe_if_needed()) return;
  if (session_state_.pinned() && !shutting_down_) {  // LISTEN, advisory lock, temp table ...: keep it
    if (rbuf_.size() > 0 || !reading()) process_session();  // what the client sent during the probe
    return;
  }
  auto held = Clock::now() - bound_at_;
  pool_->note_transaction(held);
  const Target target = pool_->is_replica() ? Target::replica : Target::primary;
  worker_.metrics().transaction_duration[static_cast<size_t>(target)].observe(
      std::chrono::duration<double>(held).count());
  end_lsn_hold();  // never outlives the binding (a probe that returned no row)
  routing_.on_server_released();
  ServerConn* s = server_;
  server_ = nullptr;
  statements_.on_server_gone();  // portals and the unnamed statement stay with the server
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
  if (session_state_.on_parameter_status(name, value)) protocol::write_parameter_status(outbox(), name, value);
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
    if (session_mode || session_state_.server_needs_reset()) {
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
  if (s->running_query()) worker_.send_cancel(*s);
  pool_->release(s, false);
}

void ClientConn::begin_shutdown() {
  shutting_down_ = true;
  switch (state_) {
    case State::active:
      // Closes at the end of its transaction (on_server_at_release_point). A client that holds its
      // server between transactions (session mode, pinned) may already be there: nothing runs, so
      // it goes now rather than when it next speaks or shutdown_timeout cuts it off.
      if (server_ != nullptr && !probe_running() && server_->at_release_point()) {
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
