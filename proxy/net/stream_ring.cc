// Stream's side of the worker's SendRing (send_ring.h): its sends, one in the ring at a time, and its
// receives, asked for when libuv reports the socket readable and made at the end of the loop's turn.
#include <cerrno>
#include <string>
#include <utility>

#include "proxy/net/event_clock.h"
#include "proxy/net/stream.h"

namespace pgs::proxy {

bool Stream::write_through_ring(std::string& data) {
  if (ring_send_ != nullptr) {  // one send per socket in the ring: these bytes join it or follow it
    queued_bytes_ += data.size();
    if (ring_send_->unsubmitted != nullptr) {
      ring_->append(ring_send_, data);
    } else {
      ring_waiting_.append(data);
      data.clear();
    }
    return true;
  }
  // Not while uv_write holds bytes (order) or a connect is in progress (libuv sends them after it).
  if (ring_ == nullptr || data.empty() || queued_bytes_ > 0 || stream()->connect_req != nullptr) return false;
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(stream()), &fd) != 0) return false;  // closed: send() reports it
  ring_send_ = ring_->send(fd, data, this);
  if (ring_send_ == nullptr) return false;
  queued_bytes_ += ring_send_->bytes.size();
  return true;
}

void Stream::on_ring_sent(RingSend* op, int result) {
  if (result == -EAGAIN || result == -EWOULDBLOCK) result = 0;  // no room yet: uv_write waits for it below
  if (result < 0) {
    queued_bytes_ -= (op->bytes.size() - op->sent) + ring_waiting_.size();
    ring_waiting_.clear();
    ring_send_ = nullptr;
    ring_->finish(op);
    if (!closing_ && !reopening_) on_write_error(result);
    return;
  }
  op->sent += static_cast<size_t>(result);
  queued_bytes_ -= static_cast<size_t>(result);
  // Partial: the rest goes in the ring again.
  if (result > 0 && op->sent < op->bytes.size() && ring_->send_rest(op)) return;
  // Done, or no room (the socket's, or the ring's): what is left of this send goes to uv_write, which
  // waits for room, and what waited behind it follows (there too while uv_write holds bytes: order).
  std::string rest = op->bytes.substr(op->sent);
  ring_send_ = nullptr;
  ring_->finish(op);
  std::string waiting;
  waiting.swap(ring_waiting_);
  queued_bytes_ -= rest.size() + waiting.size();
  if (!rest.empty()) queue_write(std::move(rest));
  if (!waiting.empty()) write_bytes(waiting);
  if (closing_ || reopening_) return;
  if (close_when_flushed_ && queued_bytes_ == 0) {
    close();
    return;
  }
  on_write_progress();
}

void Stream::drop_ring_send() {
  if (ring_send_ == nullptr) return;
  queued_bytes_ -= (ring_send_->bytes.size() - ring_send_->sent) + ring_waiting_.size();
  ring_waiting_.clear();
  ring_->submit_before_close(ring_send_);
  ring_send_ = nullptr;
}

uv_buf_t Stream::ring_recv_space() { return rbuf_.prepare(kMinReadSpace); }

void Stream::on_ring_received(int result) {
  ring_recv_wanted_ = false;
  EventClock::Scope clock;  // as in read_cb
  const bool nothing = result == -EAGAIN || result == -EWOULDBLOCK || result == -EINTR;
  if (!reading_) {  // stopped after the receive was asked for: keep its bytes for start_reading()
    if (result > 0) {
      rbuf_.commit(static_cast<size_t>(result));
      bytes_read_ += static_cast<uint64_t>(result);
      undelivered_ = true;
    }
    rbuf_.release_if_empty();  // an end or an error is read again once reading resumes
    return;
  }
  if (result > 0) {
    undelivered_ = false;  // on_data sees them with the new bytes
    on_plain_read(result);
    return;
  }
  if (undelivered_) {  // what came while reading was stopped goes before the end or the error
    undelivered_ = false;
    on_data();
    rbuf_.release_above(release_above_);
    if (closing_ || !reading_) {
      if (closing_) rbuf_.clear();
      rbuf_.release_if_empty();
      return;
    }
  }
  if (nothing) {
    rbuf_.release_if_empty();  // nothing after all: the next turn reports the socket again
    return;
  }
  on_plain_read(result == 0 ? UV_EOF : result);  // libuv's errors are negative errnos on Unix
}

void Stream::forget_ring_recv() {
  if (!ring_recv_wanted_) return;
  ring_recv_wanted_ = false;
  ring_->forget_recv(this);
}

}  // namespace pgs::proxy
