#include "proxy/session/client_statements.h"

#include <utility>

namespace pgs::proxy {

namespace pf = protocol::frontend;

ClientStatements::ClientStatements(EffectsOf effects_of, size_t max_statements)
    : effects_of_(std::move(effects_of)), max_statements_(max_statements) {}

// A named Parse becomes a Parse of the proxy-wide name, or nothing at all (and a ParseComplete of our
// own) when this server already has the statement.
ParseAction ClientStatements::on_parse(const pf::Parse& parse, bool touches_session, const ServerStatements& server,
                                       bool may_name_sql_prepared) {
  if (parse.name.empty()) {
    unnamed_parsed_ = true;
    unnamed_sql_effects_ = may_name_sql_prepared ? effects_of_(parse.sql) : nullptr;
    return {.step = ParseStep::forward};
  }
  std::string name(parse.name);
  auto it = by_name_.find(name);
  if (it != by_name_.end()) {
    // As a server would: 42P05, and the batch is skipped up to its Sync. Parsing again under the name
    // the server already has makes the server say so (naming our server-side name).
    return {.step = ParseStep::duplicate, .statement = it->second};
  }
  if (by_name_.size() >= max_statements_) {
    return {.step = ParseStep::refuse,
            .sqlstate = "53400",
            .message = "pgsidecar: too many prepared statements in one session"};
  }
  PreparedRef ps = make_prepared(parse.sql, parse.param_types(), touches_session);
  by_name_.emplace(std::move(name), ps);
  ParseStep step = server.contains(ps->server_name) ? ParseStep::parse_complete : ParseStep::prepare;
  return {.step = step, .statement = std::move(ps)};
}

Addressed ClientStatements::on_bind(const pf::BindView& bind, bool transaction_pooling) {
  auto it = bind.statement.empty() ? by_name_.end() : by_name_.find(std::string(bind.statement));
  // The portal runs a "PREPARE q AS ..." / "DEALLOCATE q" statement: its Execute changes the client's
  // SQL-prepared statements.
  SqlPrepEffectsRef effects = bind.statement.empty()                                    ? unnamed_sql_effects_
                              : it != by_name_.end() && it->second->names_sql_prepared ? effects_of_(it->second->sql)
                                                                                         : nullptr;
  if (effects) {
    portal_sql_effects_[std::string(bind.portal)] = std::move(effects);
  } else if (!portal_sql_effects_.empty()) {
    portal_sql_effects_.erase(std::string(bind.portal));
  }
  if (it != by_name_.end()) return {.target = StatementTarget::server_name, .statement = it->second};
  // Unnamed, or not a protocol-level name: the server answers, with the client's SQL-prepared statement
  // of that name (sql_gate brought the server to it) or 26000 -- unless the name is not the client's to
  // reach: another client's server-side statement, or an unnamed statement this client did not parse here.
  if (!may_address(bind.statement, transaction_pooling)) return {.target = StatementTarget::no_such_statement};
  return {.target = StatementTarget::as_sent};
}

Addressed ClientStatements::on_describe(const pf::Describe& describe, bool transaction_pooling) const {
  if (describe.kind != 'S') return {.target = StatementTarget::as_sent};  // a portal
  if (PreparedRef ps = lookup(describe.name)) return {.target = StatementTarget::server_name, .statement = std::move(ps)};
  // Another client's server-side statement answers 26000, as for any unknown name.
  if (!may_address(describe.name, transaction_pooling)) return {.target = StatementTarget::no_such_statement};
  return {.target = StatementTarget::as_sent};
}

CloseStep ClientStatements::on_close(const pf::Close& close, bool transaction_pooling) {
  if (close.kind != 'S') return CloseStep::forward;  // a portal
  if (!close.name.empty() && by_name_.erase(std::string(close.name)) != 0) {
    return CloseStep::close_complete;  // the server keeps the statement for other clients
  }
  // Another client's server-side statement: completed without touching it (closing an unknown name is
  // no error).
  if (!may_address(close.name, transaction_pooling)) return CloseStep::close_complete;
  // A SQL-prepared name (sql_gate made the server's match the client's): it is gone once closed.
  return close.name.empty() ? CloseStep::forward : CloseStep::forward_sql_close;
}

void ClientStatements::on_unread_unnamed_parse() {
  unnamed_parsed_ = true;
  unnamed_sql_effects_.reset();  // a "PREPARE q AS ..." in there pins through the probe
}

SqlPrepEffectsRef ClientStatements::effects_of_portal(std::string_view portal) const {
  if (portal_sql_effects_.empty()) return nullptr;
  auto it = portal_sql_effects_.find(std::string(portal));
  return it == portal_sql_effects_.end() ? nullptr : it->second;
}

bool ClientStatements::can_prepare_without_server(std::string_view name) const {
  return !name.empty() && by_name_.size() < max_statements_ && find(name) == nullptr;
}

bool ClientStatements::remember(std::string_view name, std::string_view sql, const std::vector<uint32_t>& param_types) {
  std::string key(name);
  if (by_name_.size() >= max_statements_ && by_name_.count(key) == 0) return false;
  by_name_[std::move(key)] = make_prepared(sql, param_types, false);
  return true;
}

void ClientStatements::on_server_gone() {
  portal_sql_effects_.clear();
  unnamed_sql_effects_.reset();
}

bool ClientStatements::on_session_change(const router::SessionChange& change) {
  if (change.op != router::SessionOp::discard_all && change.op != router::SessionOp::deallocate_all) return false;
  by_name_.clear();
  return true;
}

// The server knows the statement under its proxy-wide name, so that is what it deallocates; whoever
// needs it next on this server gets it prepared again.
std::optional<Deallocation> ClientStatements::take_deallocated(const router::Classification& c) {
  if (c.statements.size() != 1 || c.statements.front().session_changes.size() != 1) return std::nullopt;
  const auto& ch = c.statements.front().session_changes.front();
  if (ch.op != router::SessionOp::deallocate) return std::nullopt;
  auto it = by_name_.find(ch.name);
  if (it == by_name_.end()) return std::nullopt;
  Deallocation d{.statement = std::move(it->second), .sql = {}};
  by_name_.erase(it);
  d.sql = "DEALLOCATE \"" + d.statement->server_name + "\"";
  return d;
}

const PreparedStatement* ClientStatements::find(std::string_view name) const { return lookup(name).get(); }

PreparedRef ClientStatements::lookup(std::string_view name) const {
  if (name.empty()) return nullptr;
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : it->second;
}

bool ClientStatements::may_address(std::string_view name, bool transaction_pooling) const {
  if (is_reserved_statement_name(name)) return false;
  return !name.empty() || unnamed_parsed_ || !transaction_pooling;
}

}  // namespace pgs::proxy
