#include "proxy/sql_gate/sql_prepared_gate.h"

#include <algorithm>

#include "proxy/session/prepared.h"

namespace pgs::proxy {

namespace pf = protocol::frontend;

namespace {
void add_unique(std::vector<std::string>& names, std::string_view name) {
  if (std::find(names.begin(), names.end(), name) == names.end()) names.emplace_back(name);
}
}  // namespace

void SqlPreparedGate::names_of_text(std::string_view sql, SqlGateSources& sources, SqlPrepRequest& names) {
  if (!mentions_sql_prepared(sql)) return;
  SqlPrepRequest r = sql_prep_request(*sources.classify(sql));
  for (const auto& n : r.names) add_unique(names.names, n);
  for (const auto& n : r.dealloc_names) add_unique(names.dealloc_names, n);
}

// `parsed`: protocol-level names Parsed earlier in the same batch (not yet in `statements`).
void SqlPreparedGate::names_of_message(const pf::Message& m, const ClientStatements& statements,
                                       SqlGateSources& sources, SqlPrepRequest& names,
                                       std::vector<std::string>* parsed) const {
  std::string_view statement;
  if (const auto* q = m.as<pf::Query>()) {
    names_of_text(q->sql, sources, names);
    return;
  }
  if (const auto* p = m.as<pf::Parse>()) {
    if (parsed != nullptr && !p->name.empty()) parsed->emplace_back(p->name);
    names_of_text(p->sql, sources, names);
    return;
  }
  if (const auto* b = m.as<pf::BindView>()) {
    statement = b->statement;
  } else if (const auto* d = m.as<pf::Describe>()) {
    if (d->kind != 'S') return;
    statement = d->name;
  } else if (const auto* c = m.as<pf::Close>()) {
    if (c->kind != 'S') return;
    statement = c->name;
  } else {
    return;
  }
  // A reserved name is another client's protocol-level statement: ClientStatements answers it 26000.
  if (statement.empty() || is_reserved_statement_name(statement)) return;
  if (const PreparedStatement* ps = statements.find(statement)) {
    if (ps->names_sql_prepared) names_of_text(ps->sql, sources, names);  // PQprepare(s, "EXECUTE q")
    return;
  }
  if (parsed != nullptr && std::find(parsed->begin(), parsed->end(), statement) != parsed->end()) return;
  // Bind / Describe / Close of a SQL-prepared name (Close only needs to find one when the client has one).
  add_unique(m.type() == 'C' ? names.dealloc_names : names.names, statement);
}

// A request: a Query, or extended-protocol messages up to their Sync (as far as they are buffered; a
// message that does not decode ends them: it is refused when it reaches the head of the buffer).
void SqlPreparedGate::names_of_request(const BufferedRequest& request, const ClientStatements& statements,
                                       SqlGateSources& sources, SqlPrepRequest& names) const {
  std::vector<std::string> parsed;
  for (const pf::Message& m : request.messages) {
    if (m.type() != 'S') names_of_message(m, statements, sources, names, &parsed);
  }
}

SqlGateDecision SqlPreparedGate::on_message(const pf::Message& m, const ClientStatements& statements,
                                            SqlGateSources& sources) {
  const protocol::Frame& f = m.frame;
  switch (f.type) {
    case 'Q': case 'P': case 'B': case 'D': case 'C': case 'E': case 'H':
      break;
    default:
      return {};  // Sync, FunctionCall, COPY data
  }
  if (synced_) {
    synced_ = false;
    return {};
  }
  // Neither side holds a SQL-prepared statement: nothing can differ, so nothing to scan (the common
  // case, on every message of clients that never PREPARE).
  if (statements_.size() == 0 && sources.server_statements().size() == 0) return {};
  SqlStatementSet& server = sources.server_statements();
  const bool request_start = f.type == 'Q' || !sources.server_mid_batch();
  SqlPrepRequest names;
  if (f.streamed > 0 && (f.type == 'Q' || f.type == 'P')) {
    // A text larger than the proxy reads (client_stream.cc) may name any of them: bring them all.
    names.names = statements_.least_recent(statements_.size(), {});
    for (auto& n : server.least_recent(server.size(), {})) add_unique(names.names, n);
  } else if (request_start) {
    names_of_request(sources.buffered_request(), statements, sources, names);
  } else {
    names_of_message(m, statements, sources, names, nullptr);
  }
  // Evictions only between requests with nothing in flight.
  const bool may_evict = request_start && sources.server_may_evict();
  const size_t capacity = sources.server_capacity();
  if (names.names.empty() && names.dealloc_names.empty() && (!may_evict || server.size() <= capacity)) return {};
  if (statements_.size() > max_statements_) {
    return {.step = SqlGateStep::fail,
            .plan = {},
            .sqlstate = "53400",
            .message = "pgsidecar: too many SQL prepared statements in one session"};
  }
  SqlSyncPlan plan = plan_sql_sync(names.names, names.dealloc_names, statements_, server, capacity, may_evict);
  if (plan.sql.empty()) return {};
  if (!request_start) {
    // Only when a pipelined batch was not yet buffered whole at its start: nothing can be run on the
    // server in the middle of an extended-protocol batch.
    return {.step = SqlGateStep::fail,
            .plan = {},
            .sqlstate = "0A000",
            .message = "pgsidecar: a SQL prepared statement named in the middle of a pipelined batch that "
                       "started without it"};
  }
  sync_running_ = true;
  return {.step = SqlGateStep::wait, .plan = std::move(plan), .sqlstate = "", .message = {}};
}

std::string SqlPreparedGate::strangers_on(SqlStatementSet& server) const {
  // Nothing to do for apps that never PREPARE.
  return server.size() == 0 ? std::string() : deallocate_strangers(statements_, server);
}

size_t SqlPreparedGate::reconcile(const std::vector<std::string>& server_names, SqlStatementSet* server) {
  std::vector<std::string> held;
  for (const auto& name : server_names) {
    if (!is_reserved_statement_name(name)) held.push_back(name);
  }
  size_t untracked = held.size();
  if (server != nullptr) {
    for (const std::string& name : server->least_recent(server->size(), {})) {
      if (std::find(held.begin(), held.end(), name) != held.end()) continue;
      server->erase(name);
      statements_.erase(name);
    }
    untracked -= std::min(untracked, server->size());
  }
  return untracked;
}

}  // namespace pgs::proxy
