#include "proxy/stream.h"

#include <algorithm>

#include <cstring>

namespace pgs::proxy {
namespace {
constexpr size_t kMinReadSpace = 64 * 1024;

struct WriteReq {
  uv_write_t req;
  std::string data;
  Stream* owner;
};
}  // namespace

void ReadBuffer::consume(size_t n) {
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;
}

uv_buf_t ReadBuffer::prepare(size_t min_free) {
  if (buf_.size() - end_ < min_free) {
    if (begin_ > 0) {  // compact first
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (buf_.size() - end_ < min_free) buf_.resize(end_ + min_free);
  }
  return uv_buf_init(reinterpret_cast<char*>(buf_.data() + end_), static_cast<unsigned>(buf_.size() - end_));
}

bool ReadBuffer::release_above(size_t limit) {
  if (buf_.size() <= limit || size() >= limit / 2) return false;
  std::vector<uint8_t> kept(buf_.begin() + static_cast<ptrdiff_t>(begin_), buf_.begin() + static_cast<ptrdiff_t>(end_));
  buf_.swap(kept);
  end_ = end_ - begin_;
  begin_ = 0;
  return true;
}

Stream::Stream(uv_loop_t* loop) {
  uv_tcp_init(loop, &tcp_);
  tcp_.data = this;
}

void Stream::start_reading() {
  if (reading_ || closing_) return;
  if (uv_read_start(stream(), &Stream::alloc_cb, &Stream::read_cb) == 0) reading_ = true;
}

void Stream::stop_reading() {
  if (!reading_) return;
  uv_read_stop(stream());
  reading_ = false;
}

void Stream::alloc_cb(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
  auto* self = static_cast<Stream*>(h->data);
  *buf = self->rbuf_.prepare(kMinReadSpace);
}

void Stream::read_cb(uv_stream_t* s, ssize_t nread, const uv_buf_t*) noexcept {
  auto* self = static_cast<Stream*>(s->data);
  if (nread > 0) {
    self->rbuf_.commit(static_cast<size_t>(nread));
    self->bytes_read_ += static_cast<uint64_t>(nread);
    self->on_data();
    // Once one large message has passed, do not keep its buffer for the connection's lifetime.
    self->rbuf_.release_above(self->release_above_);
  } else if (nread < 0) {
    self->stop_reading();
    self->on_read_error(static_cast<int>(nread));
  }
}

void Stream::flush() {
  if (holds_ > 0 && !closing_) {
    hold_at_ = std::min(hold_at_, outbox_.size());  // the outbox was dropped (a replica's held reply)
    if (hold_at_ == 0) return;
    std::string held = outbox_.substr(hold_at_);
    outbox_.resize(hold_at_);
    hold_at_ = 0;
    flush_now();
    if (!closing_) outbox_ = std::move(held);
    return;
  }
  flush_now();
}

void Stream::flush_now() {
  if (outbox_.empty() || closing_) {
    if (closing_) outbox_.clear();
    return;
  }
  bytes_written_ += outbox_.size();
  size_t offset = 0;
  if (queued_bytes_ == 0) {  // nothing in flight: order is kept if we try a direct write
    uv_buf_t b = uv_buf_init(outbox_.data(), static_cast<unsigned>(outbox_.size()));
    int n = uv_try_write(stream(), &b, 1);
    if (n > 0) offset = static_cast<size_t>(n);
    else if (n != UV_EAGAIN && n != UV_ENOSYS) {
      outbox_.clear();
      on_write_error(n);
      return;
    }
  }
  if (offset == outbox_.size()) {
    outbox_.clear();
    if (outbox_.capacity() > release_above_) std::string().swap(outbox_);
    return;
  }
  auto* w = new WriteReq{};
  w->owner = this;
  w->data = offset == 0 ? std::move(outbox_) : outbox_.substr(offset);
  outbox_.clear();
  if (outbox_.capacity() > release_above_) std::string().swap(outbox_);
  w->req.data = w;
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  queued_bytes_ += w->data.size();
  if (int rc = uv_write(&w->req, stream(), &b, 1, &Stream::write_cb); rc != 0) {
    queued_bytes_ -= w->data.size();
    delete w;
    on_write_error(rc);
  }
}

void Stream::write_cb(uv_write_t* req, int status) noexcept {
  auto* w = static_cast<WriteReq*>(req->data);
  Stream* self = w->owner;
  self->queued_bytes_ -= w->data.size();
  delete w;
  if (status < 0) {
    if (!self->closing_) self->on_write_error(status);
    return;
  }
  if (self->close_when_flushed_ && self->queued_bytes_ == 0) {
    self->close();
    return;
  }
  if (!self->closing_) self->on_write_progress();
}

void Stream::close() {
  if (closing_) return;
  closing_ = true;
  reading_ = false;
  outbox_.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Stream::close_cb);
}

void Stream::close_after_flush() {
  flush();
  if (closing_) return;
  if (queued_bytes_ == 0) {
    close();
    return;
  }
  stop_reading();
  close_when_flushed_ = true;
}

void Stream::close_cb(uv_handle_t* h) noexcept {
  // Pending write requests were cancelled before this callback (their callbacks ran with
  // UV_ECANCELED and freed themselves), so nothing refers to the stream any more.
  static_cast<Stream*>(h->data)->on_closed();
}

}  // namespace pgs::proxy
