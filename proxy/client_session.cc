// ClientConn, part 3: the pooled session — binding servers, forwarding, releasing, failing.
#include <algorithm>
#include <array>
#include <cctype>

#include "protocol/frontend.h"
#include "protocol/writer.h"
#include "proxy/admin/admin_console.h"
#include "proxy/client_conn.h"
#include "proxy/process.h"
#include "proxy/log.h"
#include "proxy/pool.h"
#include "proxy/server_conn.h"
#include "proxy/session_code.h"
#include "proxy/statement_text.h"
#include "proxy/worker.h"

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
  const uint32_t inspect = std::min(proxy_conf.max_parse_bytes, proxy_conf.max_message_bytes);
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
    // Postgres refuses an unknown type byte before reading the length: so does the proxy (no waiting
    // for a body of up to max_message_bytes that nobody will read).
    if (rbuf_.size() > 0 && !pf::is_known_type(static_cast<char>(rbuf_.data()[0]))) {
      const auto type = static_cast<uint8_t>(rbuf_.data()[0]);
      worker_.counters().count_protocol_error(ProtocolError::unsupported_message);
      fail("08P01", std::string("unsupported frontend message type 0x") + "0123456789abcdef"[(type >> 4) & 0xf] +
                        "0123456789abcdef"[type & 0xf]);
      return;
    }
    auto r = protocol::split_frame_streaming(rbuf_.data(), proxy_conf.max_message_bytes, inspect);
    if (std::holds_alternative<protocol::NeedMore>(r)) break;
    if (auto* bad = std::get_if<protocol::Invalid>(&r)) {
      auto head = protocol::peek_frame_header(rbuf_.data());
      if (head && head->body_size > proxy_conf.max_message_bytes) {
        refuse_oversized_message(*head, proxy_conf.max_message_bytes);
        return;
      }
      worker_.counters().count_protocol_error(ProtocolError::invalid_message);
      fail("08P01", "invalid message from client: " + std::string(bad->reason));
      return;
    }
    const Frame& f = std::get<Frame>(r);
    if (const char* why = pf::malformed_reason(f.type, f.body, f.streamed)) {
      worker_.counters().count_protocol_error(ProtocolError::invalid_message);
      fail("08P01", std::string("invalid message from client: ") + why);
      return;
    }
    if (f.type == 'X') {  // Terminate
      detach_server(true);
      set_state(State::closing);
      close();
      return;
    }
    if (f.type == 'p') {
      fail("08P01", "unexpected password message after authentication");
      return;
    }
    if (skip_until_sync_) {  // the batch was refused: ignore up to its Sync, as a server would
      rbuf_.consume(f.size);
      inbound_remaining_ = f.streamed;
      inbound_discard_ = f.streamed > 0;
      if (f.type == 'S') {
        skip_until_sync_ = false;
        protocol::write_ready_for_query(outbox(), skip_status_);
        skip_status_ = 'I';
        flush();
      }
      continue;
    }
    if (state_ == State::idle) {
      if (f.type == 'P' && f.streamed == 0 && answer_prepare_locally(f)) continue;
      if (!cache_checked_ && try_cache() == CacheAttempt::pending) return;  // resumed by the cache
      cache_checked_ = false;
      // The first message of a transaction: get a server. The frame stays buffered until then.
      pool_ = choose_pool();
      set_state(State::waiting);
      pool_->request_server(this);
      return;  // on_server_assigned() resumes here
    }
    // The proxy's own probe runs after the client's transaction ended (its ReadyForQuery already went
    // out): the next request waits for the release and is routed afresh, not sent to this server.
    if (probe_kind_ != ProbeKind::none) {  // the release resumes here
      pause = true;
      break;
    }
    SqlGate gate = sql_gate(f);
    if (gate == SqlGate::failed) return;
    if (gate == SqlGate::wait) {  // on_sql_sync_done() resumes here
      pause = true;
      break;
    }
    if (f.streamed > 0) {
      if (!forward_large_frame(f)) return;
      rbuf_.consume(f.size);
      inbound_remaining_ = f.streamed;
      continue;
    }
    if (!forward_frame(f)) return;
    rbuf_.consume(f.size);
  }
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

void ClientConn::capture_batch(const Frame& f) {
  if (f.type == 'Q' || f.type == 'F' || f.type == 'd' || f.type == 'c' || f.type == 'f') return;
  if (batch_complete_) {
    last_batch_.clear();
    batch_complete_ = false;
    batch_capturable_ = true;
  }
  if (batch_capturable_) {
    if (last_batch_.size() + f.size > kMaxReplayBytes) {
      batch_capturable_ = false;
      last_batch_.clear();
    } else {
      last_batch_.append(protocol::as_string_view(f.whole));
    }
  }
  if (f.type == 'S') batch_complete_ = true;
}

void ClientConn::retry_batch() {
  std::string bytes = std::move(last_batch_);
  last_batch_.clear();
  batch_complete_ = true;
  protocol::Bytes view(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  size_t offset = 0;
  while (offset < view.size() && server_ != nullptr && !closing()) {
    auto r = protocol::split_frame(view.subspan(offset), worker_.snapshot().config->proxy.max_message_bytes);
    const auto* fr = std::get_if<Frame>(&r);
    if (fr == nullptr) break;
    offset += fr->size;
    if (!forward_frame(*fr)) return;
  }
  if (server_ != nullptr) server_->flush();
}

bool ClientConn::forward_frame(const Frame& f) {
  capture_batch(f);
  if (replica_batch_ok_) {  // keep the request for a retry on the primary if the replica dies
    if (replica_batch_.size() + f.size > kMaxReplayBytes) {
      replica_batch_ok_ = false;
      replica_batch_.clear();
    } else {
      replica_batch_.append(protocol::as_string_view(f.whole));
    }
  }
  if ((f.type == 'Q' || f.type == 'S') && ++batches_ > 1 && !pool_->is_replica()) wrote_ = true;
  switch (f.type) {
    case 'P':
      return forward_parse(f);
    case 'B':
      return forward_bind(f);
    case 'D':
    case 'C':
      return forward_describe_or_close(f);
    case 'Q': {
      worker_.counters().queries.fetch_add(1, std::memory_order_relaxed);
      pool_->note_query();
      auto q = pf::Query::decode(f.body);
      if (!q.ok()) {
        fail("08P01", "invalid Query message");
        return false;
      }
      std::string refusal;
      note_statement(q->sql, refusal);
      note_cache_writes(q->sql);
      auto text = std::make_shared<const std::string>(q->sql);
      if (!refusal.empty()) {
        protocol::write_query(server_->outbox(), refusal);
        server_->expect_reply_to('Q');
        server_->annotate_last_request(std::move(text));
        return true;
      }
      server_->forward(f.type, protocol::as_string_view(f.whole));
      server_->annotate_last_request(std::move(text));
      server_->attach_sql_effects(sql_effects_of(q->sql));
      return true;
    }
    case 'S':
      server_->forward(f.type, protocol::as_string_view(f.whole));
      server_->annotate_last_request(std::move(batch_sql_), std::move(batch_params_));
      batch_sql_.reset();
      batch_params_.reset();
      return true;
    case 'F':
      // FunctionCall (libpq PQfn, the large-object API): runs a function by OID, unseen by the parser.
      note_unseen_code({}, worker_.session_code());
      break;
    case 'E': {
      worker_.counters().queries.fetch_add(1, std::memory_order_relaxed);
      pool_->note_query();
      server_->forward(f.type, protocol::as_string_view(f.whole));
      if (!portal_sql_effects_.empty()) {  // Execute of a portal bound from "PREPARE q AS ..."
        std::string_view body = protocol::as_string_view(f.body);
        auto it = portal_sql_effects_.find(std::string(body.substr(0, body.find('\0'))));
        if (it != portal_sql_effects_.end()) server_->attach_sql_effects(it->second);
      }
      return true;
    }
    default:
      break;
  }
  server_->forward(f.type, protocol::as_string_view(f.whole));
  return true;
}

// A named Parse becomes a Parse of the proxy-wide name, or nothing at all (and a ParseComplete of our
// own) when this server already has the statement.
bool ClientConn::forward_parse(const Frame& f) {
  auto parse = pf::Parse::decode(f.body);
  if (!parse.ok()) {
    fail("08P01", "invalid Parse message: " + std::string(parse.error().detail));
    return false;
  }
  std::string refusal;
  bool touches_session = note_statement(parse->sql, refusal);
  if (!refusal.empty()) {
    protocol::write_parse(server_->outbox(), parse->name.empty() ? "" : "pgsidecar_refused", refusal, {});
    server_->expect_reply_to('P');
    return true;
  }
  if (parse->name.empty()) {
    unnamed_parsed_ = true;
    unnamed_sql_effects_ = sql_effects_of(parse->sql);
    batch_sql_ = std::make_shared<const std::string>(parse->sql);
    if (cache_observe_) unnamed_sql_ = batch_sql_;
    server_->forward('P', protocol::as_string_view(f.whole));
    return true;
  }
  if (prepared_.size() >= kMaxClientStatements && prepared_.count(std::string(parse->name)) == 0) {
    fail("53400", "pgsidecar: too many prepared statements in one session");
    return false;
  }
  if (const PreparedStatement* existing = find_prepared(parse->name)) {
    // As a server would: 42P05, and the batch is skipped up to its Sync. Parsing again under the name
    // the server already has makes the server say so (naming our server-side name).
    server_->ensure_prepared(existing->server_name, existing->sql, existing->param_types);
    protocol::write_parse(server_->outbox(), existing->server_name, parse->sql, parse->param_types);
    server_->expect_reply_to('P');
    return true;
  }
  PreparedRef ps = make_prepared(parse->sql, parse->param_types, touches_session);
  prepared_[std::string(parse->name)] = ps;
  if (server_->has_prepared(ps->server_name)) {
    std::string reply;
    protocol::write_parse_complete(reply);
    server_->push_synthetic(std::move(reply));
    return true;
  }
  server_->close_if_stale(ps->server_name);
  protocol::write_parse(server_->outbox(), ps->server_name, ps->sql, ps->param_types);
  server_->expect_reply_to('P', ps->server_name);
  server_->note_prepared(ps->server_name);
  return true;
}

// PQprepare outside a transaction (a named Parse directly followed by Sync) is answered without a
// server when the parser accepts the text: the statement is prepared on whichever server first runs it.
// Holding a server for it would deadlock a client program that prepares on one thread while its other
// connections hold every server inside transactions (pgbench -M prepared). Errors the parser cannot see
// (an unknown table) then come with the first Bind instead of the Parse.
bool ClientConn::answer_prepare_locally(const Frame& parse_frame) {
  auto parse = pf::Parse::decode(parse_frame.body);
  if (!parse.ok() || parse->name.empty() || find_prepared(parse->name) != nullptr) return false;
  auto next = protocol::split_frame(rbuf_.data().subspan(parse_frame.size), 16);
  const Frame* sync = std::get_if<Frame>(&next);
  if (sync == nullptr || sync->type != 'S') return false;
  if (prepared_.size() >= kMaxClientStatements) return false;
  auto c = worker_.classify(parse->sql);
  if (c->flags.parse_error || c->flags.oversized || c->statements.size() != 1) return false;
  bool touches_session = false;
  for (const auto& ch : c->statements.front().session_changes) {
    touches_session = touches_session || (ch.op != router::SessionOp::execute && !ch.transaction_scoped);
  }
  touches_session = touches_session || may_run_session_code(*c, worker_.session_code());
  if (touches_session || SessionTracker::pins(*c)) return false;  // keep the usual path for those
  prepared_[std::string(parse->name)] = make_prepared(parse->sql, parse->param_types, false);
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

bool ClientConn::forward_bind(const Frame& f) {
  if (f.streamed == 0) capture_bind_params(f);  // a streamed Bind's values are not all here
  auto head = read_bind_head(protocol::as_string_view(f.body));
  if (!head) {
    fail("08P01", "invalid Bind message");
    return false;
  }
  auto it = head->statement.empty() ? prepared_.end() : prepared_.find(std::string(head->statement));
  // The portal runs a "PREPARE q AS ..." / "DEALLOCATE q" statement: its Execute changes the client's
  // SQL-prepared statements.
  SqlPrepEffectsRef effects = head->statement.empty()                                ? unnamed_sql_effects_
                              : it != prepared_.end() && it->second->names_sql_prepared ? sql_effects_of(it->second->sql)
                                                                                         : nullptr;
  if (effects) {
    portal_sql_effects_[std::string(head->portal)] = std::move(effects);
  } else if (!portal_sql_effects_.empty()) {
    portal_sql_effects_.erase(std::string(head->portal));
  }
  if (it == prepared_.end()) {
    // Unnamed, or not a protocol-level name: the server answers, with the client's SQL-prepared
    // statement of that name (sql_gate brought the server to it) or 26000.
    if (head->statement.empty() && unnamed_sql_) note_cache_writes(*unnamed_sql_);
    if (is_reserved_statement_name(head->statement) || !unnamed_statement_is_ours(head->statement)) {
      // Another client's server-side statement, or an unnamed statement this client did not parse here.
      std::string bind;
      protocol::write_bind(bind, head->portal, kNoSuchStatement, head->rest, f.streamed);
      server_->forward('B', bind);
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
  protocol::write_bind(server_->outbox(), head->portal, ps->server_name, head->rest, f.streamed);
  server_->expect_reply_to('B', ps->server_name);
  return true;
}

bool ClientConn::unnamed_statement_is_ours(std::string_view name) const {
  return !name.empty() || unnamed_parsed_ || pool_ == nullptr ||
         pool_->settings().pool_mode == conf::PoolMode::session;
}

bool ClientConn::forward_describe_or_close(const Frame& f) {
  char kind = 0;
  std::string_view name;
  if (f.type == 'D') {
    auto d = pf::Describe::decode(f.body);
    if (!d.ok()) {
      fail("08P01", "invalid Describe message");
      return false;
    }
    kind = d->kind;
    name = d->name;
  } else {
    auto c = pf::Close::decode(f.body);
    if (!c.ok()) {
      fail("08P01", "invalid Close message");
      return false;
    }
    kind = c->kind;
    name = c->name;
  }
  const PreparedStatement* ps = kind == 'S' ? find_prepared(name) : nullptr;
  if (ps == nullptr && kind == 'S' && (is_reserved_statement_name(name) || !unnamed_statement_is_ours(name))) {
    // Another client's server-side statement: a Describe answers 26000 (as for any unknown name), a
    // Close completes without touching it (closing an unknown name is no error).
    std::string reply;
    if (f.type == 'C') {
      protocol::write_close_complete(reply);
      server_->push_synthetic(std::move(reply));
    } else {
      protocol::write_describe(reply, 'S', kNoSuchStatement);
      server_->forward('D', reply);
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
  protocol::write_describe(server_->outbox(), 'S', ps->server_name);
  server_->expect_reply_to('D');
  return true;
}

// Session-state effects of a statement being sent (issue 3). Returns true if it may change session
// state. With session.pinning = "refuse" in transaction mode, a statement that would pin gets a
// replacement in `refusal` that fails on the server with 0A000 (so the server, not us, handles the
// error's effect on the transaction).
bool ClientConn::note_statement(std::string_view sql, std::string& refusal) {
  tracker_.note_activity();
  const SessionCodeCatalog* code = worker_.session_code();
  if (!may_change_session(sql)) {
    // Default-deny: no word of the statement changes the session, so only code it runs unseen could.
    // Without user code in the databases it runs none; otherwise the answer depends only on the
    // statement's shape (its literals name no table or function), memoised per worker.
    if (code != nullptr && code->code_free()) return false;
    if (!worker_.runs_session_code(sql, [&] { return runs_unseen_code(*worker_.classify(sql), code); })) {
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
      if (ch.op == router::SessionOp::discard_all || ch.op == router::SessionOp::deallocate_all) {
        prepared_.clear();
        server_->expect_statements_cleared();
      }
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

// SQL DEALLOCATE of a name the client prepared with the protocol (libpq PQprepare, then DEALLOCATE s1):
// the server knows the statement under its proxy-wide name, so that is what it deallocates; whoever
// needs it next on this server gets it prepared again.
bool ClientConn::deallocate_protocol_statement(const router::Classification& c, std::string& replacement) {
  if (c.statements.size() != 1 || c.statements.front().session_changes.size() != 1) return false;
  const auto& ch = c.statements.front().session_changes.front();
  if (ch.op != router::SessionOp::deallocate) return false;
  auto it = prepared_.find(ch.name);
  if (it == prepared_.end() || server_ == nullptr) return false;
  PreparedRef ps = it->second;
  prepared_.erase(it);
  server_->ensure_prepared(ps->server_name, ps->sql, ps->param_types);
  server_->forget_prepared(ps->server_name);
  replacement = "DEALLOCATE \"" + ps->server_name + "\"";
  return true;
}

void ClientConn::on_probe_row(const std::vector<std::optional<std::string>>& row) {
  ProbeKind kind = probe_kind_;
  probe_kind_ = ProbeKind::none;
  if (kind == ProbeKind::lsn) {
    on_lsn_row(row);
    release_lsn_hold();  // flushed with the probe's reply (on_server_bytes)
    return;
  }
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
    if (after != before[r]) worker_.counters().pinned_clients[r].fetch_add(after ? 1 : -1);
  }
}

void ClientConn::unpin_metrics() {
  for (size_t r = 0; r < kPinReasonCount; ++r) {
    if (tracker_.pinned_for(static_cast<PinReason>(r))) worker_.counters().pinned_clients[r].fetch_sub(1);
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

void ClientConn::on_server_assigned(ServerConn* server) {
  auto now = Clock::now();
  if (state_ == State::waiting) pool_->note_wait(now - state_since_);
  bound_at_ = now;
  server_ = server;
  set_state(State::active);
  cache_observe_ = worker_.result_cache() != nullptr && worker_.snapshot().config->cache.enabled;
  std::string settings_sql;
  if (server->settings_unknown()) {
    // Unseen code may have left settings nobody can list: start from the connection's defaults.
    settings_sql = "RESET ALL;" + build_sync_sql(request_.gucs, GucMap{}, server->defaults());
    server->clear_settings_unknown();
  } else {
    settings_sql = build_sync_sql(request_.gucs, server->applied(), server->defaults());
  }
  GucMap applied_after = settings_sql.empty() ? server->applied() : applied_after_sync(request_.gucs, server->defaults());
  // Another client's SQL-prepared statements go first (nothing to do for apps that never PREPARE).
  std::string sync_sql =
      server->sql_statements().size() == 0 ? std::string() : deallocate_strangers(sql_prepared_, server->sql_statements());
  sync_sql += settings_sql;
  server->attach(this, sync_sql, std::move(applied_after));
  batches_ = 0;
  flushed_since_bind_ = false;
  unnamed_parsed_ = false;
  wrote_ = batch_may_write_ && !pool_->is_replica();
  note_cache_read_target();
  if (!pending_replay_.empty()) replay_batch();
  if (!reading()) start_reading();
  process_session();
}

void ClientConn::on_server_bytes() {
  // A read on a replica keeps its reply here until it is complete (or large): if the replica dies
  // first, the read is re-run on the primary and the client never sees the failed attempt.
  // Below half the backpressure mark: a larger hold would stop the server's reads (process_active)
  // while nothing drains the client, and neither would ever resume.
  const size_t hold_limit =
      std::min<size_t>(64 * 1024, worker_.snapshot().config->proxy.client_buffer_high_water / 2);
  if (server_ != nullptr && pool_ != nullptr && pool_->is_replica() && replica_batch_ok_ &&
      server_->pending_ready() > 0 && outbox().size() < hold_limit) {
    return;
  }
  if (!lsn_hold_ && hold_reply_until_lsn_recorded()) {
    // The reply that ends a write transaction waits until its LSN is the user's floor (on_probe_row).
    lsn_hold_ = true;
    hold_output_from(0);
  }
  if (!outbox().empty()) flushed_since_bind_ = true;
  flush();
}

void ClientConn::on_write_progress() {
  // The client drained below the low-water mark: let the server's bytes flow again, and the client's
  // own requests if they waited for it (replies answered from the cache).
  if (queued_bytes() >= worker_.snapshot().config->proxy.client_buffer_high_water / 2) return;
  if (server_ != nullptr) server_->resume_reading();
  if (!reading() && (state_ == State::idle || state_ == State::active)) process_session();
}

void ClientConn::on_server_drained() {
  if (state_ != State::active || server_ == nullptr) return;
  if (server_->queued_bytes() < worker_.snapshot().config->proxy.client_buffer_high_water / 2) {
    if (!reading()) start_reading();
    process_session();
  }
}

void ClientConn::on_server_at_release_point() {
  if (server_ == nullptr) return;
  probe_kind_ = ProbeKind::none;  // nothing is in flight here: a probe, if any, has ended
  bool session_mode = pool_->settings().pool_mode == conf::PoolMode::session;
  if (session_mode && !shutting_down_) return;  // session mode keeps the server until the client leaves
  if (!session_mode && tracker_.needs_probe()) {
    // The transaction may have changed session state: ask the server what holds before letting go.
    worker_.counters().session_probes.fetch_add(1, std::memory_order_relaxed);
    probe_kind_ = ProbeKind::session;
    std::vector<std::string> known;
    if (tracker_.full_probe_requested()) {
      for (const auto& [name, value] : request_.gucs.items()) known.push_back(name);
    }
    server_->start_probe(tracker_.begin_probe(request_.user, known));
    return;
  }
  bool lsn_probe = false;
  start_lsn_probe_if_needed(lsn_probe);
  if (lsn_probe) return;
  if (tracker_.pinned() && !shutting_down_) {  // LISTEN, advisory lock, temp table ...: keep it
    if (rbuf_.size() > 0 || !reading()) process_session();  // what the client sent during the probe
    return;
  }
  worker_.counters().transactions.fetch_add(1, std::memory_order_relaxed);
  auto held = Clock::now() - bound_at_;
  pool_->note_transaction(held);
  worker_.hot().transaction_duration[static_cast<size_t>(Target::primary)].observe(
      std::chrono::duration<double>(held).count());
  release_lsn_hold();  // never outlives the binding (a probe that returned no row)
  ServerConn* s = server_;
  server_ = nullptr;
  portal_sql_effects_.clear();  // portals and the unnamed statement stay with the server
  unnamed_sql_effects_.reset();
  replica_batch_.clear();
  replica_batch_ok_ = false;
  set_state(State::idle);
  if (session_mode) {
    s->detach();
    s->reset_and_release();
  } else {
    pool_->release(s, true);
  }
  if (shutting_down_) {
    fail("57P01", "terminating connection due to administrator command");
    return;
  }
  if (rbuf_.size() > 0 || !reading()) process_session();
}

void ClientConn::refuse_batch(const char* sqlstate, const std::string& message) {
  if (state_ != State::waiting) return;
  // No server was bound, so the client is outside any transaction: answer its first request with an
  // ERROR as a server would, and keep the connection (a pool of app connections survives a busy spell).
  set_state(State::idle);
  abort_capture();  // a cache miss that never reached a server: its waiters ask Postgres themselves
  protocol::write_error(outbox(), {.severity = "ERROR", .sqlstate = sqlstate, .message = message});
  if (drop_head_query()) {
    protocol::write_ready_for_query(outbox(), 'I');
  } else {
    skip_until_sync_ = true;  // extended protocol: the batch ends at its Sync
  }
  flush();
  if (!reading()) start_reading();
  process_session();
}


void ClientConn::on_parameter_status(std::string_view name, std::string_view value) {
  if (is_tracked_setting(name)) request_.gucs.set(name, value);
  const std::string* told = reported_.get(name);
  if (told != nullptr && *told == value) return;
  reported_.set(name, value);
  protocol::write_parameter_status(outbox(), name, value);
}

void ClientConn::detach_server(bool client_gone) {
  (void)client_gone;
  if (state_ == State::waiting || state_ == State::login_wait) {
    ConnList<ClientConn>::unlink(this);  // no pool may hand it anything now; set_state(closing) follows
  }
  if (server_ == nullptr) return;
  ServerConn* s = server_;
  server_ = nullptr;
  bool session_mode = pool_->settings().pool_mode == conf::PoolMode::session;
  if (s->at_release_point()) {
    if (session_mode || tracker_.pinned() || tracker_.needs_probe()) {
      // Session state may live on this server: DISCARD ALL before anyone else gets it.
      s->detach();
      s->reset_and_release();
    } else {
      pool_->release(s, true);
    }
    return;
  }
  // Mid-transaction or mid-query: never hand this server to anyone. Cancel what runs, then close;
  // the backend rolls back and drops its locks when it sees the connection end.
  if (s->running_query()) worker_.send_cancel(pool_->target(), s->backend_pid(), s->backend_secret());
  pool_->release(s, false);
}

void ClientConn::begin_shutdown() {
  shutting_down_ = true;
  switch (state_) {
    case State::active:
      // Closes at the end of its transaction (on_server_at_release_point). A client that holds its
      // server between transactions (session mode, pinned) may already be there: nothing runs, so
      // it goes now rather than when it next speaks or shutdown_timeout cuts it off.
      if (server_ != nullptr && probe_kind_ == ProbeKind::none && server_->at_release_point()) {
        on_server_at_release_point();
      }
      return;
    case State::closing:
      return;
    default:
      fail("57P01", "terminating connection due to administrator command");
  }
}

}  // namespace pgs::proxy
