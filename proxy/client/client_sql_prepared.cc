// ClientConn, part 4: SQL-level PREPARE / EXECUTE / DEALLOCATE under transaction pooling (issue 3),
// carried out. SqlPreparedGate (sql_gate/sql_prepared_gate.h) decides whether a message passes, waits for
// the statements that bring the server to this client's SQL-prepared state, or fails the session; this
// file runs those statements on the bound server and answers the request with their error.
#include "protocol/frontend.h"
#include "protocol/writer.h"
#include "proxy/client/client_conn.h"
#include "proxy/core/worker.h"
#include "proxy/server/server_conn.h"

namespace pgs::proxy {

namespace pf = protocol::frontend;

namespace {
// What the gate reads of the bound server and of the client's buffer, asked for only when it checks.
class ServerSqlGateSources final : public SqlGateSources {
 public:
  ServerSqlGateSources(Worker& worker, ServerConn& server, protocol::Bytes buffered)
      : worker_(worker), server_(server), buffered_(buffered) {}

  std::shared_ptr<const router::Classification> classify(std::string_view sql) override {
    return worker_.classify(sql);
  }
  SqlStatementSet& server_statements() override { return server_.sql_statements(); }
  size_t server_capacity() override { return server_.sql_capacity(); }
  bool server_mid_batch() override { return server_.unsynced(); }
  bool server_may_evict() override { return !server_.running_query() && server_.transaction_status() != 'E'; }
  BufferedRequest buffered_request() override {
    return decode_buffered_request(buffered_, worker_.snapshot().config->proxy.max_message_bytes);
  }

 private:
  Worker& worker_;
  ServerConn& server_;
  protocol::Bytes buffered_;
};
}  // namespace

SqlPrepEffectsRef ClientConn::sql_effects_of(std::string_view sql) {
  if (!mentions_sql_prepared(sql)) return nullptr;
  return sql_prep_request(*worker_.classify(sql)).effects;
}

// `m` is the message at the head of rbuf_, about to be forwarded to server_.
SqlGateStep ClientConn::pass_sql_gate(const pf::Message& m) {
  ServerSqlGateSources sources(worker_, *server_, rbuf_.data());
  SqlGateDecision d = sql_gate_.on_message(m, statements_, sources);
  switch (d.step) {
    case SqlGateStep::pass:
      break;
    case SqlGateStep::wait:  // on_sql_sync_done() resumes
      server_->start_sql_sync(d.plan);
      break;
    case SqlGateStep::fail:
      fail(d.sqlstate, d.message);
      break;
  }
  return d.step;
}

void ClientConn::on_sql_sync_done(std::string error, char status) {
  sql_gate_.on_sync_done(error.empty());
  if (!error.empty()) {
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
