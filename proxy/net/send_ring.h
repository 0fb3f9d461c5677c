// SendRing: one io_uring per worker loop that carries its sockets' sends, and (since 2026-12-08) their
// receives: see want_recv() below. A Stream hands it the bytes
// of a flush; the ring submits every send queued during the loop's turn in one system call once the
// turn's callbacks are done (uv_check; uv_prepare for what was queued outside the I/O phase, before the
// loop blocks), and each completion comes back to its Stream. Why (issue 11): a relay makes two sends
// per statement, and on the machines these sidecars run on each system call's entry and exit costs
// about as much as the proxy's own work per statement; one submission per turn pays it once for all.
//
// Contracts:
// - At most one send per Stream is in the ring at a time; the Stream keeps what follows it, so a
//   socket's bytes go out in order. Bytes flushed again before the turn ends join the queued send.
// - A queued (not yet submitted) send always names an open socket: a Stream that closes hands its send
//   in first (`submit_before_close`), so a socket number reused by a new connection in the same turn
//   never receives another connection's bytes.
// - A send still in the kernel when its Stream closes is cancelled; its completions only free it.
// - Thread affinity: the owning worker's loop thread (`bind_to_this_thread` in the worker's run()).
//   Streams on loops without a bound ring (tests, other threads) send with send(2) as before.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct io_uring;
struct io_uring_sqe;

namespace pgs::proxy {

struct RingSend;

// Told of its send's completion (Stream implements it).
class RingSender {
 public:
  // `result`: bytes sent, or a negative errno. The sender then calls SendRing::finish or
  // SendRing::send_rest with the op.
  virtual void on_ring_sent(RingSend* op, int result) = 0;

 protected:
  ~RingSender() = default;
};

// Told what its socket's receive brought (Stream implements it). The ring asks for the space first.
class RingReceiver {
 public:
  virtual uv_buf_t ring_recv_space() = 0;       // where this turn's receive puts its bytes
  virtual void on_ring_received(int result) = 0;  // bytes received, 0 at EOF, or a negative errno

 protected:
  ~RingReceiver() = default;
};

// One send in the ring: its bytes (owned: the kernel reads them until the completion), how many went
// out already, and who is told.
struct RingSend {
  std::string bytes;
  size_t sent = 0;
  int fd = -1;
  RingSender* owner = nullptr;          // null once the owner closed: the completions only free it
  io_uring_sqe* unsubmitted = nullptr;  // its SQE while it waits for the end of the turn
  int completions_due = 0;              // its send's, and a cancel's
};

class SendRing {
 public:
  // A ring on `loop` (on the thread that creates the loop's handles, before the loop runs), or nullptr
  // when the kernel refuses io_uring (too old, or a seccomp profile that forbids it): `error` then says
  // why, and the loop's sockets use send(2).
  // `entries`: SQEs one submission holds (more sends in a turn are submitted as the queue fills).
  static std::unique_ptr<SendRing> create(uv_loop_t* loop, std::string& error, unsigned entries = 1024);
  ~SendRing();  // after close() and after the loop stopped: waits (bounded) for what is in the kernel
  SendRing(const SendRing&) = delete;
  SendRing& operator=(const SendRing&) = delete;

  // The ring a Stream of `loop` should use on this thread: nullptr when none is bound for that loop.
  static SendRing* for_loop(const uv_loop_t* loop);
  void bind_to_this_thread();  // the worker's run(), before uv_run
  void unbind_from_this_thread();

  // Queues a send of `bytes`, which are swapped out: the caller gets back an empty string that keeps a
  // finished send's capacity, so an outbox keeps a buffer without a copy. nullptr (bytes untouched)
  // when the queue is full and the kernel refused to take it: the caller sends another way.
  RingSend* send(int fd, std::string& bytes, RingSender* owner);
  // Appends to a send that is still queued (op->unsubmitted): it goes out in the same system call.
  void append(RingSend* op, std::string& bytes);
  // After a partial completion: queues the rest of the same op (false: no room, as for send()).
  bool send_rest(RingSend* op);
  // The owner is done with a completed op.
  void finish(RingSend* op);
  // The owner closes its socket now: a queued send goes to the kernel first (what a direct send would
  // have done by now), and whatever is still there then is cancelled. The owner forgets the op.
  void submit_before_close(RingSend* op);

  // Receives. libuv reports a socket readable (the Stream's alloc_cb offers no buffer, so libuv reads
  // nothing); the ring receives from every socket so reported in one submission when the turn's
  // callbacks are done, before it submits the turn's sends, and hands each its bytes: one system call
  // for all of a turn's reads instead of a read(2) each (bench/probes/recv_ring_probe.c, mode 5).
  // Contracts: a socket is readable when wanted, and libuv's epoll is level-triggered, so a receive
  // that finds nothing (EAGAIN) loses nothing: the next turn reports the socket again. A receiver whose
  // socket closes calls forget_recv() first: it is told nothing more, and no receive of its socket
  // number is submitted after that (one prepared and not taken by the kernel becomes a no-op). One that
  // merely stops reading is still told what its receive brought (Stream keeps it for start_reading()).
  // Receives of readable sockets complete within the submission (MSG_DONTWAIT: never left waiting in
  // the kernel); should one not, the next turn's receives are made with recv(2) until it has, so no
  // socket waits on another's.
  void want_recv(RingReceiver* r, int fd);
  void forget_recv(RingReceiver* r);
  uint64_t receives() const { return receives_; }  // completed receives (tests)

  // Closes the loop handles (the worker's shutdown).
  void close();

 private:
  SendRing() = default;
  io_uring_sqe* next_sqe();
  bool prep(RingSend* op);  // false: no SQE to be had
  void end_turn();  // receive what is wanted, then submit sends and hand out completions until none is queued
  void receive();   // prepares the turn's wanted receives (end_turn submits them with the sends)
  void on_received(size_t index, int result);
  void submit();
  void reap();
  void release(RingSend* op);  // back to the free list, or freed
  void keep_loop_alive();      // the ring's fd handle is referenced while sends are in flight

  std::unique_ptr<io_uring> ring_;
  uv_loop_t* loop_ = nullptr;
  uv_check_t check_{};
  uv_prepare_t prepare_{};
  uv_poll_t poll_{};  // the ring's fd: completions that come after their submission
  bool handles_open_ = false;
  // The SQEs prepared and not yet taken by the kernel, in queue order: a send's op (its SQE may still
  // be changed), a receive (its index in receiving_), or neither for a cancel. A submission the kernel
  // takes only part of leaves the rest here.
  static constexpr size_t kNoRecv = static_cast<size_t>(-1);
  struct QueuedSqe {
    RingSend* op = nullptr;
    size_t recv = kNoRecv;
  };
  std::vector<QueuedSqe> queued_;
  size_t in_flight_ = 0;  // ops with completions due
  std::vector<std::unique_ptr<RingSend>> free_;  // finished ops, small buffers kept (bounded)
  struct WantedRecv {
    RingReceiver* receiver = nullptr;  // null once forgotten
    int fd = -1;
    io_uring_sqe* unsubmitted = nullptr;
  };
  std::vector<WantedRecv> wanted_;    // reported readable this turn, in order
  std::vector<WantedRecv> receiving_; // the batch in the kernel or being handed out
  std::vector<WantedRecv> reading_now_;  // read with recv(2) while a batch is not all back
  size_t receives_due_ = 0;           // completions of receiving_ still to come
  uint64_t receives_ = 0;
};

}  // namespace pgs::proxy
