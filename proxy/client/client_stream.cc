// ClientConn, part 5: client messages larger than the proxy buffers (max_parse_bytes). Such a message
// is not held whole: once its first max_parse_bytes are buffered it is routed conservatively (the
// scanners see an incomplete request: primary, no cache), its header and first bytes go to the server
// (a Bind re-addressed to the server-side statement name, its length adjusted), and the rest of its
// body passes through as it arrives, with backpressure both ways (process_session). Memory per client
// stays bounded by max_parse_bytes + client_buffer_high_water, whatever the message size (≤ 1 GB).
//
// What the proxy cannot read is treated as possibly doing anything: the session state is probed before
// the server is released (a SET, a temporary table, a PREPARE in there), every cached table is
// invalidated when the transaction commits, and nothing of the request is kept for a retry elsewhere.
#include <algorithm>

#include "cache/policy.h"
#include "protocol/frontend.h"
#include "protocol/writer.h"
#include "proxy/client/client_conn.h"
#include "proxy/core/log.h"
#include "proxy/core/worker.h"
#include "proxy/pool/pool.h"
#include "proxy/server/server_conn.h"
#include "proxy/session/session_code.h"

namespace pgs::proxy {

namespace pf = protocol::frontend;
using protocol::Frame;

bool ClientConn::forward_large_message(const pf::Message& m) {
  const Frame& f = m.frame;
  // Nothing of this request can be sent again (a stale plan's retry, a failed replica's re-run).
  routing_.on_forwarded_unbuffered(f.type, pool_->is_replica());
  const bool unreadable_sql = f.type == 'Q' || f.type == 'P' || f.type == 'F';
  if (unreadable_sql) {
    // Not inspected: whatever it does to the session is read back, or reset, like unseen code.
    session_state_.on_unread_statement(worker_.session_code());
    server_->mark_settings_unknown();
    note_unknown_writes();
  }
  switch (f.type) {
    case 'Q':
      pool_->note_query();
      server_->forward('Q', protocol::as_string_view(f.whole));
      return true;
    case 'P': {
      if (!m.as<pf::ParseName>()->name.empty()) {
        // A protocol-level prepared statement is re-prepared from its text on whichever server the
        // client lands on: the proxy would have to keep the whole text. That is the limit the client hits.
        refuse_large_message(f.size + f.streamed, "pgsidecar: a named prepared statement larger than "
                                                  "max_parse_bytes is not supported (" +
                                                      std::to_string(f.size + f.streamed) + " bytes)");
        return false;
      }
      statements_.on_unread_unnamed_parse();  // a "PREPARE q AS ..." in there pins through the probe
      cache_.set_unnamed(nullptr);            // its writes were noted above
      batch_sql_.reset();
      batch_shape_ = 0;
      server_->forward('P', protocol::as_string_view(f.whole));
      return true;
    }
    case 'B':
      return forward_bind(f, *m.as<pf::BindView>());  // re-addressed there; the tail keeps its bytes
    case 'E':
      server_->forward('E', protocol::as_string_view(f.whole));
      return true;
    default:  // CopyData, FunctionCall, and anything else: the server judges it
      server_->forward(f.type, protocol::as_string_view(f.whole));
      return true;
  }
}

// The body bytes of the current large message that are buffered now go to the server (or nowhere, when
// the message is being dropped). Returns true once the message is complete.
bool ClientConn::pump_large_message() {
  size_t n = std::min(inbound_remaining_, rbuf_.size());
  if (n > 0) {
    if (!inbound_discard_ && server_ != nullptr) {
      server_->forward_continuation(protocol::as_string_view(rbuf_.data().first(n)));
    }
    rbuf_.consume(n);
    inbound_remaining_ -= n;
  }
  if (inbound_remaining_ > 0) return false;
  inbound_discard_ = false;
  return true;
}

bool ClientConn::drop_head_query() {
  auto head = protocol::peek_frame_header(rbuf_.data());
  if (!head || (head->type != 'Q' && head->type != 'F')) return false;
  const uint64_t total = uint64_t{head->body_size} + 5;
  const size_t now = static_cast<size_t>(std::min<uint64_t>(total, rbuf_.size()));
  if (now < total && now < size_t{5} + std::min<uint64_t>(head->body_size, worker_.snapshot().config->proxy.max_parse_bytes)) {
    return false;  // not even its inspect window is here: a small message still arriving
  }
  rbuf_.consume(now);
  inbound_remaining_ = static_cast<size_t>(total - now);
  inbound_discard_ = inbound_remaining_ > 0;
  return true;
}

void ClientConn::note_unknown_writes() {
  cache_.note_unknown_writes();  // any table, perhaps DDL (the catalog is re-read after the commit)
}

// A limit was hit by a message the client is still sending. A close now would make the client's
// kernel answer its next bytes with a reset, and the client would lose our ErrorResponse with them
// ("server closed the connection unexpectedly"): so the rest of the message is read and dropped
// first, and the connection closes once the client has sent it all (client_login_timeout bounds a
// client that stops sending).
void ClientConn::refuse_large_message(uint64_t total_bytes, const std::string& message) {
  worker_.metrics().count_protocol_error(ProtocolError::invalid_message);
  LOG_INFO("client " + peer_ + ": " + message);
  protocol::write_error(outbox(), {.severity = "FATAL", .sqlstate = "54000", .message = message});
  flush();
  detach_server(true);  // a server mid-request is closed, never handed on; an idle one goes back
  set_state(State::closing);
  size_t now = static_cast<size_t>(std::min<uint64_t>(total_bytes, rbuf_.size()));
  rbuf_.consume(now);
  drain_before_close_ = total_bytes - now;
  // Draining lets the client read the error (a close with its bytes unread would reset the connection),
  // but nobody sends a gigabyte to be thrown away: a declared length beyond this is a lie or a mistake.
  constexpr uint64_t kMaxDrainBytes = 256ull << 20;
  if (drain_before_close_ == 0 || drain_before_close_ > kMaxDrainBytes) {
    drain_before_close_ = 0;
    close_after_flush();
    return;
  }
  start_reading();
}

void ClientConn::refuse_oversized_message(const protocol::FrameHeader& head, uint32_t max_message_bytes) {
  refuse_large_message(uint64_t{head.body_size} + 5,
                       "pgsidecar: message of " + std::to_string(uint64_t{head.body_size} + 5) +
                           " bytes exceeds max_message_bytes (" + std::to_string(max_message_bytes) + ")");
}

// In State::closing: bytes of a refused message still arriving are dropped; the close follows the last.
void ClientConn::drain_refused_message() {
  size_t n = rbuf_.size();
  rbuf_.consume(n);
  if (drain_before_close_ == 0) return;
  drain_before_close_ -= std::min<uint64_t>(drain_before_close_, n);
  if (drain_before_close_ == 0) close_after_flush();
}

}  // namespace pgs::proxy
