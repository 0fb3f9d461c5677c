#include "proxy/net/stream.h"

#include "proxy/net/event_clock.h"
#include "proxy/net/tls.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include <algorithm>

#include <cstring>

namespace pgs::proxy {
namespace {
struct WriteReq {
  uv_write_t req;
  std::string data;
  Stream* owner;
};
}  // namespace

namespace {
thread_local bool pool_gone = false;  // trivially destructible: readable after the pool's destructor
struct ThreadPool {
  BufferPool pool;
  ~ThreadPool() { pool_gone = true; }
};
}  // namespace

BufferPool* BufferPool::for_this_thread() {
  if (pool_gone) return nullptr;
  thread_local ThreadPool holder;
  return &holder.pool;
}

std::vector<uint8_t> BufferPool::take() {
  if (free_.empty()) return std::vector<uint8_t>(kBlockBytes);
  std::vector<uint8_t> block = std::move(free_.back());
  free_.pop_back();
  low_water_ = std::min(low_water_, free_.size());
  return block;
}

void BufferPool::give(std::vector<uint8_t>&& block) {
  if (block.size() == kBlockBytes && block.capacity() == kBlockBytes && free_.size() < max_free_) {
    free_.push_back(std::move(block));
  }
  std::vector<uint8_t>().swap(block);  // freed here when not kept
}

void BufferPool::trim(size_t keep) {
  while (free_.size() > keep) free_.pop_back();
  if (free_.empty()) std::vector<std::vector<uint8_t>>().swap(free_);
  low_water_ = std::min(low_water_, free_.size());
}

size_t BufferPool::release_unused() {
  size_t unused = std::min(low_water_, free_.size());
  trim(free_.size() - unused);
  low_water_ = free_.size();
  return unused * kBlockBytes;
}

void ReadBuffer::consume(size_t n) {
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;
}

uv_buf_t ReadBuffer::prepare(size_t min_free) {
  if (buf_.empty() && min_free <= BufferPool::kBlockBytes) {
    BufferPool* pool = BufferPool::for_this_thread();
    if (pool != nullptr) buf_ = pool->take();
  }
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

bool ReadBuffer::release_if_empty() {
  if (begin_ != end_ || buf_.capacity() == 0) return false;
  begin_ = end_ = 0;
  BufferPool* pool = BufferPool::for_this_thread();
  if (pool != nullptr && buf_.size() == BufferPool::kBlockBytes) pool->give(std::move(buf_));
  std::vector<uint8_t>().swap(buf_);
  return true;
}

bool ReadBuffer::release_above(size_t limit) {
  if (buf_.size() <= limit || size() >= limit / 2) return false;
  std::vector<uint8_t> kept(buf_.begin() + static_cast<ptrdiff_t>(begin_), buf_.begin() + static_cast<ptrdiff_t>(end_));
  buf_.swap(kept);
  end_ = end_ - begin_;
  begin_ = 0;
  return true;
}

Stream::Stream(uv_loop_t* loop) : ring_(SendRing::for_loop(loop)) {
  uv_tcp_init(loop, &tcp_);
  tcp_.data = this;
}

Stream::~Stream() {
  forget_ring_recv();
  drop_ring_send();
}

void Stream::start_reading() {
  if (reading_ || closing_ || reopening_) return;
  if (uv_read_start(stream(), &Stream::alloc_cb, &Stream::read_cb) == 0) reading_ = true;
  // Bytes a receive brought after reading stopped: a receive at the end of this turn hands them on,
  // with whatever came since (the socket may hold nothing more, so libuv would not report it).
  uv_os_fd_t fd;
  if (reading_ && undelivered_ && ring_ != nullptr && !ring_recv_wanted_ &&
      uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) == 0) {
    ring_recv_wanted_ = true;
    ring_->want_recv(this, fd);
  }
}

void Stream::stop_reading() {
  // A receive the ring was asked for still comes: what it brings waits in rbuf_ (undelivered_) for
  // start_reading(), as bytes libuv had not read yet would wait in the socket.
  if (!reading_) return;
  uv_read_stop(stream());
  reading_ = false;
}

bool Stream::peer_hung_up() {
  uv_os_fd_t fd;
  if (closing_ || uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) != 0) return false;
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

bool Stream::has_unread_input() {
  uv_os_fd_t fd;
  if (closing_) return true;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) != 0) return true;
  if (rbuf_.size() > 0) return true;
  char byte;
  for (;;) {
    ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n >= 0) return true;  // a byte, or 0: the peer closed
    if (errno == EINTR) continue;
    return errno != EAGAIN && errno != EWOULDBLOCK;
  }
}

void Stream::start_tls(std::shared_ptr<const TlsContext> context) {
  tls_ = std::make_unique<TlsSession>(std::move(context));
}

bool Stream::start_tls_client(std::shared_ptr<const TlsContext> context, const TlsPeer& peer) {
  tls_ = std::make_unique<TlsSession>(std::move(context), peer);
  if (tls_->start_handshake() != TlsSession::Status::ok) return false;
  std::string hello;
  tls_->take_output(hello);
  if (!hello.empty()) write_bytes(hello);
  return true;
}

bool Stream::tls_closed_by_peer() const { return tls_ != nullptr && tls_->closed_by_peer(); }

std::string_view Stream::tls_error() const { return tls_ ? std::string_view(tls_->error()) : std::string_view(); }

std::string_view Stream::tls_channel_binding() const {
  return tls_ ? std::string_view(tls_->channel_binding()) : std::string_view();
}

namespace {
// Ciphertext of a TLS stream is read here and handed to OpenSSL at once (alloc_cb and read_cb run back
// to back on the loop's thread), so a TLS connection keeps no ciphertext buffer of its own.
thread_local uint8_t tls_read_scratch[64 * 1024];
}  // namespace

void Stream::alloc_cb(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
  auto* self = static_cast<Stream*>(h->data);
  if (self->tls_) {
    *buf = uv_buf_init(reinterpret_cast<char*>(tls_read_scratch), sizeof tls_read_scratch);
    return;
  }
  if (self->ring_ != nullptr) {  // no buffer: libuv calls read_cb with UV_ENOBUFS and reads nothing
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
  *buf = self->rbuf_.prepare(kMinReadSpace);
}

// TLS: the ciphertext in the scratch buffer is decrypted into rbuf_ (driving the handshake, whose
// replies go out at once). False when the session failed (the peer is then handled as gone).
bool Stream::decrypt_into_rbuf(size_t nread) {
  tls_->feed(tls_read_scratch, nread);
  bool ok = true;
  while (true) {
    uv_buf_t space = rbuf_.prepare(16 * 1024);
    size_t written = 0;
    ok = tls_->read_plain(reinterpret_cast<uint8_t*>(space.base), space.len, written) == TlsSession::Status::ok;
    rbuf_.commit(written);
    if (!ok || written < space.len) break;
  }
  std::string wire;
  tls_->take_output(wire);  // handshake messages; on a failure, the alert that says why
  if (!wire.empty()) write_bytes(wire);
  return ok;
}

void Stream::read_cb(uv_stream_t* s, ssize_t nread, const uv_buf_t*) noexcept {
  auto* self = static_cast<Stream*>(s->data);
  if (nread == UV_ENOBUFS && self->ring_ != nullptr && !self->tls_) {  // readable: see alloc_cb
    uv_os_fd_t fd;
    if (!self->ring_recv_wanted_ && uv_fileno(reinterpret_cast<uv_handle_t*>(&self->tcp_), &fd) == 0) {
      self->ring_recv_wanted_ = true;
      self->ring_->want_recv(self, fd);
    }
    return;
  }
  EventClock::Scope clock;  // what these bytes cause happens "now": one read of the clock
  if (nread > 0 && self->tls_) {
    self->bytes_read_ += static_cast<uint64_t>(nread);
    bool was_ready = self->tls_->handshake_done();
    bool ok = self->decrypt_into_rbuf(static_cast<size_t>(nread));
    if (!ok) {
      self->stop_reading();
      self->on_read_error(UV_EPROTO);
    } else if (!was_ready && self->tls_->handshake_done() && !self->closing_) {
      self->on_tls_ready();
    }
    if (ok && self->rbuf_.size() > 0 && !self->closing_) {
      self->on_data();
      self->rbuf_.release_above(self->release_above_);
    }
    if (self->closing_) self->rbuf_.clear();
    self->rbuf_.release_if_empty();
    return;
  }
  self->on_plain_read(nread);
}

void Stream::on_plain_read(ssize_t nread) {
  if (nread > 0) {
    rbuf_.commit(static_cast<size_t>(nread));
    bytes_read_ += static_cast<uint64_t>(nread);
    on_data();
    // Once one large message has passed, do not keep its buffer for the connection's lifetime.
    rbuf_.release_above(release_above_);
  } else if (nread < 0) {
    stop_reading();
    on_read_error(static_cast<int>(nread));
  }
  // A closed handle reads nothing more: what is left unread is dropped now rather than in the next
  // loop iteration, so that a burst of closing clients (1,000 per epoll_wait) holds no read blocks.
  if (closing_) rbuf_.clear();
  // Everything read was consumed (or nothing came: EAGAIN): the block goes back to the pool.
  rbuf_.release_if_empty();
}

void Stream::release_idle_buffers() {
  rbuf_.release_if_empty();
  if (outbox_.empty()) std::string().swap(outbox_);
  if (tls_wire_.empty()) std::string().swap(tls_wire_);
}

void Stream::shrink_outbox() {
  if (outbox_.capacity() > kOutboxKeepBytes) std::string().swap(outbox_);
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
  if (tls_) {
    bytes_written_ += outbox_.size();
    bool ok = tls_->write_plain(outbox_) == TlsSession::Status::ok;
    outbox_.clear();
    shrink_outbox();
    if (!ok) {
      on_write_error(UV_EPROTO);
      return;
    }
    tls_->take_output(tls_wire_);  // kept between flushes, up to kOutboxKeepBytes, like the outbox
    write_bytes(tls_wire_);
    if (tls_wire_.capacity() > kOutboxKeepBytes) std::string().swap(tls_wire_);
    return;
  }
  bytes_written_ += outbox_.size();
  write_bytes(outbox_);
  shrink_outbox();
}

// What uv_try_write does, with send() instead of write(): a socket needs nothing of the file layer
// that write() goes through (it takes the file-position lock on every call), and this runs for every
// message batch. libuv's own rule is kept: no direct write while a connect is in progress.
int Stream::try_send(const std::string& data) {
  if (stream()->connect_req != nullptr) return UV_EAGAIN;
  uv_os_fd_t fd = -1;
  if (int rc = uv_fileno(reinterpret_cast<uv_handle_t*>(stream()), &fd); rc != 0) return rc;  // closed: an error
  for (;;) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return n > 0 || data.empty() ? static_cast<int>(n) : UV_EAGAIN;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK ? UV_EAGAIN : -errno;
  }
}

// Puts `data` on the socket (through the loop's SendRing, or directly: what the socket does not take
// now goes in a uv_write, in order) and leaves `data` empty.
void Stream::write_bytes(std::string& data) {
  if (write_through_ring(data)) return;
  size_t offset = 0;
  if (queued_bytes_ == 0) {  // nothing in flight: order is kept if we try a direct write
    int n = try_send(data);
    if (n > 0) offset = static_cast<size_t>(n);
    else if (n != UV_EAGAIN && n != UV_ENOSYS) {
      data.clear();
      on_write_error(n);
      return;
    }
  }
  if (offset == data.size()) {
    data.clear();
    return;
  }
  queue_write(offset == 0 ? std::move(data) : data.substr(offset));
  data.clear();
}

// A uv_write of `bytes`: libuv sends them once the socket has room, after what it holds already.
void Stream::queue_write(std::string&& bytes) {
  auto* w = new WriteReq{};
  w->owner = this;
  w->data = std::move(bytes);
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
    if (!self->closing_ && !self->reopening_) self->on_write_error(status);
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
  forget_ring_recv();  // before the socket is closed, as the send below
  closing_ = true;
  reading_ = false;
  outbox_.clear();
  drop_ring_send();  // before the socket is closed: its number may be reused at once
  if (reopening_) return;  // the handle is closing already: its callback sees closing_
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Stream::close_cb);
}

void Stream::reopen() {
  if (closing_ || reopening_) return;
  reopening_ = true;
  reading_ = false;
  close_when_flushed_ = false;
  forget_ring_recv();
  drop_ring_send();
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
  auto* self = static_cast<Stream*>(h->data);
  if (self->reopening_ && !self->closing_) {
    self->reopening_ = false;
    self->tls_.reset();
    self->tls_wire_.clear();
    self->outbox_.clear();
    self->rbuf_.clear();
    self->rbuf_.release_if_empty();
    self->undelivered_ = false;
    self->holds_ = 0;
    self->hold_at_ = 0;
    uv_tcp_init(self->tcp_.loop, &self->tcp_);  // the closed handle keeps its loop pointer
    self->tcp_.data = self;
    self->on_reopened();
    return;
  }
  self->on_closed();
}

}  // namespace pgs::proxy
