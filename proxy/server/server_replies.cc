// ServerConn: the reply queue and what the server sends — matching replies to the requests that are
// owed them, swallowing the replies to what the proxy injected, and streaming large rows through.
#include <algorithm>
#include <cctype>

#include "protocol/backend.h"
#include "protocol/writer.h"
#include "proxy/client/client_conn.h"
#include "proxy/core/log.h"
#include "proxy/core/worker.h"
#include "proxy/pool/pool.h"
#include "proxy/server/server_conn.h"

namespace pgs::proxy {

namespace pb = protocol::backend;
using protocol::Frame;

namespace {
// Server messages can be large (a 100 MB bytea in one DataRow): DataRow and CopyData are streamed
// through once their header is known instead of being buffered whole.
constexpr uint32_t kMaxServerMessage = 1u << 30;
constexpr size_t kStreamThreshold = 256 * 1024;
}  // namespace

namespace {
// Rows of a CommandComplete tag: its last number ("SELECT 3", "INSERT 0 1", "UPDATE 7").
uint64_t tag_rows(std::string_view tag) {
  size_t end = tag.size();
  while (end > 0 && tag[end - 1] == '\0') --end;
  size_t start = end;
  while (start > 0 && std::isdigit(static_cast<unsigned char>(tag[start - 1]))) --start;
  uint64_t n = 0;
  for (size_t i = start; i < end && i < start + 19; ++i) n = n * 10 + static_cast<uint64_t>(tag[i] - '0');
  return n;
}
}  // namespace

bool ServerConn::is_stale_plan(const Frame& f) {
  auto err = pb::ErrorFields::decode(f.body);
  return err.ok() && err->sqlstate == "0A000" &&
         err->message.find("cached plan must not change result type") != std::string_view::npos;
}

bool ServerConn::is_fatal(const Frame& f) {
  auto err = pb::ErrorFields::decode(f.body);
  return err.ok() && (err->severity == "FATAL" || err->severity == "PANIC");
}

std::string ServerConn::fatal_message(const Frame& f) {
  auto err = pb::ErrorFields::decode(f.body);
  if (!err.ok()) return "?";
  return std::string(err->message) + " (SQLSTATE " + std::string(err->sqlstate) + ")";
}

void ServerConn::push_synthetic(std::string message) { enqueue(Reply::synthetic, std::move(message)); }

// ---- the reply queue ----

std::string ServerConn::describe_queue() const {
  static constexpr const char* kKinds[] = {"query", "sync", "parse", "bind", "describe", "execute", "close",
                                           "internal_query", "internal_probe", "internal_sql", "injected_parse",
                                           "injected_close", "synthetic"};
  std::string out = "queue=[";
  size_t shown = 0;
  for (const Expected& e : expected_) {
    if (shown++ == 8) {
      out += ",+" + std::to_string(expected_.size() - 8);
      break;
    }
    if (shown > 1) out += ',';
    out += kKinds[static_cast<int>(e.kind)];
  }
  out += "]";
  if (unsynced_) out += " unsynced";
  if (skip_until_sync_) out += " skipping";
  out += std::string(" tx=") + tx_status_;
  return out;
}

void ServerConn::enqueue(Reply kind, std::string data) {
  bool ours = kind == Reply::internal_query || kind == Reply::internal_probe || kind == Reply::internal_sql;
  if (skip_until_sync_ && kind != Reply::sync && !ours) {
    Expected e{kind, std::move(data)};
    drop_entry(e);  // the server will skip this message: it gets no reply
    return;
  }
  if (kind == Reply::sync) skip_until_sync_ = false;
  if (kind == Reply::synthetic && expected_.empty()) {
    batch_client_bytes_ += data.size();
    if (client_ != nullptr) client_->outbox().append(data);
    return;
  }
  if (kind == Reply::query || kind == Reply::sync || kind == Reply::internal_query ||
      kind == Reply::internal_probe || kind == Reply::internal_sql) {
    ++pending_ready_;
  }
  Expected e{kind, std::move(data)};
  if (kind == Reply::query || kind == Reply::sync) e.sent_at = Clock::now();
  expected_.push_back(std::move(e));
}

void ServerConn::emit_synthetics() {
  while (!expected_.empty() && expected_.front().kind == Reply::synthetic) {
    batch_client_bytes_ += expected_.front().data.size();
    if (client_ != nullptr) client_->outbox().append(expected_.front().data);
    expected_.pop_front();
  }
}

// The head request (an Execute or a Query) started COPY FROM STDIN. Until the client's CopyDone or
// CopyFail the server ignores Sync and Flush (libpq sends a Sync right after the Execute, and another
// after CopyDone): the Syncs forwarded in between get no ReadyForQuery and leave the queue, and an
// extended-protocol batch stays open until the Sync after the COPY.
void ServerConn::note_copy_in_started() {
  bool ended = expected_.front().copy_end_after;
  for (auto it = std::next(expected_.begin()); !ended && it != expected_.end();) {
    ended = it->copy_end_after;
    if (it->kind == Reply::sync) {
      --pending_ready_;
      it = expected_.erase(it);
    } else {
      ++it;
    }
  }
  copy_in_open_ = !ended;
  if (expected_.front().kind != Reply::query &&
      std::none_of(expected_.begin(), expected_.end(), [](const Expected& e) { return e.kind == Reply::sync; })) {
    unsynced_ = true;
  }
}

void ServerConn::drop_entry(Expected& e) {
  switch (e.kind) {
    case Reply::parse:
    case Reply::injected_parse:
      if (!e.data.empty()) statements_.erase(e.data);  // skipped: not prepared after all
      break;
    case Reply::injected_close:
      statements_.insert(e.data);  // skipped: still prepared (may briefly exceed the bound)
      break;
    default:
      break;
  }
}

void ServerConn::drop_until_sync() {
  while (!expected_.empty() && expected_.front().kind != Reply::sync) {
    drop_entry(expected_.front());
    expected_.pop_front();
  }
  if (expected_.empty()) skip_until_sync_ = true;
}

bool ServerConn::is_final_reply(Reply kind, char type) {
  switch (kind) {
    case Reply::query:
    case Reply::sync:
      return type == 'Z';
    case Reply::parse:
      return type == '1';
    case Reply::bind:
      return type == '2';
    case Reply::describe:
      return type == 'T' || type == 'n';
    case Reply::execute:
      return type == 'C' || type == 'I' || type == 's';
    case Reply::close:
      return type == '3';
    default:
      return false;
  }
}

// ---- what the server sends ----

void ServerConn::process_active() {
  while (!closing()) {
    protocol::Bytes data = rbuf_.data();
    if (passthrough_remaining_ > 0) {
      if (data.empty()) break;
      size_t n = std::min(passthrough_remaining_, data.size());
      if (client_ != nullptr) client_->outbox().append(reinterpret_cast<const char*>(data.data()), n);
      replied_bytes_ += n;
      batch_client_bytes_ += n;
      rbuf_.consume(n);
      passthrough_remaining_ -= n;
      continue;
    }
    if (discard_remaining_ > 0) {  // the rest of an ErrorResponse/NoticeResponse handled shortened
      if (data.empty()) break;
      size_t n = std::min(discard_remaining_, data.size());
      rbuf_.consume(n);
      discard_remaining_ -= n;
      continue;
    }
    auto r = protocol::split_frame(data, kMaxServerMessage);
    if (auto* more = std::get_if<protocol::NeedMore>(&r)) {
      if (data.size() >= kStreamThreshold && (data[0] == 'E' || data[0] == 'N')) {
        // An error or notice too large to buffer ("invalid input syntax ...: <the 80 MB value>"): the
        // proxy must read its fields (SQLSTATE, severity), so it is handled shortened — its fields as
        // far as they are here, the cut one marked — and the rest of it is dropped as it arrives.
        std::string shortened;
        protocol::write_truncated_notice(shortened, static_cast<char>(data[0]),
                                         protocol::as_string_view(data.subspan(5)), more->at_least - 5);
        discard_remaining_ = more->at_least - data.size();
        rbuf_.consume(data.size());
        auto sr = protocol::split_frame(protocol::Bytes(reinterpret_cast<const uint8_t*>(shortened.data()), shortened.size()),
                                        kMaxServerMessage);
        const Frame* sf = std::get_if<Frame>(&sr);
        if (sf == nullptr) {
          fail("invalid message from server");
          return;
        }
        if (!handle_reply(*sf)) return;
        continue;
      }
      // A large DataRow/CopyData whose header we have: forward what is here and the rest as it comes.
      bool ours = !expected_.empty() && (expected_.front().kind == Reply::internal_query ||
                                         expected_.front().kind == Reply::internal_probe ||
                                         expected_.front().kind == Reply::internal_sql);
      bool streamable = data.size() >= kStreamThreshold && (data[0] == 'D' || data[0] == 'd') && !ours;
      if (streamable && client_ != nullptr) {
        if (client_->observes_replies()) client_->abort_capture();  // too large to store anyway
        client_->outbox().append(reinterpret_cast<const char*>(data.data()), data.size());
        replied_bytes_ += data.size();
        batch_client_bytes_ += data.size();
        passthrough_remaining_ = more->at_least - data.size();
        rbuf_.consume(data.size());
        continue;
      }
      break;
    }
    if (std::holds_alternative<protocol::Invalid>(r)) {
      fail("invalid message from server");
      return;
    }
    const Frame& f = std::get<Frame>(r);
    rbuf_.consume(f.size);  // the frame's views stay valid until the next read
    if (!handle_reply(f)) return;
  }
  if (closing() || state_ != State::active || client_ == nullptr) return;
  client_->on_server_bytes();
  if (sql_sync_done_ && client_ != nullptr) {
    // Before the release check below: the client's held request goes out now (or is answered).
    sql_sync_done_ = false;
    client_->on_sql_sync_done(std::exchange(sql_sync_error_, {}), tx_status_);
    if (closing() || state_ != State::active) return;
  }
  // Backpressure: stop reading the server while the client has too much queued.
  if (client_ != nullptr &&
      client_->queued_bytes() > pool_.worker().snapshot().config->proxy.client_buffer_high_water) {
    stop_reading();
  }
  if (client_ != nullptr && at_release_point()) client_->on_server_at_release_point();
}

bool ServerConn::handle_reply(const Frame& f) {
  char t = f.type;
  bool probe = !expected_.empty() && expected_.front().kind == Reply::internal_probe;
  bool sql_sync = !expected_.empty() && expected_.front().kind == Reply::internal_sql;
  bool internal = probe || sql_sync || (!expected_.empty() && expected_.front().kind == Reply::internal_query);
  if (t == 'S' || t == 'N' || t == 'A') return handle_async_message(f, internal);
  if (t == 'E' && is_fatal(f)) {
    // The server is going away (shutdown, terminate): the connection loss decides what the client
    // sees — a retry elsewhere when nothing of its request reached it yet, an error otherwise.
    fail("server terminated the session: " + fatal_message(f));
    return false;
  }
  if (expected_.empty()) {
    fail(std::string("server sent an unexpected message '") + t + "'");
    return false;
  }
  if (probe) return handle_probe_reply(f);
  if (sql_sync) return handle_sql_sync_reply(f);
  if (internal) return handle_internal_reply(f);
  Expected& head = expected_.front();
  if (head.kind == Reply::injected_parse || head.kind == Reply::injected_close) {
    char expected_type = head.kind == Reply::injected_parse ? '1' : '3';
    if (t == expected_type) {
      expected_.pop_front();
      emit_synthetics();
      return true;
    }
    if (t != 'E') {
      fail(std::string("unexpected reply to an injected message: '") + t + "'");
      return false;
    }
  }
  if (client_ == nullptr) {
    fail("server replied with no client attached");
    return false;
  }
  if (retrying_batch_) return handle_retried_batch_reply(f);
  if (start_stale_plan_retry(f, head)) return true;
  return relay_to_client(f, head);
}

// ParameterStatus, NoticeResponse, NotificationResponse: they answer no request.
bool ServerConn::handle_async_message(const Frame& f, bool internal) {
  if (f.type == 'S') {
    handle_parameter_status(f, internal);
    return !closing();
  }
  // A notice raised by the proxy's own SQL is the proxy's; a notification is always the client's,
  // even when it arrives during an internal query (a session probe after a LISTENer's transaction).
  bool for_client = f.type == 'A' || !internal;
  if (for_client && client_ != nullptr) {
    client_->outbox().append(protocol::as_string_view(f.whole));
    if (client_->observes_replies()) client_->abort_capture();  // a cached reply would lack it
  }
  return true;
}

// Replies to a batch the proxy sends again (retry_batch): swallowed up to its ReadyForQuery.
bool ServerConn::handle_retried_batch_reply(const Frame& f) {
  if (f.type != 'Z') return true;
  --pending_ready_;
  expected_.pop_front();
  retrying_batch_ = false;
  client_->retry_batch();
  return !closing();
}

// "cached plan must not change result type" (DDL changed the statement's result) before anything of
// this batch reached the client, outside a transaction: prepare afresh and run the batch again.
bool ServerConn::start_stale_plan_retry(const Frame& f, Expected& head) {
  if (f.type != 'E' || head.kind != Reply::bind || head.data.empty() || !is_stale_plan(f) ||
      batch_client_bytes_ != 0 || tx_status_ != 'I' || !client_->can_retry_batch()) {
    return false;
  }
  statements_.erase(head.data);
  if (stale_.size() < 1024) stale_.insert(head.data);
  drop_entry(head);
  expected_.pop_front();
  drop_until_sync();
  retrying_batch_ = true;
  return true;
}

// A reply to the client's own request: to its outbox, then what it means for the queue.
bool ServerConn::relay_to_client(const Frame& f, Expected& head) {
  char t = f.type;
  const size_t reply_offset = client_->outbox().size();
  client_->outbox().append(protocol::as_string_view(f.whole));
  replied_bytes_ += f.size;
  batch_client_bytes_ += f.size;
  if (t == 'G' && (head.kind == Reply::execute || head.kind == Reply::query)) {
    note_copy_in_started();
  } else if (t == 'E' || t == 'C') {
    copy_in_open_ = false;  // a COPY, if one ran, is over
  }
  if (t == 'C') {
    request_rows_ += tag_rows(protocol::as_string_view(f.body));
    apply_sql_effect(head, protocol::as_string_view(f.body));
  } else if (t == '3' && head.kind == Reply::close) {
    apply_sql_effect(head, "");  // a protocol Close of a SQL-prepared name
  }
  if (t == 'E') {
    on_error_reply(f, head);  // may drop `head`
  } else if (t == 'Z') {
    if (!on_ready_for_query(f, head)) return false;
  } else if (is_final_reply(head.kind, t)) {
    expected_.pop_front();
  }
  if (client_ != nullptr && client_->observes_replies()) {
    client_->observe_reply(t, f.whole, reply_offset);  // result cache: capture, commit tracking
    if (closing()) return false;
  }
  emit_synthetics();
  return true;
}

void ServerConn::on_error_reply(const Frame& f, Expected& head) {
  if (auto err = pb::ErrorFields::decode(f.body); err.ok()) {
    pool_.worker().metrics().count_error(err->sqlstate);
    if (request_sqlstate_.empty()) request_sqlstate_.assign(err->sqlstate);
  }
  if (head.kind == Reply::query) clear_statements_on_ready_ = false;  // DISCARD ALL failed
  if (head.kind == Reply::bind && !head.data.empty() && is_stale_plan(f)) {
    // "cached plan must not change result type" after DDL: prepare it afresh at its next use.
    statements_.erase(head.data);
    if (stale_.size() < 1024) stale_.insert(head.data);
  }
  // Extended protocol: the server now skips to Sync. An error raised by the Sync itself (the implicit
  // transaction's COMMIT: a deferred constraint) is followed by that Sync's ReadyForQuery: keep it.
  if (head.kind != Reply::query && head.kind != Reply::sync) {
    drop_entry(head);
    expected_.pop_front();
    drop_until_sync();
  }
}

// The end of a request (Query, or a batch's Sync): its statistics, then the queue moves on.
bool ServerConn::on_ready_for_query(const Frame& f, Expected& head) {
  auto rfq = pb::ReadyForQuery::decode(f.body);
  if (!rfq.ok()) {
    fail("malformed ReadyForQuery from server");
    return false;
  }
  tx_status_ = rfq->status;
  if (clear_statements_on_ready_) {
    statements_.clear();
    clear_statements_on_ready_ = false;
  }
  --pending_ready_;
  auto& metrics = pool_.worker().metrics();
  auto target = pool_.is_replica() ? Target::replica : Target::primary;
  auto took = Clock::now() - head.sent_at;
  metrics.query_duration[static_cast<size_t>(target)].observe(std::chrono::duration<double>(took).count());
  ++metrics.queries_by_target[static_cast<size_t>(target)];
  if (head.sql) {
    client_->on_request_done(*head.sql, head.params.get(), took, request_rows_, request_sqlstate_, head.shape);
  } else if (!head.query_text.empty()) {
    client_->on_request_done(head.query_text, nullptr, took, request_rows_, request_sqlstate_, head.shape);
  }
  if (head.query_text.capacity() <= kSpareTextBytes) spare_text_ = std::move(head.query_text);
  request_rows_ = 0;
  request_sqlstate_.clear();
  batch_client_bytes_ = 0;
  expected_.pop_front();
  return true;
}

}  // namespace pgs::proxy
