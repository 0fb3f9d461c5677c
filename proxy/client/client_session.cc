// ClientConn, part 3: the pooled session — binding servers, forwarding, releasing, failing.
#include <algorithm>
#include <functional>
#include <memory>

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

namespace pgs::proxy {

namespace pf = protocol::frontend;
using protocol::Frame;

namespace {
// What a statement's session check reads from the worker, the pool and the client, asked for only when
// the decision needs it.
class WorkerSessionSources final : public SessionSources {
 public:
  WorkerSessionSources(Worker& worker, const Pool& pool, const GucMap& settings, const SqlPreparedGate& sql_gate)
      : worker_(worker), pool_(pool), settings_(settings), sql_gate_(sql_gate) {}

  std::shared_ptr<const router::Classification> classify(std::string_view sql) override {
    return worker_.classify(sql);
  }
  const SessionCodeCatalog* session_code() override { return worker_.session_code(); }
  bool runs_session_code(std::string_view sql, const std::function<bool()>& decide, uint64_t* shape) override {
    return worker_.runs_session_code(sql, decide, shape);
  }
  bool refuse_pins() override {
    return pool_.settings().pool_mode != conf::PoolMode::session &&
           worker_.snapshot().config->session.pinning == conf::Pinning::refuse;
  }
  const GucMap& client_settings() override { return settings_; }
  const std::string* sql_prepared_definition(const std::string& name) override { return sql_gate_.definition(name); }

 private:
  Worker& worker_;
  const Pool& pool_;
  const GucMap& settings_;
  const SqlPreparedGate& sql_gate_;
};
}  // namespace

void ClientConn::process_admin() {
  const auto& proxy_conf = worker_.snapshot().config->proxy;
  // The console buffers whole messages: none larger than max_parse_bytes.
  const uint32_t max_bytes = std::min(proxy_conf.max_parse_bytes, proxy_conf.max_message_bytes);
  while (!closing() && state_ == State::idle) {
    auto r = protocol::split_frame(rbuf_.data(), max_bytes);
    if (std::holds_alternative<protocol::NeedMore>(r)) break;
    if (auto* bad = std::get_if<protocol::Invalid>(&r)) {
      fail("08P01", "invalid message from client: " + std::string(bad->reason));
      return;
    }
    const Frame& f = std::get<Frame>(r);
    rbuf_.consume(f.size);
    switch (f.type) {
      case 'X':
        set_state(State::closing);
        close();
        return;
      case 'Q': {
        auto q = pf::Query::decode(f.body);
        if (!q.ok()) {
          fail("08P01", "invalid Query message");
          return;
        }
        outbox() += admin::execute(q->sql, worker_.process().admin_hooks());
        protocol::write_ready_for_query(outbox(), 'I');
        break;
      }
      case 'S':
        protocol::write_ready_for_query(outbox(), 'I');
        break;
      case 'P':
        protocol::write_error(outbox(), {.sqlstate = "0A000",
                                         .message = "the pgsidecar admin console speaks the simple query protocol only"});
        break;
      default:
        break;  // the rest of a refused extended batch, up to its Sync
    }
  }
  flush();
}

void ClientConn::process_session() {
  if (admin_) {
    process_admin();
    return;
  }
  // Input waits while the cache answers (a Redis lookup, an identical query in flight) and while a
  // commit's invalidation is confirmed (the client has not seen its ReadyForQuery yet).
  if (cache_.holds_input()) {
    stop_reading();  // bounded: what arrives meanwhile stays in the socket (resumed by the cache)
    return;
  }
  const auto& proxy_conf = worker_.snapshot().config->proxy;
  // Input pauses (bounded memory) while the proxy runs its own statements or a queue is full.
  bool pause = sql_gate_.sync_running();
  while (!closing() && (state_ == State::idle || state_ == State::active) && !sql_gate_.sync_running()) {
    if (inbound_remaining_ > 0) {  // the rest of a large message (client_stream.cc)
      if (!pump_large_message()) break;
      continue;
    }
    // Replies answered here (the cache) or not read by the client: wait below the mark.
    if (queued_bytes() > proxy_conf.client_buffer_high_water) {
      pause = true;
      break;
    }
    std::optional<Frame> next = next_client_frame();
    if (!next) {
      if (closing() || state_ == State::closing) return;  // refused (the reason was sent)
      break;                                                // the rest of it has not arrived yet
    }
    const Frame& f = *next;
    if (f.type == 'X') {  // Terminate
      detach_server(true);
      set_state(State::closing);
      close();
      return;
    }
    if (skip_until_sync_) {  // the batch was refused: ignore up to its Sync, as a server would
      skip_refused_frame(f);
      continue;
    }
    std::optional<pf::Message> decoded = decode_client_message(f);
    if (!decoded) return;  // refused
    const pf::Message& m = *decoded;
    if (state_ == State::idle) {
      if (const auto* parse = m.as<pf::Parse>(); parse != nullptr && answer_prepare_locally(f, *parse)) continue;
      begin_transaction(m);  // the frame stays buffered: the cache or the bound server resumes here
      return;
    }
    // The proxy's own probe runs after the client's transaction ended (its ReadyForQuery already went
    // out): the next request waits for the release and is routed afresh, not sent to this server.
    if (probe_running()) {  // the release resumes here
      pause = true;
      break;
    }
    SqlGateStep gate = pass_sql_gate(m);
    if (gate == SqlGateStep::fail) return;
    if (gate == SqlGateStep::wait) {  // on_sql_sync_done() resumes here
      pause = true;
      break;
    }
    if (f.streamed > 0) {
      if (!forward_large_message(m)) return;
      rbuf_.consume(f.size);
      inbound_remaining_ = f.streamed;
      continue;
    }
    if (!forward_message(m)) return;
    rbuf_.consume(f.size);
  }
  end_session_pass(pause);
}

std::optional<Frame> ClientConn::next_client_frame() {
  const auto& proxy_conf = worker_.snapshot().config->proxy;
  const uint32_t inspect = std::min(proxy_conf.max_parse_bytes, proxy_conf.max_message_bytes);
  // Postgres refuses an unknown type byte before reading the length: so does the proxy (no waiting
  // for a body of up to max_message_bytes that nobody will read).
  if (rbuf_.size() > 0 && !pf::is_known_type(static_cast<char>(rbuf_.data()[0]))) {
    const auto type = static_cast<uint8_t>(rbuf_.data()[0]);
    worker_.metrics().count_protocol_error(ProtocolError::unsupported_message);
    fail("08P01", std::string("unsupported frontend message type 0x") + "0123456789abcdef"[(type >> 4) & 0xf] +
                      "0123456789abcdef"[type & 0xf]);
    return std::nullopt;
  }
  auto r = protocol::split_frame_streaming(rbuf_.data(), proxy_conf.max_message_bytes, inspect);
  if (std::holds_alternative<protocol::NeedMore>(r)) return std::nullopt;
  if (auto* bad = std::get_if<protocol::Invalid>(&r)) {
    auto head = protocol::peek_frame_header(rbuf_.data());
    if (head && head->body_size > proxy_conf.max_message_bytes) {
      refuse_oversized_message(*head, proxy_conf.max_message_bytes);
      return std::nullopt;
    }
    worker_.metrics().count_protocol_error(ProtocolError::invalid_message);
    fail("08P01", "invalid message from client: " + std::string(bad->reason));
    return std::nullopt;
  }
  const Frame& f = std::get<Frame>(r);
  if (const char* why = pf::malformed_reason(f.type, f.body, f.streamed)) {
    worker_.metrics().count_protocol_error(ProtocolError::invalid_message);
    fail("08P01", std::string("invalid message from client: ") + why);
    return std::nullopt;
  }
  if (f.type == 'p') {
    fail("08P01", "unexpected password message after authentication");
    return std::nullopt;
  }
  return f;
}

std::optional<pf::Message> ClientConn::decode_client_message(const Frame& f) {
  auto m = pf::decode_message(f);
  if (!m.ok()) {
    worker_.metrics().count_protocol_error(ProtocolError::invalid_message);
    fail("08P01", std::string("invalid ") + pf::type_name(f.type) + " message: " + std::string(m.error().detail));
    return std::nullopt;
  }
  return std::move(m.value());
}

void ClientConn::skip_refused_frame(const Frame& f) {
  rbuf_.consume(f.size);
  inbound_remaining_ = f.streamed;
  inbound_discard_ = f.streamed > 0;
  if (f.type == 'S') {
    skip_until_sync_ = false;
    protocol::write_ready_for_query(outbox(), skip_status_);
    skip_status_ = 'I';
    flush();
  }
}

void ClientConn::begin_transaction(const pf::Message& first) {
  // Decoded once for both readers: the cache's unit check and routing's batch scan. A simple Query is
  // a whole request by itself, and `first` is it, decoded already.
  const BufferedRequest request =
      first.type() == 'Q'
          ? BufferedRequest::of_query(first)
          : decode_buffered_request(rbuf_.data(), worker_.snapshot().config->proxy.max_message_bytes);
  // A request that was looked up already (a miss) is not looked up again.
  if (!cache_.take_looked_up() && try_cache(request) == CacheAttempt::pending) return;  // resumed by the cache
  // The first message of a transaction: get a server.
  pool_ = choose_pool(request);
  set_state(State::waiting);
  pool_->request_server(this);  // on_server_assigned() resumes process_session()
}

void ClientConn::end_session_pass(bool pause) {
  const auto& proxy_conf = worker_.snapshot().config->proxy;
  if (server_ != nullptr && !closing()) {
    server_->flush();
    // Backpressure towards the client: a COPY flood (or a large message) stops while the server's
    // queue is full; on_server_drained() resumes.
    if (server_ != nullptr && server_->queued_bytes() > proxy_conf.client_buffer_high_water) pause = true;
  }
  if (closing() || (state_ != State::idle && state_ != State::active)) return;
  if (pause) {
    stop_reading();
  } else if (!reading()) {
    start_reading();
  }
}

void ClientConn::retry_batch() {
  const std::string bytes = routing_.take_retry_batch();
  if (!forward_saved_request(bytes)) return;
  if (server_ != nullptr) server_->flush();
}

bool ClientConn::forward_saved_request(const std::string& bytes) {
  protocol::Bytes view(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  size_t offset = 0;
  while (offset < view.size() && server_ != nullptr && !closing()) {
    auto r = protocol::split_frame(view.subspan(offset), worker_.snapshot().config->proxy.max_message_bytes);
    const auto* fr = std::get_if<Frame>(&r);
    if (fr == nullptr) break;
    offset += fr->size;
    auto m = pf::decode_message(*fr);  // it decoded when it first came
    if (!m.ok() || !forward_message(*m)) return false;
  }
  return true;
}

// One decoded message to the bound server, by type: rewritten (prepared statements), refused, answered
// here, or forwarded as it came.
bool ClientConn::forward_message(const pf::Message& m) {
  const Frame& f = m.frame;
  routing_.on_forwarded(f, pool_->is_replica());  // kept for a stale plan's retry or a failed replica's re-run
  switch (f.type) {
    case 'P':
      return forward_parse(f, *m.as<pf::Parse>());
    case 'B':
      return forward_bind(f, *m.as<pf::BindView>());
    case 'D':
      return forward_describe(f, *m.as<pf::Describe>());
    case 'C':
      return forward_close(f, *m.as<pf::Close>());
    case 'Q':
      return forward_query(f, m.as<pf::Query>()->sql);
    case 'S':
      server_->forward(f.type, protocol::as_string_view(f.whole));
      server_->annotate_last_request(std::move(batch_sql_), std::move(batch_params_), batch_shape_);
      batch_sql_.reset();
      batch_shape_ = 0;
      batch_params_.reset();
      return true;
    case 'F':
      // FunctionCall (libpq PQfn, the large-object API): runs a function by OID, unseen by the parser.
      session_state_.on_function_call(worker_.session_code());
      server_->mark_settings_unknown();
      break;
    case 'E': {
      pool_->note_query();
      server_->forward(f.type, protocol::as_string_view(f.whole));
      // Execute of a portal bound from "PREPARE q AS ...".
      if (auto effects = statements_.effects_of_portal(m.as<pf::Execute>()->portal)) {
        server_->attach_sql_effects(std::move(effects));
      }
      return true;
    }
    default:
      break;
  }
  server_->forward(f.type, protocol::as_string_view(f.whole));
  return true;
}

bool ClientConn::forward_query(const Frame& f, std::string_view sql) {
  pool_->note_query();
  std::string refusal;
  uint64_t shape = 0;
  // One keyword scan for both checks: mentions_sql_prepared()'s words are among
  // statement_may_change_session()'s, so a text without the latter names no SQL-prepared statement
  // (sql_effects_of() would find none).
  const bool session_words = statement_may_change_session(sql);
  note_statement(sql, refusal, &shape, session_words);
  note_cache_writes(sql);
  if (!refusal.empty()) {
    server_->send_query(refusal);
    server_->annotate_last_query(sql);
    return true;
  }
  server_->forward(f.type, protocol::as_string_view(f.whole));
  server_->annotate_last_query(sql, shape);
  if (session_words) server_->attach_sql_effects(sql_effects_of(sql));
  send_lsn_probe_behind(f, sql);  // after the annotations above, which go to the last request sent
  return true;
}

bool ClientConn::note_statement(std::string_view sql, std::string& refusal, uint64_t* shape,
                                std::optional<bool> session_words) {
  WorkerSessionSources sources(worker_, *pool_, request_.gucs, sql_gate_);
  StatementCheck check = session_state_.note_statement(sql, statements_, sources, session_words, shape);
  if (check.deallocated) {
    // The server knows the client's statement under its server-side name: that is what it deallocates;
    // whoever needs it next on this server gets it prepared again.
    const PreparedStatement& ps = *check.deallocated;
    server_->ensure_prepared(ps.server_name, ps.sql, ps.param_types);
    server_->forget_prepared(ps.server_name);
  }
  if (check.settings_unknown) server_->mark_settings_unknown();
  if (check.statements_cleared) server_->expect_statements_cleared();
  refusal = std::move(check.replacement);
  return check.changes_session;
}

void ClientConn::on_probe_row(const std::vector<std::optional<std::string>>& row) {
  if (routing_.lsn_probe_running()) {
    on_lsn_row(row);
    return;
  }
  ProbeOutcome probe = session_state_.on_probe_row(row, [this](const std::vector<std::string>& held) {
    // The proxy's shared protocol-level statements: one a DEALLOCATE ALL in unseen code dropped is
    // prepared again at its next Bind, not bound as if it were there (26000 for whoever comes next).
    if (server_ != nullptr) server_->keep_prepared_only(held);
    return sql_gate_.reconcile(held, server_ != nullptr ? &server_->sql_statements() : nullptr);
  });
  if (!probe.ok) {
    if (!probe.warning.empty()) LOG_WARN("session probe: " + probe.warning);
    fail("08006", "pgsidecar: unexpected session probe reply");
    return;
  }
  for (const auto& [name, value] : probe.settings) {
    if (value) {
      request_.gucs.set(name, *value);
    } else {
      request_.gucs.erase(name);
    }
    if (server_ != nullptr) server_->set_applied(name, value);
  }
  for (size_t r = 0; r < kPinReasonCount; ++r) worker_.metrics().pinned_clients[r] += probe.pin_changes[r];
}

void ClientConn::unpin_metrics() {
  for (size_t r = 0; r < kPinReasonCount; ++r) {
    if (session_state_.pinned_for(static_cast<PinReason>(r))) --worker_.metrics().pinned_clients[r];
  }
}

}  // namespace pgs::proxy
