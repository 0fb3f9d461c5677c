// ClientConn: protocol-level prepared statements, renamed to proxy-wide names and prepared on whichever
// server the client lands on. ClientStatements (session/client_statements.h) decides; this file carries
// its actions out on the bound server (and hands each statement to session-state tracking through
// note_statement, and keeps the cache's write tracking and the batch's text for the logs).
#include <memory>
#include <string>

#include "protocol/frontend.h"
#include "protocol/writer.h"
#include "proxy/client/client_conn.h"
#include "proxy/core/worker.h"
#include "proxy/pool/pool.h"
#include "proxy/server/server_conn.h"
#include "proxy/session/client_statements.h"
#include "proxy/session/session_code.h"

namespace pgs::proxy {

namespace pf = protocol::frontend;
using protocol::Frame;

// A named Parse becomes a Parse of the proxy-wide name, or nothing at all (and a ParseComplete of our
// own) when this server already has the statement (ClientStatements::on_parse).
bool ClientConn::forward_parse(const Frame& f, const pf::Parse& parse) {
  std::string refusal;
  uint64_t shape = 0;
  // One keyword scan for the session check and the SQL-prepared one (its words are among these).
  const bool session_words = statement_may_change_session(parse.sql);
  bool touches_session = note_statement(parse.sql, refusal, &shape, session_words);
  if (!refusal.empty()) {
    server_->send_parse(parse.name.empty() ? "" : "pgsidecar_refused", refusal, {}, false);
    return true;
  }
  ParseAction a = statements_.on_parse(parse, touches_session, server_->prepared_statements(), session_words);
  switch (a.step) {
    case ParseStep::forward:  // the unnamed statement
      batch_sql_ = std::make_shared<const std::string>(parse.sql);
      batch_shape_ = shape;
      cache_.set_unnamed(batch_sql_);  // kept only while the cache observes
      server_->forward('P', protocol::as_string_view(f.whole));
      return true;
    case ParseStep::prepare:
      server_->close_if_stale(a.statement->server_name);
      server_->send_parse(a.statement->server_name, a.statement->sql, a.statement->param_types, true);
      server_->note_prepared(a.statement->server_name);
      return true;
    case ParseStep::parse_complete: {
      std::string reply;
      protocol::write_parse_complete(reply);
      server_->push_synthetic(std::move(reply));
      return true;
    }
    case ParseStep::duplicate:
      server_->ensure_prepared(a.statement->server_name, a.statement->sql, a.statement->param_types);
      server_->send_parse(a.statement->server_name, parse.sql, parse.param_types(), false);
      return true;
    case ParseStep::refuse:
      fail(a.sqlstate, a.message);
      return false;
  }
  return false;
}

// PQprepare outside a transaction (a named Parse directly followed by Sync) is answered without a
// server when the parser accepts the text: the statement is prepared on whichever server first runs it.
// Holding a server for it would deadlock a client program that prepares on one thread while its other
// connections hold every server inside transactions (pgbench -M prepared). Errors the parser cannot see
// (an unknown table) then come with the first Bind instead of the Parse.
bool ClientConn::answer_prepare_locally(const Frame& parse_frame, const pf::Parse& parse) {
  if (!statements_.can_prepare_without_server(parse.name)) return false;
  auto next = protocol::split_frame(rbuf_.data().subspan(parse_frame.size), 16);
  const Frame* sync = std::get_if<Frame>(&next);
  if (sync == nullptr || sync->type != 'S') return false;
  auto c = worker_.classify(parse.sql);
  if (c->flags.parse_error || c->flags.oversized || c->statements.size() != 1) return false;
  bool touches_session = false;
  for (const auto& ch : c->statements.front().session_changes) {
    touches_session = touches_session || (ch.op != router::SessionOp::execute && !ch.transaction_scoped);
  }
  touches_session = touches_session || may_run_session_code(*c, worker_.session_code());
  if (touches_session || SessionTracker::pins(*c)) return false;  // keep the usual path for those
  if (!statements_.remember(parse.name, parse.sql, parse.param_types())) return false;
  size_t consumed = parse_frame.size + sync->size;
  rbuf_.consume(consumed);
  protocol::write_parse_complete(outbox());
  protocol::write_ready_for_query(outbox(), 'I');
  flush();
  return true;
}

bool ClientConn::forward_bind(const Frame& f, const pf::BindView& head) {
  if (f.streamed == 0) capture_bind_params(f);  // a streamed Bind's values are not all here
  Addressed a = statements_.on_bind(head, transaction_pooling());
  if (head.statement.empty()) note_unnamed_bound();  // the unnamed statement runs: its writes
  switch (a.target) {
    case StatementTarget::as_sent:
      server_->forward('B', protocol::as_string_view(f.whole));
      return true;
    case StatementTarget::no_such_statement:
      server_->send_bind(head.portal, std::string(kNoSuchStatement), protocol::as_string_view(head.rest), f.streamed,
                         false);
      return true;
    case StatementTarget::server_name:
      note_bound_statement(a.statement);  // may change statements_: a.statement is held
      server_->ensure_prepared(a.statement->server_name, a.statement->sql, a.statement->param_types);
      // A streamed Bind: the header changes length with the name, the tail streams unchanged.
      server_->send_bind(head.portal, a.statement->server_name, protocol::as_string_view(head.rest), f.streamed,
                         true);
      return true;
  }
  return false;
}

void ClientConn::note_bound_statement(const PreparedRef& ps) {
  note_cache_writes(ps->sql);
  batch_sql_ = std::shared_ptr<const std::string>(ps, &ps->sql);  // aliasing: no copy
  batch_shape_ = 0;
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
}

bool ClientConn::forward_describe(const Frame& f, const pf::Describe& describe) {
  Addressed a = statements_.on_describe(describe, transaction_pooling());
  switch (a.target) {
    case StatementTarget::as_sent:
      server_->forward(f.type, protocol::as_string_view(f.whole));
      return true;
    case StatementTarget::no_such_statement:  // 26000, as for any unknown name
      server_->send_describe_statement(std::string(kNoSuchStatement));
      return true;
    case StatementTarget::server_name:
      server_->ensure_prepared(a.statement->server_name, a.statement->sql, a.statement->param_types);
      server_->send_describe_statement(a.statement->server_name);
      return true;
  }
  return false;
}

bool ClientConn::forward_close(const Frame& f, const pf::Close& close) {
  switch (statements_.on_close(close, transaction_pooling())) {
    case CloseStep::forward:
      server_->forward(f.type, protocol::as_string_view(f.whole));
      return true;
    case CloseStep::close_complete: {
      std::string reply;
      protocol::write_close_complete(reply);
      server_->push_synthetic(std::move(reply));
      return true;
    }
    case CloseStep::forward_sql_close: {
      server_->forward(f.type, protocol::as_string_view(f.whole));
      auto effects = std::make_shared<SqlPrepEffects>();
      effects->by_statement.emplace_back(
          SqlPrepEffect{SqlPrepEffect::Op::deallocate, std::string(close.name), {}, {}});
      server_->attach_sql_effects(std::move(effects));
      return true;
    }
  }
  return false;
}

bool ClientConn::transaction_pooling() const {
  return pool_ != nullptr && pool_->settings().pool_mode != conf::PoolMode::session;
}

}  // namespace pgs::proxy
