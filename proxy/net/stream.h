// A TCP stream on a libuv loop: a growable read buffer, an outbox flushed with uv_try_write first and
// uv_write for the rest, and one close path. Thread affinity: the owning worker's loop thread only.
// Lifetime: the object lives until its close callback (on_closed), which may delete it.
// Memory of an idle connection (issue 11): its read buffer is taken from the thread's BufferPool when
// bytes arrive and given back once they were all consumed, and a drained outbox keeps at most
// kOutboxKeepBytes, so 10,000 idle clients cost their objects, not 10,000 read buffers.
#pragma once

#include <uv.h>

#include <algorithm>
#include <memory>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/net/send_ring.h"

namespace pgs::tls {
class TlsContext;
class TlsSession;
struct TlsPeer;
}  // namespace pgs::tls

namespace pgs::proxy {

using tls::TlsContext;
using tls::TlsPeer;
using tls::TlsSession;

// Read blocks of kBlockBytes for one thread (each worker is one loop thread): a free list of at most
// max_free() blocks, the rest freed. Not thread-safe: use for_this_thread() on the thread that reads.
class BufferPool {
 public:
  static constexpr size_t kBlockBytes = 64 * 1024;  // one read's worth (libuv suggests 64 kB)
  static constexpr size_t kDefaultMaxFree = 64;     // 4 MB kept per thread for the next burst of reads
  explicit BufferPool(size_t max_free = kDefaultMaxFree) : max_free_(max_free) {}
  // This thread's pool; nullptr once the thread's pool was destroyed (a buffer freed at thread exit).
  static BufferPool* for_this_thread();

  std::vector<uint8_t> take();                 // size() == kBlockBytes
  void give(std::vector<uint8_t>&& block);     // kept when block-sized and the free list has room
  size_t free_blocks() const { return free_.size(); }
  size_t max_free() const { return max_free_; }
  void trim(size_t keep);                       // frees free blocks beyond `keep`
  // Called once a second (a worker's tick): frees the blocks that stayed on the free list all through
  // the interval (nobody needed them: the free list's low-water mark). Returns the bytes freed.
  size_t release_unused();

 private:
  std::vector<std::vector<uint8_t>> free_;
  size_t max_free_;
  size_t low_water_ = 0;  // fewest free blocks since the last release_unused()
};

class ReadBuffer {
 public:
  ReadBuffer() = default;
  ~ReadBuffer() { release_if_empty(); }
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;
  std::span<const uint8_t> data() const { return {buf_.data() + begin_, end_ - begin_}; }
  size_t size() const { return end_ - begin_; }
  void consume(size_t n);
  // Space for at least `min_free` more bytes at the end (compacts or grows).
  uv_buf_t prepare(size_t min_free);
  void commit(size_t n) { end_ += n; }
  size_t capacity() const { return buf_.size(); }
  // A buffer grown beyond `limit` (one large message) is released, keeping only the bytes still unread,
  // once fewer than limit / 2 are. Returns true when it was.
  bool release_above(size_t limit);
  // With nothing unread, the buffer goes back to the thread's pool (a pool-sized block) or is freed;
  // the next prepare() takes another. Returns true when memory was released.
  bool release_if_empty();
  void clear() { begin_ = end_ = 0; }  // drops what is unread

 private:
  std::vector<uint8_t> buf_;
  size_t begin_ = 0;
  size_t end_ = 0;
};

class Stream : private RingSender, private RingReceiver {
 public:
  // A drained outbox keeps this much capacity for the next reply; a larger one is freed.
  static constexpr size_t kOutboxKeepBytes = 4096;

  explicit Stream(uv_loop_t* loop);
  virtual ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  uv_tcp_t* tcp() { return &tcp_; }
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  uv_loop_t* loop() const { return tcp_.loop; }

  void start_reading();
  void stop_reading();
  // From now on the bytes on the socket are TLS records (server side, handshake pending): what is read
  // is decrypted into the read buffer and the outbox is encrypted on flush. Call with the read buffer
  // empty and the plaintext said before it flushed.
  void start_tls(std::shared_ptr<const TlsContext> context);
  // The same as the client of a TLS session (the proxy to a server): the ClientHello goes out now, and
  // on_tls_ready() is called once the handshake is done; say nothing before it. Call with the read
  // buffer empty. False when the session could not start (see tls_error()).
  bool start_tls_client(std::shared_ptr<const TlsContext> context, const TlsPeer& peer);
  bool tls_active() const { return tls_ != nullptr; }
  // Why the TLS session failed (a handshake error, a certificate that did not verify); empty if it did not.
  std::string_view tls_error() const;
  // The tls-server-end-point channel binding data of this TLS session; empty without TLS.
  std::string_view tls_channel_binding() const;
  bool reading() const { return reading_; }
  // True when the peer closed or reset its side, checked without reading (poll with POLLRDHUP, as
  // Postgres's client_connection_check_interval does). For a stream whose reads are paused: libuv
  // reports the peer's end only once reading resumes, which may be never if the pause waits on a
  // server that in turn waits on this peer.
  bool peer_hung_up();
  // One non-blocking peek: true when the socket has unread bytes, was closed by the peer or failed (false
  // when there is nothing to read). For a connection that should be silent (a server idle in its pool).
  bool has_unread_input();

  // Bytes appended here go out on the next flush().
  std::string& outbox() { return outbox_; }
  // Writes the outbox: as much as the socket takes now, the rest queued with uv_write.
  void flush();
  void send(std::string_view bytes) { outbox_.append(bytes); flush(); }
  // Bytes on their way out, for backpressure: bytes behind an output barrier do not count (they wait
  // for the proxy, not for the peer; counting them could stop the very reads that release them).
  size_t queued_bytes() const { return queued_bytes_ + (holds_ > 0 ? std::min(hold_at_, outbox_.size()) : outbox_.size()); }
  // Output barrier: bytes of the outbox from `offset` on (and everything appended later) stay unsent
  // until release_output(). Order is kept: what was appended before `offset` goes out as usual.
  // Holds nest (a commit's cache invalidation, a read-your-writes floor): the output flows again when
  // each hold was released, from the earliest offset held.
  void hold_output_from(size_t offset) {
    hold_at_ = holds_ == 0 ? offset : std::min(hold_at_, offset);
    ++holds_;
  }
  void release_output() {  // the next flush() sends what no other hold keeps
    if (holds_ > 0) --holds_;
  }
  bool output_held() const { return holds_ > 0; }
  // Read buffer and outbox grown beyond this are freed once drained (buffer_release_bytes).
  void set_buffer_release_bytes(size_t n) { release_above_ = n; }
  // Frees what an idle connection need not keep: an empty read buffer and an empty outbox's capacity.
  void release_idle_buffers();
  size_t outbox_capacity() const { return outbox_.capacity(); }
  size_t read_capacity() const { return rbuf_.capacity(); }
  uint64_t bytes_read() const { return bytes_read_; }
  uint64_t bytes_written() const { return bytes_written_; }

  void close();              // closes now; queued writes are dropped
  // A fresh, unconnected socket in place of this one, for a connection that starts over (a connect to the
  // next address of a host name, a plaintext retry after a failed TLS handshake): the socket is closed,
  // queued writes, the read buffer, the outbox and the TLS session are dropped, and on_reopened() is
  // called (from the close callback) once the new socket can be connected. A close() meanwhile wins:
  // on_closed() follows instead. Nothing may be written or read until on_reopened().
  void reopen();
  void close_after_flush();  // closes once every queued byte is written (or on error)
  bool closing() const { return closing_; }

 protected:
  virtual void on_data() = 0;                 // new bytes are in rbuf_
  virtual void on_read_error(int status) = 0; // EOF (UV_EOF) or an error: the peer is gone
  virtual void on_write_progress() {}         // queued bytes went down
  // A write failed (the peer is gone). The owner must close through its own path so that whoever
  // depends on this connection hears of it; the default just closes.
  virtual void on_write_error(int status) {
    (void)status;
    close();
  }
  virtual void on_closed() = 0;               // the handle is closed; may `delete this`
  virtual void on_tls_ready() {}              // start_tls_client's handshake is done (before on_data)
  virtual void on_reopened() {}               // reopen()'s new socket is ready to connect
  // The TLS session ended with the peer's close_notify (a clean end, not a failure).
  bool tls_closed_by_peer() const;

  ReadBuffer rbuf_;

 private:
  void flush_now();  // flush() without the barrier
  void write_bytes(std::string& data);  // to the socket, in order; leaves `data` empty
  // Through the loop's SendRing when it has one: true when `data` was taken.
  bool write_through_ring(std::string& data);
  void queue_write(std::string&& bytes);
  void on_ring_sent(RingSend* op, int result) override;
  // Reads through the ring (plaintext streams on a loop with one): libuv only reports the socket
  // readable (alloc_cb offers no buffer: UV_ENOBUFS), the ring receives at the end of the turn.
  uv_buf_t ring_recv_space() override;
  void on_ring_received(int result) override;
  void forget_ring_recv();  // closes, reopens: see SendRing::forget_recv
  void on_plain_read(ssize_t nread);  // bytes read into rbuf_ (either way), EOF, or a libuv error
  void drop_ring_send();  // the socket closes: see SendRing::submit_before_close
  // Writes what the socket takes now (bytes written, UV_EAGAIN for none, or a negative libuv error).
  int try_send(const std::string& data);
  bool decrypt_into_rbuf(size_t nread);
  void shrink_outbox();  // the outbox is empty: keep at most kOutboxKeepBytes of capacity
  static void alloc_cb(uv_handle_t* h, size_t suggested, uv_buf_t* buf) noexcept;
  static void read_cb(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void write_cb(uv_write_t* req, int status) noexcept;
  static void close_cb(uv_handle_t* h) noexcept;

  static constexpr size_t kMinReadSpace = 64 * 1024;  // what one read may bring

  uv_tcp_t tcp_{};
  std::unique_ptr<TlsSession> tls_;  // set by start_tls()
  std::string tls_wire_;             // ciphertext of the outbox being flushed (TLS only)
  std::string outbox_;
  SendRing* ring_ = nullptr;       // the loop's, when it has one (found once, at construction)
  RingSend* ring_send_ = nullptr;  // this socket's send in the ring
  bool ring_recv_wanted_ = false;  // readable this turn: the ring receives at its end
  bool undelivered_ = false;       // rbuf_ holds bytes a receive brought after reading stopped
  std::string ring_waiting_;       // bytes flushed while that send was in the kernel: they follow it
  size_t queued_bytes_ = 0;
  uint64_t bytes_read_ = 0;
  uint64_t bytes_written_ = 0;  // handed to the kernel or to uv_write
  bool reading_ = false;
  bool closing_ = false;
  bool reopening_ = false;  // reopen(): the socket is closing and a new one follows
  bool close_when_flushed_ = false;
  size_t release_above_ = 1 << 20;  // see set_buffer_release_bytes()
  int holds_ = 0;       // see hold_output_from()
  size_t hold_at_ = 0;  // outbox offset of the first held byte
};

}  // namespace pgs::proxy
