// ServerConn: replies to the statements the proxy itself sent — the settings sync before a client's
// first request, the session probe at a release point, SQL-level PREPAREs synced to this server — and
// the ParameterStatus messages that tell which settings a server now has applied.
#include "protocol/backend.h"
#include "proxy/client/client_conn.h"
#include "proxy/core/log.h"
#include "proxy/pool/pool.h"
#include "proxy/server/server_conn.h"

namespace pgs::proxy {

namespace pb = protocol::backend;
using protocol::Frame;

bool ServerConn::handle_internal_reply(const Frame& f) {
  switch (f.type) {
    case 'E':
      sync_failed_ = true;
      if (client_ != nullptr) client_->outbox().append(protocol::as_string_view(f.whole));
      clear_statements_on_ready_ = false;
      return true;
    case 'Z': {
      expected_.pop_front();
      --pending_ready_;
      if (sync_failed_) {
        ClientConn* c = client_;
        client_ = nullptr;
        if (c != nullptr) c->fail("08P01", "could not apply the session's settings on a server connection");
        fail("internal statement failed");
        return false;
      }
      applied_ = std::move(pending_applied_);
      pending_applied_ = GucMap{};
      if (clear_statements_on_ready_) {
        statements_.clear();
        clear_statements_on_ready_ = false;
      }
      if (state_ == State::resetting) {
        applied_ = GucMap{};
        sql_statements_.clear();  // DISCARD ALL succeeded
        set_state(State::idle);
        pool_.on_server_ready(this);
        return false;
      }
      emit_synthetics();
      return true;
    }
    default:
      return true;  // CommandComplete, RowDescription, DataRow of our own statement
  }
}

bool ServerConn::handle_sql_sync_reply(const Frame& f) {
  switch (f.type) {
    case 'C':
      apply_sql_effect(expected_.front(), protocol::as_string_view(f.body));
      return true;
    case 'E':
      if (sql_sync_error_.empty()) sql_sync_error_.assign(protocol::as_string_view(f.whole));
      return true;
    case 'Z': {
      auto rfq = pb::ReadyForQuery::decode(f.body);
      if (!rfq.ok()) {
        fail("malformed ReadyForQuery from server");
        return false;
      }
      tx_status_ = rfq->status;
      expected_.pop_front();
      --pending_ready_;
      sql_sync_done_ = true;
      emit_synthetics();
      return true;
    }
    default:
      return true;
  }
}

bool ServerConn::handle_probe_reply(const Frame& f) {
  switch (f.type) {
    case 'D': {
      auto row = pb::DataRow::decode(f.body);
      if (!row.ok()) {
        fail("malformed DataRow in the session probe");
        return false;
      }
      std::vector<std::optional<std::string>> values;
      pb::DataRow::Cursor cur(row.value());
      std::optional<protocol::Bytes> v;
      while (cur.next(v)) {
        values.push_back(v ? std::optional<std::string>(protocol::as_string_view(*v)) : std::nullopt);
      }
      if (client_ != nullptr) client_->on_probe_row(values);
      return !closing();
    }
    case 'E': {
      ClientConn* c = client_;
      client_ = nullptr;
      if (c != nullptr) c->fail("08006", "pgsidecar: could not read the session state from the server");
      fail("session probe failed");
      return false;
    }
    case 'Z':
      expected_.pop_front();
      --pending_ready_;
      emit_synthetics();
      return true;
    default:
      return true;  // RowDescription, CommandComplete
  }
}

void ServerConn::handle_parameter_status(const Frame& f, bool internal) {
  auto ps = pb::ParameterStatus::decode(f.body);
  if (!ps.ok()) {
    fail("malformed ParameterStatus from server");
    return;
  }
  if (internal) {
    // The server's spelling ("ISO, MDY" for "ISO") becomes what we record as applied.
    if (is_tracked_setting(ps->name) && pending_applied_.get(ps->name) != nullptr) {
      pending_applied_.set(ps->name, ps->value);
    }
  } else if (client_ != nullptr && client_->observes_replies()) {
    client_->abort_capture();  // a reply that changes a setting is not a cacheable one
  }
  if (!internal && is_tracked_setting(ps->name)) {
    // The client changed a reported setting itself (SET TimeZone ...): now the client's wish and
    // this server's applied state.
    applied_.set(ps->name, ps->value);
  }
  if (client_ != nullptr) client_->on_parameter_status(ps->name, ps->value);
}

}  // namespace pgs::proxy
