// Stream memory of idle connections (issue 11): the read buffer comes from the thread's BufferPool when
// bytes arrive and goes back once they are consumed; a drained outbox keeps at most kOutboxKeepBytes.
// Real TCP sockets on loopback and a real libuv loop; waits have deadlines, never sleeps.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "proxy/net/event_clock.h"
#include "proxy/net/stream.h"

namespace pgs::proxy {
namespace {

// A stream that consumes `keep_unread` bytes less than it read (0: everything).
class TestStream final : public Stream {
 public:
  explicit TestStream(uv_loop_t* loop) : Stream(loop) {}
  size_t keep_unread = 0;
  bool close_on_data = false;
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
    if (rbuf_.size() > keep_unread) rbuf_.consume(rbuf_.size() - keep_unread);
    if (close_on_data) close();
  }
  void on_read_error(int) override { close(); }
  void on_closed() override { closed = true; }
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
  void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }
  void TearDown() override {
    if (stream_ != nullptr) {
      if (!stream_->closing()) stream_->close();
      ASSERT_TRUE(run_until([&] { return stream_->closed; }));
      delete stream_;
    }
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }
  TestStream& open_stream() {
    stream_ = new TestStream(&loop_);
    EXPECT_EQ(uv_tcp_open(stream_->tcp(), pair_.accepted), 0);
    stream_->start_reading();
    return *stream_;
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

  uv_loop_t loop_{};
  TcpPair pair_;
  TestStream* stream_ = nullptr;
};

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
