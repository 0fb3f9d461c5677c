// SqlPreparedGate: one client's SQL-level prepared statements (PREPARE q AS ..., EXECUTE q, DEALLOCATE q)
// under transaction pooling, and the gate its messages pass on their way to a server (issue 3; issue 11
// item 2; the model is in session/sql_prepared.h). Before a request that names one of these statements
// runs, the bound server is brought to this client's state for that name (DEALLOCATE a stranger's
// definition, PREPARE the client's); the request waits for that (one round trip, only when the server
// differs) so that a failure is the request's failure, as on a real server.
//
// It owns the client's statements (name -> PREPARE text, learnt from the server's confirmations), whether
// the server is being brought to them (the request waits) and whether it just was (the message at the
// head of the client's buffer then goes out unchecked). It takes each message about to be forwarded, the
// sync's outcome, each confirmed effect, the server lost, the binding and the session probe's list of
// what the server holds, and returns what to do: pass, wait for a plan of statements to run first, or fail
// the session. No I/O: the connection reads the bound server and the client's buffer for it through
// SqlGateSources and runs the plan (ServerConn::start_sql_sync). Thread affinity: the owning connection's.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/frontend.h"
#include "proxy/request/buffered_request.h"
#include "proxy/session/client_statements.h"
#include "proxy/session/sql_prepared.h"
#include "router/classification.h"

namespace pgs::proxy {

// What the gate reads besides its own state: the bound server's record and the client's buffered
// request, a seam for tests. Each is asked only when the decision needs it.
class SqlGateSources {
 public:
  virtual std::shared_ptr<const router::Classification> classify(std::string_view sql) = 0;
  // The SQL-prepared statements the bound server holds (a plan touches the ones it keeps).
  virtual SqlStatementSet& server_statements() = 0;
  // How many the server may hold (session.max_prepared_statements): beyond it, the least recently used go.
  virtual size_t server_capacity() = 0;
  // The server is inside an extended-protocol batch (no Sync since its first message).
  virtual bool server_mid_batch() = 0;
  // Nothing is in flight on the server and its transaction has not failed: statements may be evicted (a
  // DEALLOCATE must not race a statement that uses the name, and cannot run in a failed transaction).
  virtual bool server_may_evict() = 0;
  // The client's request at the head of its buffer (a Query, or messages up to a Sync), decoded.
  virtual BufferedRequest buffered_request() = 0;

 protected:
  ~SqlGateSources() = default;
};

enum class SqlGateStep : uint8_t {
  pass,  // forward the message
  wait,  // run `plan` first (ServerConn::start_sql_sync); on_sync_done() says how it went, then resume
  fail,  // the session fails with FATAL `sqlstate` `message`
};

struct SqlGateDecision {
  SqlGateStep step = SqlGateStep::pass;
  SqlSyncPlan plan;           // wait
  const char* sqlstate = "";  // fail
  std::string message;        // fail
};

class SqlPreparedGate {
 public:
  // SQL-prepared statements one client may keep (real servers have no limit; a bound keeps us bounded).
  static constexpr size_t kMaxStatements = 100000;

  explicit SqlPreparedGate(size_t max_statements = kMaxStatements) : max_statements_(max_statements) {}

  // ---- messages, as they go to the bound server ----
  // `m` is the message at the head of the client's buffer, about to be forwarded. `statements`: the
  // client's protocol-level statements (PQprepare(s, "EXECUTE q") names q through s).
  [[nodiscard]] SqlGateDecision on_message(const protocol::frontend::Message& m, const ClientStatements& statements,
                                           SqlGateSources& sources);
  // The statements of a `wait` decision were answered: `ok` when they all succeeded. Either way the request
  // is resumed (it passes unchecked), or answered with their error by the caller.
  void on_sync_done(bool ok) {
    sync_running_ = false;
    synced_ = ok;
  }
  // The request waits for the sync: the client's input pauses.
  bool sync_running() const { return sync_running_; }
  // A statement of this client changed its SQL-prepared statements (the server confirmed it).
  void apply(const SqlPrepEffect& e) { statements_.apply(e); }

  // ---- the binding ----
  // A server is bound: the statements another client left there that this client does not hold under the
  // same name and definition (their text may hold literals), as DEALLOCATE statements to run first ("" when
  // none); they are erased from `server`.
  [[nodiscard]] std::string strangers_on(SqlStatementSet& server) const;
  // The server was lost: a held request is sent afresh to the next server.
  void on_server_lost() {
    sync_running_ = false;
    synced_ = false;
  }
  // The session probe listed every prepared statement the server holds (`server_names`, the proxy's own
  // pgsidecar_* ones among them). Those it tracks that are gone (a DEALLOCATE in code the proxy cannot see)
  // are forgotten, by `server` (null: none bound) and by this client, as Postgres did. Returns the number of
  // the server's SQL-prepared statements nobody tracks (they pin).
  size_t reconcile(const std::vector<std::string>& server_names, SqlStatementSet* server);

  // The PREPARE text of the client's statement `name`, or null.
  const std::string* definition(const std::string& name) const { return statements_.find(name); }
  size_t size() const { return statements_.size(); }

 private:
  // The SQL-prepared names a request, a message or a text depends on.
  void names_of_request(const BufferedRequest& request, const ClientStatements& statements,
                        SqlGateSources& sources, SqlPrepRequest& names) const;
  void names_of_message(const protocol::frontend::Message& m, const ClientStatements& statements,
                        SqlGateSources& sources, SqlPrepRequest& names, std::vector<std::string>* parsed) const;
  static void names_of_text(std::string_view sql, SqlGateSources& sources, SqlPrepRequest& names);

  size_t max_statements_;
  SqlStatementSet statements_;  // the client's SQL-level prepared statements, least recently used last
  bool sync_running_ = false;   // the server is being brought to statements_: the request waits
  bool synced_ = false;         // ... and was: the message at the head of the client's buffer goes out unchecked
};

}  // namespace pgs::proxy
