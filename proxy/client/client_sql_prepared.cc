// ClientConn, part 4: SQL-level PREPARE / EXECUTE / DEALLOCATE under transaction pooling (issue 3; the
// model is in sql_prepared.h). Before a request that names a SQL-prepared statement goes to a server,
// the server is brought to this client's state for that name; the request waits for that (one round
// trip, only when the server differs) so that a failure is the request's failure, as on a real server.
#include <algorithm>

#include "protocol/frontend.h"
#include "protocol/writer.h"
#include "proxy/client/client_conn.h"
#include "proxy/core/worker.h"
#include "proxy/server/server_conn.h"

namespace pgs::proxy {

namespace pf = protocol::frontend;
using protocol::Frame;

namespace {
// SQL-prepared statements one client may keep (real servers have no limit; a bound keeps us bounded).
constexpr size_t kMaxClientSqlStatements = 100000;

void add_unique(std::vector<std::string>& names, std::string_view name) {
  if (std::find(names.begin(), names.end(), name) == names.end()) names.emplace_back(name);
}
}  // namespace

SqlPrepEffectsRef ClientConn::sql_effects_of(std::string_view sql) {
  if (!mentions_sql_prepared(sql)) return nullptr;
  return sql_prep_request(*worker_.classify(sql)).effects;
}

void ClientConn::sql_names_of_text(std::string_view sql, SqlPrepRequest& names) {
  if (!mentions_sql_prepared(sql)) return;
  SqlPrepRequest r = sql_prep_request(*worker_.classify(sql));
  for (const auto& n : r.names) add_unique(names.names, n);
  for (const auto& n : r.dealloc_names) add_unique(names.dealloc_names, n);
}

// The SQL-prepared names one message depends on. `parsed`: protocol-level names Parsed earlier in the
// same batch (not yet in statements_).
void ClientConn::sql_names_of_message(const pf::Message& m, SqlPrepRequest& names, std::vector<std::string>* parsed) {
  std::string_view statement;
  if (const auto* q = m.as<pf::Query>()) {
    sql_names_of_text(q->sql, names);
    return;
  }
  if (const auto* p = m.as<pf::Parse>()) {
    if (parsed != nullptr && !p->name.empty()) parsed->emplace_back(p->name);
    sql_names_of_text(p->sql, names);
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
  if (statement.empty() || is_reserved_statement_name(statement)) return;  // see forward_bind
  if (const PreparedStatement* ps = statements_.find(statement)) {
    if (ps->names_sql_prepared) sql_names_of_text(ps->sql, names);  // PQprepare(s, "EXECUTE q")
    return;
  }
  if (parsed != nullptr && std::find(parsed->begin(), parsed->end(), statement) != parsed->end()) return;
  // Bind / Describe / Close of a SQL-prepared name (Close only needs to find one when the client has one).
  add_unique(m.type() == 'C' ? names.dealloc_names : names.names, statement);
}

// A request: a Query, or extended-protocol messages up to their Sync (as far as they are buffered).
void ClientConn::sql_names_of_request(SqlPrepRequest& names) {
  const BufferedRequest request =
      decode_buffered_request(rbuf_.data(), worker_.snapshot().config->proxy.max_message_bytes);
  std::vector<std::string> parsed;
  // Its messages up to its Query or Sync (a message that does not decode ends them: it is refused
  // when it reaches the head of the buffer).
  for (const pf::Message& m : request.messages) {
    if (m.type() != 'S') sql_names_of_message(m, names, &parsed);
  }
}

// `m` is the message at the head of rbuf_, about to be forwarded to server_.
ClientConn::SqlGate ClientConn::sql_gate(const pf::Message& m) {
  const Frame& f = m.frame;
  switch (f.type) {
    case 'Q': case 'P': case 'B': case 'D': case 'C': case 'E': case 'H':
      break;
    default:
      return SqlGate::pass;  // Sync, FunctionCall, COPY data
  }
  if (sql_synced_) {
    sql_synced_ = false;
    return SqlGate::pass;
  }
  // Neither side holds a SQL-prepared statement: nothing can differ, so nothing to scan (the common
  // case, on every message of clients that never PREPARE).
  if (sql_prepared_.size() == 0 && server_->sql_statements().size() == 0) return SqlGate::pass;
  bool request_start = f.type == 'Q' || !server_->unsynced();
  SqlPrepRequest names;
  if (f.streamed > 0 && (f.type == 'Q' || f.type == 'P')) {
    // A text larger than the proxy reads (client_stream.cc) may name any of them: bring them all.
    names.names = sql_prepared_.least_recent(sql_prepared_.size(), {});
    for (auto& n : server_->sql_statements().least_recent(server_->sql_statements().size(), {})) {
      if (std::find(names.names.begin(), names.names.end(), n) == names.names.end()) names.names.push_back(std::move(n));
    }
  } else if (request_start) {
    sql_names_of_request(names);
  } else {
    sql_names_of_message(m, names, nullptr);
  }
  // Evictions only between requests with nothing in flight: a DEALLOCATE must not race a statement
  // that uses the name, and cannot run in a failed transaction.
  bool may_evict = request_start && !server_->running_query() && server_->transaction_status() != 'E';
  size_t capacity = server_->sql_capacity();
  if (names.names.empty() && names.dealloc_names.empty() && (!may_evict || server_->sql_statements().size() <= capacity)) return SqlGate::pass;
  if (sql_prepared_.size() > kMaxClientSqlStatements) {
    fail("53400", "pgsidecar: too many SQL prepared statements in one session");
    return SqlGate::failed;
  }
  SqlSyncPlan plan = plan_sql_sync(names.names, names.dealloc_names, sql_prepared_, server_->sql_statements(), capacity, may_evict);
  if (plan.sql.empty()) return SqlGate::pass;
  if (!request_start) {
    // Only when a pipelined batch was not yet buffered whole at its start: nothing can be run on the
    // server in the middle of an extended-protocol batch.
    fail("0A000", "pgsidecar: a SQL prepared statement named in the middle of a pipelined batch that "
                  "started without it");
    return SqlGate::failed;
  }
  server_->start_sql_sync(plan);
  sql_sync_running_ = true;
  return SqlGate::wait;
}

void ClientConn::on_sql_sync_done(std::string error, char status) {
  sql_sync_running_ = false;
  if (error.empty()) {
    sql_synced_ = true;
  } else {
    // The statement the client's request depends on could not be made (its table was dropped, the
    // transaction is aborted): that is the request's error, and the request does not run.
    outbox() += error;
    if (drop_head_query()) {
      protocol::write_ready_for_query(outbox(), status);
    } else {
      skip_until_sync_ = true;
      skip_status_ = status;
    }
    flush();
  }
  process_session();
}

}  // namespace pgs::proxy
