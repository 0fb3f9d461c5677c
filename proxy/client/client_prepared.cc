// ClientConn: protocol-level prepared statements, renamed to proxy-wide names and prepared on whichever server the client lands on.
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

// A named Parse becomes a Parse of the proxy-wide name, or nothing at all (and a ParseComplete of our
// own) when this server already has the statement.
bool ClientConn::forward_parse(const Frame& f, const pf::Parse& parse) {
  std::string refusal;
  bool touches_session = note_statement(parse.sql, refusal);
  if (!refusal.empty()) {
    server_->send_parse(parse.name.empty() ? "" : "pgsidecar_refused", refusal, {}, false);
    return true;
  }
  if (parse.name.empty()) {
    unnamed_parsed_ = true;
    unnamed_sql_effects_ = sql_effects_of(parse.sql);
    batch_sql_ = std::make_shared<const std::string>(parse.sql);
    if (cache_observe_) unnamed_sql_ = batch_sql_;
    server_->forward('P', protocol::as_string_view(f.whole));
    return true;
  }
  if (prepared_.size() >= kMaxClientStatements && prepared_.count(std::string(parse.name)) == 0) {
    fail("53400", "pgsidecar: too many prepared statements in one session");
    return false;
  }
  if (const PreparedStatement* existing = find_prepared(parse.name)) {
    // As a server would: 42P05, and the batch is skipped up to its Sync. Parsing again under the name
    // the server already has makes the server say so (naming our server-side name).
    server_->ensure_prepared(existing->server_name, existing->sql, existing->param_types);
    server_->send_parse(existing->server_name, parse.sql, parse.param_types(), false);
    return true;
  }
  PreparedRef ps = make_prepared(parse.sql, parse.param_types(), touches_session);
  prepared_[std::string(parse.name)] = ps;
  if (server_->has_prepared(ps->server_name)) {
    std::string reply;
    protocol::write_parse_complete(reply);
    server_->push_synthetic(std::move(reply));
    return true;
  }
  server_->close_if_stale(ps->server_name);
  server_->send_parse(ps->server_name, ps->sql, ps->param_types, true);
  server_->note_prepared(ps->server_name);
  return true;
}

// PQprepare outside a transaction (a named Parse directly followed by Sync) is answered without a
// server when the parser accepts the text: the statement is prepared on whichever server first runs it.
// Holding a server for it would deadlock a client program that prepares on one thread while its other
// connections hold every server inside transactions (pgbench -M prepared). Errors the parser cannot see
// (an unknown table) then come with the first Bind instead of the Parse.
bool ClientConn::answer_prepare_locally(const Frame& parse_frame, const pf::Parse& parse) {
  if (parse.name.empty() || find_prepared(parse.name) != nullptr) return false;
  auto next = protocol::split_frame(rbuf_.data().subspan(parse_frame.size), 16);
  const Frame* sync = std::get_if<Frame>(&next);
  if (sync == nullptr || sync->type != 'S') return false;
  if (prepared_.size() >= kMaxClientStatements) return false;
  auto c = worker_.classify(parse.sql);
  if (c->flags.parse_error || c->flags.oversized || c->statements.size() != 1) return false;
  bool touches_session = false;
  for (const auto& ch : c->statements.front().session_changes) {
    touches_session = touches_session || (ch.op != router::SessionOp::execute && !ch.transaction_scoped);
  }
  touches_session = touches_session || may_run_session_code(*c, worker_.session_code());
  if (touches_session || SessionTracker::pins(*c)) return false;  // keep the usual path for those
  prepared_[std::string(parse.name)] = make_prepared(parse.sql, parse.param_types(), false);
  size_t consumed = parse_frame.size + sync->size;
  rbuf_.consume(consumed);
  protocol::write_parse_complete(outbox());
  protocol::write_ready_for_query(outbox(), 'I');
  flush();
  return true;
}

const PreparedStatement* ClientConn::find_prepared(std::string_view name) const {
  if (name.empty()) return nullptr;
  auto it = prepared_.find(std::string(name));
  return it == prepared_.end() ? nullptr : it->second.get();
}

bool ClientConn::forward_bind(const Frame& f, const pf::BindView& head) {
  if (f.streamed == 0) capture_bind_params(f);  // a streamed Bind's values are not all here
  auto it = head.statement.empty() ? prepared_.end() : prepared_.find(std::string(head.statement));
  // The portal runs a "PREPARE q AS ..." / "DEALLOCATE q" statement: its Execute changes the client's
  // SQL-prepared statements.
  SqlPrepEffectsRef effects = head.statement.empty()                                ? unnamed_sql_effects_
                              : it != prepared_.end() && it->second->names_sql_prepared ? sql_effects_of(it->second->sql)
                                                                                         : nullptr;
  if (effects) {
    portal_sql_effects_[std::string(head.portal)] = std::move(effects);
  } else if (!portal_sql_effects_.empty()) {
    portal_sql_effects_.erase(std::string(head.portal));
  }
  if (it == prepared_.end()) {
    // Unnamed, or not a protocol-level name: the server answers, with the client's SQL-prepared
    // statement of that name (sql_gate brought the server to it) or 26000.
    if (head.statement.empty() && unnamed_sql_) note_cache_writes(*unnamed_sql_);
    if (is_reserved_statement_name(head.statement) || !unnamed_statement_is_ours(head.statement)) {
      // Another client's server-side statement, or an unnamed statement this client did not parse here.
      server_->send_bind(head.portal, std::string(kNoSuchStatement), protocol::as_string_view(head.rest), f.streamed,
                         false);
      return true;
    }
    server_->forward('B', protocol::as_string_view(f.whole));
    return true;
  }
  PreparedRef ps = it->second;  // held: noting the statement may change prepared_
  note_cache_writes(ps->sql);
  batch_sql_ = std::shared_ptr<const std::string>(ps, &ps->sql);  // aliasing: no copy
  const SessionCodeCatalog* code = worker_.session_code();
  bool proven = code != nullptr && (code->code_free() || ps->neutral_under_catalog == worker_.session_code_version());
  if (ps->touches_session || !proven) {
    // Checked again at each Bind until proven under the current catalog (a trigger added since the
    // Parse makes it unproven): then the Bind costs one comparison.
    std::string ignored;  // a refused statement never got prepared
    if (!note_statement(ps->sql, ignored) && !ps->touches_session && code != nullptr) {
      ps->neutral_under_catalog = worker_.session_code_version();
    }
  }
  server_->ensure_prepared(ps->server_name, ps->sql, ps->param_types);
  // A streamed Bind: the header changes length with the name, the tail streams unchanged.
  server_->send_bind(head.portal, ps->server_name, protocol::as_string_view(head.rest), f.streamed, true);
  return true;
}

bool ClientConn::unnamed_statement_is_ours(std::string_view name) const {
  return !name.empty() || unnamed_parsed_ || pool_ == nullptr ||
         pool_->settings().pool_mode == conf::PoolMode::session;
}

bool ClientConn::forward_describe_or_close(const Frame& f, char kind, std::string_view name) {
  const PreparedStatement* ps = kind == 'S' ? find_prepared(name) : nullptr;
  if (ps == nullptr && kind == 'S' && (is_reserved_statement_name(name) || !unnamed_statement_is_ours(name))) {
    // Another client's server-side statement: a Describe answers 26000 (as for any unknown name), a
    // Close completes without touching it (closing an unknown name is no error).
    std::string reply;
    if (f.type == 'C') {
      protocol::write_close_complete(reply);
      server_->push_synthetic(std::move(reply));
    } else {
      server_->send_describe_statement(std::string(kNoSuchStatement));
    }
    return true;
  }
  if (ps == nullptr) {
    server_->forward(f.type, protocol::as_string_view(f.whole));
    if (f.type == 'C' && kind == 'S' && !name.empty()) {
      // Close of a SQL-prepared name (sql_gate made the server's match the client's): it is gone.
      auto effects = std::make_shared<SqlPrepEffects>();
      effects->by_statement.emplace_back(SqlPrepEffect{SqlPrepEffect::Op::deallocate, std::string(name), {}, {}});
      server_->attach_sql_effects(std::move(effects));
    }
    return true;
  }
  if (f.type == 'C') {
    // The server keeps the statement for other clients; this client's name is gone.
    prepared_.erase(std::string(name));
    std::string reply;
    protocol::write_close_complete(reply);
    server_->push_synthetic(std::move(reply));
    return true;
  }
  server_->ensure_prepared(ps->server_name, ps->sql, ps->param_types);
  server_->send_describe_statement(ps->server_name);
  return true;
}

}  // namespace pgs::proxy
