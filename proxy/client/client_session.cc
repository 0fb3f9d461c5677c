// ClientConn, part 3: the pooled session — binding servers, forwarding, releasing, failing.
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
  if (cache_step_ == CacheStep::lookup || cache_step_ == CacheStep::waiting || pending_bumps_ > 0) {
    stop_reading();  // bounded: what arrives meanwhile stays in the socket (resumed by the cache)
    return;
  }
  const auto& proxy_conf = worker_.snapshot().config->proxy;
  // Input pauses (bounded memory) while the proxy runs its own statements or a queue is full.
  bool pause = sql_sync_running_;
  while (!closing() && (state_ == State::idle || state_ == State::active) && !sql_sync_running_) {
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
      begin_transaction();  // the frame stays buffered: the cache or the bound server resumes here
      return;
    }
    // The proxy's own probe runs after the client's transaction ended (its ReadyForQuery already went
    // out): the next request waits for the release and is routed afresh, not sent to this server.
    if (probe_running()) {  // the release resumes here
      pause = true;
      break;
    }
    SqlGate gate = sql_gate(m);
    if (gate == SqlGate::failed) return;
    if (gate == SqlGate::wait) {  // on_sql_sync_done() resumes here
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

void ClientConn::begin_transaction() {
  // Decoded once for both readers: the cache's unit check and routing's batch scan.
  const BufferedRequest request =
      decode_buffered_request(rbuf_.data(), worker_.snapshot().config->proxy.max_message_bytes);
  if (!cache_checked_ && try_cache(request) == CacheAttempt::pending) return;  // resumed by the cache
  cache_checked_ = false;
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
      note_unseen_code({}, worker_.session_code());
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
  // One keyword scan for both checks: mentions_sql_prepared()'s words are among may_change_session()'s,
  // so a text without the latter names no SQL-prepared statement (sql_effects_of() would find none).
  const bool session_words = may_change_session(sql);
  note_statement(sql, refusal, &shape, session_words);
  note_cache_writes(sql);
  auto text = std::make_shared<const std::string>(sql);
  if (!refusal.empty()) {
    server_->send_query(refusal);
    server_->annotate_last_request(std::move(text));
    return true;
  }
  server_->forward(f.type, protocol::as_string_view(f.whole));
  server_->annotate_last_request(std::move(text), nullptr, shape);
  if (session_words) server_->attach_sql_effects(sql_effects_of(sql));
  send_lsn_probe_behind(f, sql);  // after the annotations above, which go to the last request sent
  return true;
}

// Session-state effects of a statement being sent (issue 3). Returns true if it may change session
// state. With session.pinning = "refuse" in transaction mode, a statement that would pin gets a
// replacement in `refusal` that fails on the server with 0A000 (so the server, not us, handles the
// error's effect on the transaction).
bool ClientConn::note_statement(std::string_view sql, std::string& refusal, uint64_t* shape,
                                std::optional<bool> session_words) {
  tracker_.note_activity();
  const SessionCodeCatalog* code = worker_.session_code();
  if (!(session_words ? *session_words : may_change_session(sql))) {
    // Default-deny: no word of the statement changes the session, so only code it runs unseen could.
    // Without user code in the databases it runs none; otherwise the answer depends only on the
    // statement's shape (its literals name no table or function), memoised per worker.
    if (code != nullptr && code->code_free()) return false;
    if (!worker_.runs_session_code(sql, [&] { return runs_unseen_code(*worker_.classify(sql), code); }, shape)) {
      return false;
    }
    note_unseen_code(sql, code);
    return true;
  }
  auto c = worker_.classify(sql);
  for (const auto& st : c->statements) {
    for (const auto& ch : st.session_changes) {
      bool names_statement = ch.op == router::SessionOp::prepare || ch.op == router::SessionOp::execute ||
                             ch.op == router::SessionOp::deallocate;
      if (names_statement && is_reserved_statement_name(ch.name)) {
        refusal = "DO $pgsidecar$BEGIN RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = "
                  "'pgsidecar: prepared statement names starting with pgsidecar_ are reserved'; END$pgsidecar$";
        return false;
      }
    }
  }
  bool session_mode = pool_->settings().pool_mode == conf::PoolMode::session;
  if (!session_mode && worker_.snapshot().config->session.pinning == conf::Pinning::refuse) {
    if (auto reason = SessionTracker::pins(*c)) {
      refusal = "DO $pgsidecar$BEGIN RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = "
                "'pgsidecar: " + std::string(pin_reason_name(*reason)) +
                " is not supported in transaction pooling (session.pinning = refuse)'; END$pgsidecar$";
      return false;
    }
  }
  if (deallocate_protocol_statement(*c, refusal)) return false;
  tracker_.note(*c);
  if (may_prepare_unseen(sql, *c)) tracker_.request_probe();  // PREPARE by dynamic SQL: may pin
  bool changes = false;
  if (runs_unseen_code(*c, code)) {
    note_unseen_code(sql, code);
    changes = true;
  }
  for (const auto& st : c->statements) {
    for (const auto& ch : st.session_changes) {
      if (ch.op != router::SessionOp::execute && !ch.transaction_scoped) changes = true;
      if (ch.op == router::SessionOp::reset_all || ch.op == router::SessionOp::discard_all) {
        for (const auto& [name, value] : request_.gucs.items()) tracker_.watch_setting(name);
      }
      if (statements_.on_session_change(ch)) server_->expect_statements_cleared();  // DISCARD/DEALLOCATE ALL
    }
  }
  return changes;
}

// Code the proxy cannot see may have changed anything: read back what can be read (every real setting,
// the custom ones whose names the text or the catalog spells out), reset the rest before another client
// uses this server.
void ClientConn::note_unseen_code(std::string_view sql, const SessionCodeCatalog* code) {
  tracker_.request_full_probe();
  for (const auto& name : custom_setting_names(sql)) tracker_.watch_setting(name);
  if (code != nullptr) {
    for (const auto& name : code->custom_settings()) tracker_.watch_setting(name);
  }
  if (server_ != nullptr) server_->mark_settings_unknown();
}

// may_run_session_code(), except that an EXECUTE of a SQL-prepared statement the proxy tracks is judged
// by the statement it prepared: EXECUTE alone runs nothing unseen.
bool ClientConn::runs_unseen_code(const router::Classification& c, const SessionCodeCatalog* code) {
  if (c.kind != router::Kind::execute || c.statements.size() != 1 || !c.unsafe_functions.empty()) {
    return may_run_session_code(c, code);
  }
  const auto& changes = c.statements.front().session_changes;
  if (changes.empty() || changes.front().op != router::SessionOp::execute) return true;
  const std::string* definition = sql_prepared_.find(changes.front().name);
  if (definition == nullptr) return true;  // prepared where the proxy did not see it
  auto body = prepared_statement_body(*definition);
  return !body || may_run_session_code(*worker_.classify(*body), code);
}

void ClientConn::on_probe_row(const std::vector<std::optional<std::string>>& row) {
  if (routing_.lsn_probe_running()) {
    on_lsn_row(row);
    return;
  }
  session_probe_running_ = false;
  std::vector<std::optional<std::string>> values = row;
  const std::vector<std::string> names = tracker_.probe_settings();
  if (values.size() != tracker_.probe_columns()) {
    LOG_WARN("session probe: " + std::to_string(values.size()) + " values for " + std::to_string(names.size()) +
             " settings");
    fail("08006", "pgsidecar: unexpected session probe reply");
    return;
  }
  {
    // The SQL-prepared statements the server really holds. Code the proxy cannot see may have dropped
    // some it tracks (a DEALLOCATE in a DO block): they are forgotten, by the server's record and by
    // this session's, as Postgres did. Ones it does not track pin (apply_probe gets their number).
    auto& v = values[names.size() + static_cast<size_t>(PinReason::sql_prepare)];
    auto all = parse_json_names(v.value_or("[]"));
    if (!all) {
      fail("08006", "pgsidecar: unexpected session probe reply");
      return;
    }
    // The proxy's shared protocol-level statements: one a DEALLOCATE ALL in unseen code dropped is
    // prepared again at its next Bind, not bound as if it were there (26000 for whoever comes next).
    if (server_ != nullptr) server_->keep_prepared_only(*all);
    auto held = std::make_optional<std::vector<std::string>>();
    for (auto& name : *all) {
      if (!is_reserved_statement_name(name)) held->push_back(std::move(name));
    }
    size_t untracked = held->size();
    if (server_ != nullptr) {
      SqlStatementSet& tracked = server_->sql_statements();
      for (const std::string& name : tracked.least_recent(tracked.size(), {})) {
        if (std::find(held->begin(), held->end(), name) != held->end()) continue;
        tracked.erase(name);
        sql_prepared_.erase(name);
      }
      untracked -= std::min(untracked, tracked.size());
    }
    v = std::to_string(untracked);
  }
  for (size_t i = 0; i < names.size(); ++i) {
    if (values[i]) {
      request_.gucs.set(names[i], *values[i]);
    } else {
      request_.gucs.erase(names[i]);
    }
    if (server_ != nullptr) server_->set_applied(names[i], values[i]);
  }
  std::array<bool, kPinReasonCount> before{};
  for (size_t r = 0; r < kPinReasonCount; ++r) before[r] = tracker_.pinned_for(static_cast<PinReason>(r));
  std::vector<std::pair<std::string, std::string>> discovered;  // set where the proxy could not see
  if (!tracker_.apply_probe(values, &discovered)) {
    fail("08006", "pgsidecar: unexpected session probe reply");
    return;
  }
  for (const auto& [name, value] : discovered) {
    request_.gucs.set(name, value);
    if (server_ != nullptr) server_->set_applied(name, value);
  }
  for (size_t r = 0; r < kPinReasonCount; ++r) {
    bool after = tracker_.pinned_for(static_cast<PinReason>(r));
    if (after != before[r]) worker_.metrics().pinned_clients[r] += after ? 1 : -1;
  }
}

void ClientConn::unpin_metrics() {
  for (size_t r = 0; r < kPinReasonCount; ++r) {
    if (tracker_.pinned_for(static_cast<PinReason>(r))) --worker_.metrics().pinned_clients[r];
  }
}

std::string ClientConn::pin_reasons() const {
  std::string out;
  for (size_t r = 0; r < kPinReasonCount; ++r) {
    if (!tracker_.pinned_for(static_cast<PinReason>(r))) continue;
    if (!out.empty()) out += ",";
    out += pin_reason_name(static_cast<PinReason>(r));
  }
  return out;
}

}  // namespace pgs::proxy
