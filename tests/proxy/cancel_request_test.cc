// send_cancel_request against a fake server on loopback: the outcome that decides whether the
// canceled server may serve the next client (delivered when the server closes the connection after
// the packet, not_sent without a connection, unknown when no close comes before the deadline).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <array>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "proxy/pool/cancel.h"

namespace pgs::proxy {
namespace {

using std::chrono::milliseconds;

// A listening socket on 127.0.0.1, any port.
struct Listener {
  int fd = -1;
  uint16_t port = 0;
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd, 4) != 0) return;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~Listener() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads exactly 16 bytes (a CancelRequest) from `fd`; false on EOF or error.
bool read_packet(int fd, std::array<unsigned char, 16>& out) {
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::recv(fd, out.data() + got, out.size() - got, 0);
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  return true;
}

uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Runs one request on a fresh loop until every handle is closed; the outcome reported.
std::optional<CancelOutcome> run(uint16_t port, milliseconds deadline) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::optional<CancelOutcome> outcome;
  int calls = 0;
  send_cancel_request(&loop, "127.0.0.1", port, 4242, 77, deadline, [&](CancelOutcome o) {
    outcome = o;
    ++calls;
  });
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0) << "a handle was left open";
  EXPECT_EQ(calls, 1);
  return outcome;
}

TEST(CancelRequest, DeliveredWhenTheServerClosesAfterThePacket) {
  Listener l;
  ASSERT_NE(l.port, 0);
  std::array<unsigned char, 16> packet{};
  bool read_ok = false;
  std::thread server([&] {
    int c = ::accept(l.fd, nullptr, nullptr);
    read_ok = read_packet(c, packet);
    ::close(c);  // what Postgres's cancel child does once it has signalled the backend
  });
  auto outcome = run(l.port, milliseconds(10000));
  server.join();
  ASSERT_TRUE(read_ok);
  EXPECT_EQ(be32(&packet[0]), 16u);
  EXPECT_EQ(be32(&packet[4]), 80877102u);  // the CancelRequest code
  EXPECT_EQ(be32(&packet[8]), 4242u);
  EXPECT_EQ(be32(&packet[12]), 77u);
  EXPECT_EQ(outcome, CancelOutcome::delivered);
}

TEST(CancelRequest, NotSentWhenNothingListens) {
  uint16_t port;
  {
    Listener l;  // a port that was free a moment ago, closed again
    port = l.port;
  }
  EXPECT_EQ(run(port, milliseconds(10000)), CancelOutcome::not_sent);
}

TEST(CancelRequest, UnknownWhenTheServerKeepsTheConnectionOpenPastTheDeadline) {
  Listener l;
  ASSERT_NE(l.port, 0);
  int accepted = -1;
  std::thread server([&] { accepted = ::accept(l.fd, nullptr, nullptr); });
  auto outcome = run(l.port, milliseconds(200));
  server.join();
  if (accepted >= 0) ::close(accepted);
  EXPECT_EQ(outcome, CancelOutcome::unknown);
}

TEST(CancelRequest, NotSentForAnInvalidAddress) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::optional<CancelOutcome> outcome;
  send_cancel_request(&loop, "not an address", 5432, 1, 2, milliseconds(1000),
                      [&](CancelOutcome o) { outcome = o; });
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
  EXPECT_EQ(outcome, CancelOutcome::not_sent);
}

}  // namespace
}  // namespace pgs::proxy
