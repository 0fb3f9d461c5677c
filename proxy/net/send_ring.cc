#include "proxy/net/send_ring.h"

#include <liburing.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace pgs::proxy {

namespace {
constexpr size_t kMaxFreeOps = 256;         // finished ops kept for reuse
constexpr size_t kKeepBufferBytes = 4096;   // ... with at most this much buffer each (Stream::kOutboxKeepBytes)
constexpr uint64_t kCancelTag = 1;          // a cancel's user_data: its op's address with this bit set
constexpr uint64_t kRecvTag = 2;            // a receive's user_data: its index in receiving_ << 2, this set
constexpr uint64_t kTagBits = 3;
thread_local SendRing* t_bound = nullptr;
thread_local const uv_loop_t* t_bound_loop = nullptr;
}  // namespace

std::unique_ptr<SendRing> SendRing::create(uv_loop_t* loop, std::string& error, unsigned entries) {
  std::unique_ptr<SendRing> r(new SendRing());
  r->ring_ = std::make_unique<io_uring>();
  if (int rc = io_uring_queue_init(entries, r->ring_.get(), 0); rc < 0) {
    error = std::string("io_uring_queue_init: ") + std::strerror(-rc);
    r->ring_.reset();
    return nullptr;
  }
  r->loop_ = loop;
  if (int rc = uv_poll_init(loop, &r->poll_, r->ring_->ring_fd); rc != 0) {  // first: nothing to undo
    error = std::string("uv_poll_init on the ring: ") + uv_strerror(rc);
    io_uring_queue_exit(r->ring_.get());
    r->ring_.reset();
    return nullptr;
  }
  uv_check_init(loop, &r->check_);
  uv_prepare_init(loop, &r->prepare_);
  r->check_.data = r->prepare_.data = r->poll_.data = r.get();
  uv_check_start(&r->check_, [](uv_check_t* h) { static_cast<SendRing*>(h->data)->end_turn(); });
  uv_prepare_start(&r->prepare_, [](uv_prepare_t* h) { static_cast<SendRing*>(h->data)->end_turn(); });
  uv_poll_start(&r->poll_, UV_READABLE,
                [](uv_poll_t* h, int, int) { static_cast<SendRing*>(h->data)->end_turn(); });
  // None of them keeps the loop alive, but for sends in flight (keep_loop_alive), as a uv_write would.
  uv_unref(reinterpret_cast<uv_handle_t*>(&r->check_));
  uv_unref(reinterpret_cast<uv_handle_t*>(&r->prepare_));
  uv_unref(reinterpret_cast<uv_handle_t*>(&r->poll_));
  r->handles_open_ = true;
  return r;
}

SendRing::~SendRing() {
  if (!ring_) return;
  // Ops still in the kernel (their sockets were closed, their sends cancelled) hold buffers the kernel
  // may read: wait for their completions, bounded; what does not complete in time is left allocated.
  for (int i = 0; i < 100 && in_flight_ > 0; ++i) {
    submit();
    __kernel_timespec wait{0, 10'000'000};
    io_uring_cqe* cqe = nullptr;
    if (io_uring_wait_cqe_timeout(ring_.get(), &cqe, &wait) == 0) reap();
  }
  io_uring_queue_exit(ring_.get());
}

SendRing* SendRing::for_loop(const uv_loop_t* loop) { return t_bound_loop == loop ? t_bound : nullptr; }

void SendRing::bind_to_this_thread() {
  t_bound = this;
  t_bound_loop = loop_;
}

void SendRing::unbind_from_this_thread() {
  if (t_bound == this) {
    t_bound = nullptr;
    t_bound_loop = nullptr;
  }
}

io_uring_sqe* SendRing::next_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  if (sqe == nullptr) {  // the queue is full: submit what it holds (those sockets are all open now)
    submit();
    sqe = io_uring_get_sqe(ring_.get());
  }
  return sqe;  // null only when the kernel refused that submission
}

bool SendRing::prep(RingSend* op) {
  io_uring_sqe* sqe = op->unsubmitted != nullptr ? op->unsubmitted : next_sqe();
  if (sqe == nullptr) return false;
  io_uring_prep_send(sqe, op->fd, op->bytes.data() + op->sent, op->bytes.size() - op->sent, MSG_NOSIGNAL);
  io_uring_sqe_set_data(sqe, op);
  if (op->unsubmitted == nullptr) {
    op->unsubmitted = sqe;
    queued_.push_back({op});
    ++op->completions_due;
    ++in_flight_;
    keep_loop_alive();
  }
  return true;
}

void SendRing::keep_loop_alive() {
  if (!handles_open_) return;
  if (in_flight_ > 0) {
    uv_ref(reinterpret_cast<uv_handle_t*>(&poll_));
  } else {
    uv_unref(reinterpret_cast<uv_handle_t*>(&poll_));
  }
}

RingSend* SendRing::send(int fd, std::string& bytes, RingSender* owner) {
  if (io_uring_sq_space_left(ring_.get()) == 0) {
    submit();
    if (io_uring_sq_space_left(ring_.get()) == 0) return nullptr;  // refused: the caller uses send(2)
  }
  RingSend* op = nullptr;
  if (!free_.empty()) {
    op = free_.back().release();
    free_.pop_back();
  } else {
    op = new RingSend();
  }
  op->bytes.clear();
  op->bytes.swap(bytes);
  op->sent = 0;
  op->fd = fd;
  op->owner = owner;
  prep(op);  // has room: checked above
  return op;
}

void SendRing::append(RingSend* op, std::string& bytes) {
  op->bytes.append(bytes);
  bytes.clear();
  prep(op);  // the same SQE, pointed at the grown buffer
}

bool SendRing::send_rest(RingSend* op) { return prep(op); }

void SendRing::finish(RingSend* op) {
  op->owner = nullptr;
  if (op->completions_due == 0) release(op);
}

void SendRing::submit_before_close(RingSend* op) {
  op->owner = nullptr;
  if (op->unsubmitted != nullptr) submit();
  if (op->unsubmitted != nullptr) {  // the kernel did not take it (see submit()): never send it
    io_uring_prep_nop(op->unsubmitted);
    io_uring_sqe_set_data(op->unsubmitted, op);
  }
  // Sent in full by now, or waiting for room in a socket nobody reads any more: cancel it (a cancel of
  // a send that completed finds nothing). The op is freed once both completions came back.
  io_uring_sqe* sqe = next_sqe();
  if (sqe == nullptr) return;  // no cancel: the send ends with its socket's peer (or the worker)
  io_uring_prep_cancel64(sqe, reinterpret_cast<uint64_t>(op), 0);
  io_uring_sqe_set_data64(sqe, reinterpret_cast<uint64_t>(op) | kCancelTag);
  ++op->completions_due;
  queued_.push_back({});
  ++in_flight_;
  keep_loop_alive();
}

void SendRing::want_recv(RingReceiver* r, int fd) { wanted_.push_back({r, fd, nullptr}); }

void SendRing::forget_recv(RingReceiver* r) {
  for (auto* list : {&wanted_, &reading_now_}) {
    for (WantedRecv& w : *list) {
      if (w.receiver == r) w.receiver = nullptr;
    }
  }
  for (size_t i = 0; i < receiving_.size(); ++i) {
    WantedRecv& w = receiving_[i];
    if (w.receiver != r) continue;
    w.receiver = nullptr;
    if (w.unsubmitted != nullptr) {  // its socket number may be reused before the kernel takes it
      io_uring_prep_nop(w.unsubmitted);
      io_uring_sqe_set_data64(w.unsubmitted, (static_cast<uint64_t>(i) << 2) | kRecvTag);
    }
  }
}

void SendRing::receive() {
  if (wanted_.empty()) return;
  if (receives_due_ > 0) {  // the last batch is not all back (see want_recv): this turn's, with recv(2)
    reading_now_.swap(wanted_);
    wanted_.clear();
    for (WantedRecv& w : reading_now_) {  // forget_recv() reaches these too
      if (w.receiver == nullptr) continue;
      RingReceiver* r = w.receiver;
      w.receiver = nullptr;
      const uv_buf_t space = r->ring_recv_space();
      const ssize_t n = ::recv(w.fd, space.base, space.len, MSG_DONTWAIT);
      r->on_ring_received(n >= 0 ? static_cast<int>(n) : -errno);
    }
    reading_now_.clear();
    return;
  }
  receiving_.swap(wanted_);
  wanted_.clear();
  for (size_t i = 0; i < receiving_.size(); ++i) {
    WantedRecv& w = receiving_[i];
    if (w.receiver == nullptr) continue;
    io_uring_sqe* sqe = next_sqe();  // a full queue submits what it holds, these receives too
    if (sqe == nullptr) {  // refused: nothing read, the next turn reports the socket again
      RingReceiver* r = w.receiver;
      w.receiver = nullptr;
      r->on_ring_received(-EAGAIN);
      continue;
    }
    const uv_buf_t space = w.receiver->ring_recv_space();
    io_uring_prep_recv(sqe, w.fd, space.base, space.len, MSG_DONTWAIT);
    io_uring_sqe_set_data64(sqe, (static_cast<uint64_t>(i) << 2) | kRecvTag);
    w.unsubmitted = sqe;
    queued_.push_back({nullptr, i});
    ++receives_due_;
    ++in_flight_;
  }
  if (receives_due_ == 0) receiving_.clear();
  keep_loop_alive();
}

void SendRing::submit() {
  if (queued_.empty()) return;
  // Sends to sockets with room complete within this call. The kernel takes SQEs in queue order and may
  // take only the first ones (it ran short of memory for requests, or one failed to be prepared): those
  // it did not take stay queued, still changeable, and a stream that closes meanwhile turns its own
  // into a no-op (submit_before_close), so no SQE reaches the kernel after its socket number was
  // freed. A refusal of all (negative) leaves everything queued for the next turn.
  const int taken = io_uring_submit(ring_.get());
  if (taken <= 0) return;
  const size_t n = std::min(static_cast<size_t>(taken), queued_.size());
  for (size_t i = 0; i < n; ++i) {
    if (queued_[i].op != nullptr) queued_[i].op->unsubmitted = nullptr;
    if (queued_[i].recv != kNoRecv) receiving_[queued_[i].recv].unsubmitted = nullptr;
  }
  queued_.erase(queued_.begin(), queued_.begin() + static_cast<ptrdiff_t>(n));
}

void SendRing::reap() {
  io_uring_cqe* cqe = nullptr;
  while (io_uring_peek_cqe(ring_.get(), &cqe) == 0) {
    const uint64_t data = io_uring_cqe_get_data64(cqe);
    const int result = cqe->res;
    io_uring_cqe_seen(ring_.get(), cqe);
    if ((data & kTagBits) == kRecvTag) {
      on_received(static_cast<size_t>(data >> 2), result);
      continue;
    }
    auto* op = reinterpret_cast<RingSend*>(data & ~kCancelTag);
    --op->completions_due;
    --in_flight_;
    if ((data & kCancelTag) == 0) {
      if (op->owner != nullptr) {
        op->owner->on_ring_sent(op, result);  // calls finish() or send_rest()
        continue;
      }
    }
    if (op->owner == nullptr && op->completions_due == 0) release(op);
  }
  keep_loop_alive();
}

void SendRing::on_received(size_t index, int result) {
  --in_flight_;
  --receives_due_;
  ++receives_;
  if (index < receiving_.size() && receiving_[index].receiver != nullptr) {
    RingReceiver* r = receiving_[index].receiver;
    receiving_[index].receiver = nullptr;
    r->on_ring_received(result);  // may close others of the batch: forget_recv() nulls theirs
  }
  if (receives_due_ == 0) receiving_.clear();
}

void SendRing::end_turn() {
  receive();
  // Completions may queue more sends (the rest of a partial one, bytes that waited behind it): again,
  // a bounded number of times.
  for (int round = 0; round < 4; ++round) {
    submit();
    reap();
    if (queued_.empty()) return;
  }
  submit();  // never left queued while the loop blocks: their completions wake it through the ring's fd
}

void SendRing::release(RingSend* op) {
  if (free_.size() >= kMaxFreeOps) {
    delete op;
    return;
  }
  op->bytes.clear();
  if (op->bytes.capacity() > kKeepBufferBytes) std::string().swap(op->bytes);
  free_.emplace_back(op);
}

void SendRing::close() {
  if (!handles_open_) return;
  handles_open_ = false;
  submit();
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), nullptr);
}

}  // namespace pgs::proxy
