// Stream memory of idle connections (issue 11): the read buffer comes from the thread's BufferPool when
// bytes arrive and goes back once they are consumed; a drained outbox keeps at most kOutboxKeepBytes.
// Real TCP sockets on loopback and a real libuv loop; waits have deadlines, never sleeps.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "proxy/net/event_clock.h"
#include "proxy/net/send_ring.h"
#include "proxy/net/stream.h"

namespace pgs::proxy {
namespace {

// A stream that consumes `keep_unread` bytes less than it read (0: everything).
class TestStream final : public Stream {
 public:
  explicit TestStream(uv_loop_t* loop) : Stream(loop) {}
  size_t keep_unread = 0;
  bool close_on_data = false;
  std::string received;              // every byte on_data saw, in order
  int read_error = 0;                // what on_read_error was told
  TestStream* close_other = nullptr;  // on_data closes this stream ...
  TestStream* stop_other = nullptr;   // ... or stops its reading
  // The event clock read at the start and at the end of on_data, with the steady clock moved on between.
  std::chrono::steady_clock::time_point data_clock_first{}, data_clock_last{};
  bool closed = false;
  size_t buffered() const { return rbuf_.size(); }
  size_t read_cap() const { return rbuf_.capacity(); }
  size_t out_cap() { return outbox().capacity(); }

 protected:
  void on_data() override {
    data_clock_first = EventClock::now();
    auto later = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() == later) {
    }
    data_clock_last = EventClock::now();
    received.append(reinterpret_cast<const char*>(rbuf_.data().data()), rbuf_.size() - keep_unread);
    if (rbuf_.size() > keep_unread) rbuf_.consume(rbuf_.size() - keep_unread);
    if (close_other != nullptr) close_other->close();
    if (stop_other != nullptr) stop_other->stop_reading();
    if (close_on_data) close();
  }
  void on_read_error(int status) override {
    read_error = status;
    close();
  }
  void on_write_error(int status) override {
    write_error = status;
    close();
  }
  void on_closed() override { closed = true; }

 public:
  int write_error = 0;
};

// A connected pair on loopback: `peer` is a plain blocking socket, `accepted` goes to the stream.
struct TcpPair {
  int peer = -1;
  int accepted = -1;
  TcpPair() {
    int lst = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(lst, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(lst, 1), 0);
    EXPECT_EQ(::getsockname(lst, reinterpret_cast<sockaddr*>(&a), &len), 0);
    peer = ::socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(::connect(peer, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    accepted = ::accept(lst, nullptr, nullptr);
    ::close(lst);
  }
  ~TcpPair() {
    if (peer >= 0) ::close(peer);
  }
};

class StreamTest : public ::testing::Test {
 protected:
  virtual bool with_ring() const { return false; }
  virtual unsigned ring_entries() const { return 1024; }
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    if (with_ring()) {  // as a worker does: created with the loop, bound while the loop runs
      std::string why;
      ring_ = SendRing::create(&loop_, why, ring_entries());
      ASSERT_NE(ring_, nullptr) << why;
      ring_->bind_to_this_thread();
    }
  }
  void TearDown() override {
    if (stream_ != nullptr) {
      if (!stream_->closing()) stream_->close();
      ASSERT_TRUE(run_until([&] { return stream_->closed; }));
      delete stream_;
    }
    if (ring_) {
      ring_->close();
      uv_run(&loop_, UV_RUN_DEFAULT);
      ring_->unbind_from_this_thread();
      ring_.reset();
    }
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }
  TestStream& open_stream() { return open_stream_on(pair_.accepted, stream_); }
  TestStream& open_stream_on(int fd, TestStream*& slot) {
    slot = new TestStream(&loop_);
    EXPECT_EQ(uv_tcp_open(slot->tcp(), fd), 0);
    slot->start_reading();
    return *slot;
  }
  // What the peer has received so far (without waiting), appended to `into`; false at its EOF.
  static bool peer_read(int peer, std::string& into) {
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(peer, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        into.append(buf, static_cast<size_t>(n));
        continue;
      }
      return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
  }
  // Runs the loop until `done` holds or 5 s passed.
  bool run_until(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      uv_run(&loop_, UV_RUN_NOWAIT);
    }
    return true;
  }
  void peer_send(const std::string& bytes) {
    ASSERT_EQ(::write(pair_.peer, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  // The fixture's stream ("a", returned) and a second one on `other` (`b`), each with bytes waiting
  // before the loop runs ("to a", "to b"): both are readable in the same turn.
  TestStream& open_two_readable(TcpPair& other, TestStream*& b) {
    TestStream& a = open_stream();
    open_stream_on(other.accepted, b);
    EXPECT_EQ(::write(other.peer, "to b", 4), 4);
    peer_send("to a");
    return a;
  }

  uv_loop_t loop_{};
  std::unique_ptr<SendRing> ring_;
  TcpPair pair_;
  TestStream* stream_ = nullptr;
};

// The same streams with the loop's sends through a SendRing ([proxy] io_uring), as the worker runs them.
class RingStreamTest : public StreamTest {
 protected:
  bool with_ring() const override { return true; }
};

// A ring of 4 entries: a turn's sends beyond them are submitted as the queue fills.
class SmallRingStreamTest : public RingStreamTest {
 protected:
  unsigned ring_entries() const override { return 4; }
};

// More sockets send in one turn than the ring holds: each gets its own bytes, in order, and a send that
// was submitted early (the queue filled) is not changed by what its stream flushes later in the turn.
TEST_F(SmallRingStreamTest, MoreSendsInATurnThanTheRingHoldsAllArriveWhole) {
  constexpr int kStreams = 11;
  std::vector<std::unique_ptr<TcpPair>> pairs;
  std::vector<TestStream*> streams(kStreams, nullptr);
  for (int i = 0; i < kStreams; ++i) {
    pairs.push_back(std::make_unique<TcpPair>());
    open_stream_on(pairs.back()->accepted, streams[static_cast<size_t>(i)]);
  }
  for (int i = 0; i < kStreams; ++i) streams[static_cast<size_t>(i)]->send("a" + std::to_string(i) + ";");
  for (int i = 0; i < kStreams; ++i) streams[static_cast<size_t>(i)]->send("b" + std::to_string(i) + ";");
  for (int i = 0; i < kStreams; ++i) {
    const std::string want = "a" + std::to_string(i) + ";b" + std::to_string(i) + ";";
    const int peer = pairs[static_cast<size_t>(i)]->peer;
    std::string got;
    ASSERT_TRUE(run_until([&] { return peer_read(peer, got) && got.size() >= want.size(); }));
    EXPECT_EQ(got, want) << "stream " << i;
  }
  for (TestStream* s : streams) s->close();
  ASSERT_TRUE(run_until([&] {
    for (TestStream* s : streams) {
      if (!s->closed) return false;
    }
    return true;
  }));
  for (TestStream* s : streams) delete s;
}

// A turn's flushes go out together when the turn ends, in order, as one send.
TEST_F(RingStreamTest, FlushesOfOneTurnGoOutInOrderWhenTheTurnEnds) {
  TestStream& s = open_stream();
  s.send("first ");
  s.send("second");
  std::string got;
  ASSERT_TRUE(peer_read(pair_.peer, got));
  EXPECT_EQ(got, "") << "nothing is sent before the loop's turn ends";
  EXPECT_EQ(s.queued_bytes(), 12u);
  ASSERT_TRUE(run_until([&] { return peer_read(pair_.peer, got) && got.size() >= 12; }));
  EXPECT_EQ(got, "first second");
  EXPECT_EQ(s.queued_bytes(), 0u);
  EXPECT_LE(s.out_cap(), 4096u) << "the outbox keeps a small buffer, as with send(2)";
}

// More than the socket takes at once, flushed while the first part is still in the kernel: every byte
// arrives, in order, once the peer reads; the queue empties.
TEST_F(RingStreamTest, ALargeSendAndWhatFollowsItArriveWholeAndInOrder) {
  TestStream& s = open_stream();
  std::string big(8 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 23);
  s.send(big);
  ASSERT_TRUE(run_until([&] { return s.queued_bytes() < big.size(); })) << "the socket takes a first part";
  EXPECT_GT(s.queued_bytes(), 0u) << "8 MB do not fit in a loopback socket's buffers";
  s.send("tail");
  std::string got;
  ASSERT_TRUE(run_until([&] { return peer_read(pair_.peer, got) && got.size() >= big.size() + 4; }));
  EXPECT_EQ(got.size(), big.size() + 4);
  EXPECT_TRUE(got == big + "tail") << "bytes out of order or lost";
  ASSERT_TRUE(run_until([&] { return s.queued_bytes() == 0; }));
}

// A stream that flushes and closes in the same turn (an error, then the close): the peer gets the bytes
// and then the end, as a direct send would have given it.
TEST_F(RingStreamTest, BytesFlushedBeforeACloseReachThePeer) {
  TestStream& s = open_stream();
  s.send("goodbye");
  s.close();
  std::string got;
  ASSERT_TRUE(run_until([&] { return !peer_read(pair_.peer, got); })) << "the peer sees the end";
  EXPECT_EQ(got, "goodbye");
}

// The contract that keeps one client's bytes from another: a send queued by a stream that closes goes to
// its own socket, even when a new connection gets the same socket number in the same turn.
TEST_F(RingStreamTest, AClosedStreamsSendNeverReachesTheConnectionThatReusesItsSocketNumber) {
  TestStream& first = open_stream();
  TcpPair second_pair;
  first.send("first's secret");
  first.close();  // the socket number is free from here on: the next connection gets it
  ASSERT_EQ(::dup2(second_pair.accepted, pair_.accepted), pair_.accepted);
  ::close(second_pair.accepted);
  TestStream* second = nullptr;
  open_stream_on(pair_.accepted, second);
  second->send("second's");
  std::string to_first, to_second;
  ASSERT_TRUE(run_until([&] { return !peer_read(pair_.peer, to_first); }));
  ASSERT_TRUE(run_until([&] { return peer_read(second_pair.peer, to_second) && to_second.size() >= 8; }));
  EXPECT_EQ(to_first, "first's secret");
  EXPECT_EQ(to_second, "second's");
  second->close();
  ASSERT_TRUE(run_until([&] { return second->closed; }));
  delete second;
}

// Reads through the ring ([proxy] io_uring, issue 11): libuv only reports the socket readable and the
// ring receives at the end of the turn, for every readable socket in one submission. The bytes arrive
// whole and in order, across turns.
TEST_F(RingStreamTest, ReadsGoThroughTheRingAndArriveWholeAndInOrder) {
  TestStream& s = open_stream();
  peer_send("hello ");
  ASSERT_TRUE(run_until([&] { return s.received.size() >= 6; }));
  peer_send("world");
  ASSERT_TRUE(run_until([&] { return s.received.size() >= 11; }));
  EXPECT_EQ(s.received, "hello world");
  EXPECT_GE(ring_->receives(), 2u) << "the bytes were read by read(2), not by the ring";
  EXPECT_EQ(s.read_capacity(), 0u) << "the read buffer goes back to the pool once consumed";
}

// The peer's end reaches the stream through the ring's receive as the end of the stream (UV_EOF).
TEST_F(RingStreamTest, ThePeersEndIsAReadErrorThroughTheRing) {
  TestStream& s = open_stream();
  peer_send("last words");
  ASSERT_EQ(::shutdown(pair_.peer, SHUT_WR), 0);
  ASSERT_TRUE(run_until([&] { return s.closed; }));
  EXPECT_EQ(s.received, "last words");
  EXPECT_EQ(s.read_error, UV_EOF);
}

// A peer that resets its end (a server killed, a client's RST): the ring's receive fails with the error,
// and the stream hears it as a read error with libuv's code, as a read(2) would have told it.
TEST_F(RingStreamTest, APeerThatResetsIsAReadErrorThroughTheRing) {
  TestStream& s = open_stream();
  linger hard{1, 0};
  ASSERT_EQ(::setsockopt(pair_.peer, SOL_SOCKET, SO_LINGER, &hard, sizeof hard), 0);
  ::close(pair_.peer);
  pair_.peer = -1;
  ASSERT_TRUE(run_until([&] { return s.closed; }));
  EXPECT_EQ(s.read_error, UV_ECONNRESET) << uv_strerror(s.read_error);
  EXPECT_GE(ring_->receives(), 1u) << "the reset was read by read(2), not by the ring";
  EXPECT_EQ(s.read_capacity(), 0u);
}

// Two streams readable in one turn, each closing the other when it gets data (as a client whose bytes
// end its server's connection): the one handled first closes the other, which then gets nothing, though
// its receive was wanted in the same turn.
TEST_F(RingStreamTest, AStreamClosedInTheTurnItWasReadableGetsNothing) {
  TcpPair other_pair;
  TestStream* b = nullptr;
  TestStream& a = open_two_readable(other_pair, b);
  a.close_other = b;
  b->close_other = &a;
  ASSERT_TRUE(run_until([&] { return a.closed || b->closed; }));
  for (int i = 0; i < 20; ++i) uv_run(&loop_, UV_RUN_NOWAIT);  // turns in which the closed one must not read
  TestStream* closed = a.closed ? &a : b;
  TestStream* open = a.closed ? b : &a;
  EXPECT_TRUE(closed->received.empty()) << "a closed stream got '" << closed->received << "'";
  EXPECT_EQ(open->received, open == &a ? "to a" : "to b");
  EXPECT_FALSE(open->closed);
  a.close_other = b->close_other = nullptr;
  b->close();
  ASSERT_TRUE(run_until([&] { return b->closed; }));
  delete b;
}

// A stream whose reading is stopped in the turn its socket was reported readable (backpressure, as a
// client stops reading while its server is slow) reads nothing until it resumes, and then all of it.
TEST_F(RingStreamTest, AStreamStoppedInTheTurnItWasReadableReadsOnlyOnceItResumes) {
  TcpPair other_pair;
  TestStream* b = nullptr;
  TestStream& a = open_two_readable(other_pair, b);
  a.stop_other = b;
  b->stop_other = &a;
  ASSERT_TRUE(run_until([&] { return !a.received.empty() || !b->received.empty(); }));
  for (int i = 0; i < 20; ++i) uv_run(&loop_, UV_RUN_NOWAIT);  // turns in which the stopped one must not read
  TestStream* stopped = a.received.empty() ? &a : b;
  EXPECT_TRUE(stopped->received.empty()) << "both read, though one stopped the other";
  EXPECT_FALSE(stopped->reading());
  a.stop_other = b->stop_other = nullptr;
  stopped->start_reading();
  ASSERT_TRUE(run_until([&] { return stopped->received.size() == 4; }));
  EXPECT_EQ(a.received, "to a");
  EXPECT_EQ(b->received, "to b");
  b->close();
  ASSERT_TRUE(run_until([&] { return b->closed; }));
  delete b;
}

// A peer that reset its end: the ring's send fails and the stream hears it as a write error (the
// owner closes through its own path, so whoever waits on the connection learns of it). The stream
// does not read, so only the send in the ring keeps the loop running, as a uv_write would.
TEST_F(RingStreamTest, ASendToAPeerThatResetIsAWriteError) {
  TestStream& s = open_stream();
  s.stop_reading();  // the reset must reach the stream through its send, not its read
  linger hard{1, 0};
  ASSERT_EQ(::setsockopt(pair_.peer, SOL_SOCKET, SO_LINGER, &hard, sizeof hard), 0);
  ::close(pair_.peer);
  pair_.peer = -1;
  ASSERT_TRUE(run_until([&] {
    if (!s.closing()) s.send("into a reset socket");
    return s.write_error != 0;
  }));
  EXPECT_TRUE(s.write_error == UV_ECONNRESET || s.write_error == UV_EPIPE) << uv_strerror(s.write_error);
  EXPECT_TRUE(s.closing());
  EXPECT_EQ(s.queued_bytes(), 0u);
}

// A send the peer does not read (the rest waits in the kernel, or in uv_write where the kernel answers
// EAGAIN) does not keep the socket open after the close: the peer sees the end.
TEST_F(RingStreamTest, ASendThePeerDoesNotReadKeepsNoSocketOpenAfterTheClose) {
  TestStream& s = open_stream();
  s.send(std::string(8 << 20, 'z'));
  ASSERT_TRUE(run_until([&] { return s.queued_bytes() < (8u << 20); }));
  s.close();
  std::string got;
  ASSERT_TRUE(run_until([&] { return !peer_read(pair_.peer, got); })) << "the peer must see the end";
  EXPECT_LT(got.size(), 8u << 20) << "what was queued behind the socket's buffers is dropped";
}

TEST_F(StreamTest, ConsumedReadBufferIsReleased) {
  TestStream& s = open_stream();
  peer_send(std::string(300, 'q'));
  ASSERT_TRUE(run_until([&] { return s.bytes_read() == 300; }));
  EXPECT_EQ(s.buffered(), 0u);
  EXPECT_EQ(s.read_cap(), 0u) << "an idle connection keeps no read buffer";
}

TEST_F(StreamTest, UnconsumedBytesKeepTheirBuffer) {
  TestStream& s = open_stream();
  s.keep_unread = 5;  // half a message: must survive until the rest arrives
  peer_send("hello world");
  ASSERT_TRUE(run_until([&] { return s.bytes_read() == 11; }));
  EXPECT_EQ(s.buffered(), 5u);
  EXPECT_GE(s.read_cap(), 5u);
  s.keep_unread = 0;
  peer_send("!");
  ASSERT_TRUE(run_until([&] { return s.bytes_read() == 12; }));
  EXPECT_EQ(s.buffered(), 0u);
  EXPECT_EQ(s.read_cap(), 0u);
}

TEST_F(StreamTest, ClosingStreamDropsItsReadBufferAtOnce) {
  TestStream& s = open_stream();
  s.keep_unread = 1;  // a Terminate, say, left unconsumed by a handler that closes
  s.close_on_data = true;
  peer_send("X1234");
  ASSERT_TRUE(run_until([&] { return s.bytes_read() == 5; }));
  EXPECT_EQ(s.read_cap(), 0u) << "released in the read callback, not only when the handle is gone";
}

TEST_F(StreamTest, DrainedOutboxKeepsLittleCapacity) {
  TestStream& s = open_stream();
  s.send(std::string(100 * 1024, 'r'));  // one large reply
  ASSERT_TRUE(run_until([&] { return s.queued_bytes() == 0; }));
  EXPECT_LE(s.out_cap(), 4096u) << "a drained outbox keeps at most kOutboxKeepBytes";
}

TEST_F(StreamTest, ReleaseIdleBuffersFreesTheOutbox) {
  TestStream& s = open_stream();
  s.send("small reply");
  ASSERT_TRUE(run_until([&] { return s.queued_bytes() == 0; }));
  s.release_idle_buffers();
  EXPECT_EQ(s.out_cap(), std::string().capacity());
  EXPECT_EQ(s.read_cap(), 0u);
}

TEST(BufferPoolTest, BlocksAreReusedAndTheFreeListIsBounded) {
  BufferPool pool(2);
  auto a = pool.take();
  auto b = pool.take();
  auto c = pool.take();
  EXPECT_EQ(a.size(), BufferPool::kBlockBytes);
  const uint8_t* a_data = a.data();
  pool.give(std::move(a));
  EXPECT_EQ(pool.free_blocks(), 1u);
  auto again = pool.take();
  EXPECT_EQ(again.data(), a_data) << "a given block is handed out again";
  pool.give(std::move(again));
  pool.give(std::move(b));
  pool.give(std::move(c));  // beyond max_free: freed
  EXPECT_EQ(pool.free_blocks(), 2u);
  pool.give(std::vector<uint8_t>(10));  // not a block: freed
  EXPECT_EQ(pool.free_blocks(), 2u);
  pool.trim(0);
  EXPECT_EQ(pool.free_blocks(), 0u);
}

TEST(BufferPoolTest, BlocksNobodyTookInAnIntervalAreFreed) {
  BufferPool pool(8);
  std::vector<std::vector<uint8_t>> out;
  for (int i = 0; i < 4; ++i) out.push_back(pool.take());
  for (auto& b : out) pool.give(std::move(b));
  out.clear();
  EXPECT_EQ(pool.free_blocks(), 4u);
  EXPECT_EQ(pool.release_unused(), 0u) << "the blocks were in use during this interval";
  out.push_back(pool.take());  // the next interval needs one of the four
  pool.give(std::move(out.back()));
  EXPECT_EQ(pool.release_unused(), 3 * BufferPool::kBlockBytes);
  EXPECT_EQ(pool.free_blocks(), 1u);
  EXPECT_EQ(pool.release_unused(), BufferPool::kBlockBytes) << "untouched for a whole interval";
  EXPECT_EQ(pool.free_blocks(), 0u);
}


// Everything the bytes of one read callback cause is stamped with one instant (one clock read).
TEST_F(StreamTest, OneReadCallbackSeesOneInstant) {
  TestStream& s = open_stream();
  auto before = std::chrono::steady_clock::now();
  peer_send("x");
  ASSERT_TRUE(run_until([&] { return s.bytes_read() == 1; }));
  EXPECT_GE(s.data_clock_first, before);
  EXPECT_EQ(s.data_clock_first, s.data_clock_last);
  EXPECT_GT(EventClock::now(), s.data_clock_last) << "outside the callback the clock reads the time again";
}

// Outside any scope EventClock is the steady clock; a scope freezes it at its opening, nested scopes
// keep the outer instant, and the last scope closed lets it move again.
TEST(EventClockTest, ScopesFreezeTheInstantAndNeverOutliveThemselves) {
  auto advance_past = [](std::chrono::steady_clock::time_point t) {
    while (std::chrono::steady_clock::now() <= t) {
    }
  };
  auto free1 = EventClock::now();
  advance_past(free1);
  EXPECT_GT(EventClock::now(), free1);
  std::chrono::steady_clock::time_point opened;
  {
    EventClock::Scope outer;
    opened = EventClock::now();
    advance_past(opened);
    EXPECT_EQ(EventClock::now(), opened);
    {
      EventClock::Scope inner;
      advance_past(opened);
      EXPECT_EQ(EventClock::now(), opened) << "a nested scope keeps the outer instant";
    }
    EXPECT_EQ(EventClock::now(), opened);
  }
  EXPECT_GT(EventClock::now(), opened);
}

}  // namespace
}  // namespace pgs::proxy
