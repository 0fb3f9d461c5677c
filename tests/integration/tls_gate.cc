#include "tests/integration/tls_gate.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>

namespace pgs::it {
namespace {

constexpr uint32_t kSslRequestCode = 80877103;
constexpr uint32_t kCancelRequestCode = 80877102;

uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Reads exactly `n` bytes within 5 s; false on EOF, error or timeout.
bool read_exactly(int fd, unsigned char* out, size_t n) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  size_t got = 0;
  while (got < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    ssize_t r = ::recv(fd, out + got, n - got, 0);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

bool send_all(int fd, const unsigned char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

int connect_upstream(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
  if (fd >= 0) ::close(fd);
  return -1;
}

}  // namespace

TlsOnlyGate::TlsOnlyGate(uint16_t upstream_port) : upstream_port_(upstream_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(listen_fd_, 64) != 0) return;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

TlsOnlyGate::~TlsOnlyGate() {
  stopping_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> relays;
  {
    std::lock_guard<std::mutex> lock(mu_);
    relays.swap(relays_);
  }
  for (std::thread& t : relays) t.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void TlsOnlyGate::accept_loop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    relays_.emplace_back([this, fd] { serve(fd); });
  }
}

void TlsOnlyGate::serve(int fd) {
  std::array<unsigned char, 8> head{};
  if (!read_exactly(fd, head.data(), head.size()) || be32(&head[0]) != 8 || be32(&head[4]) != kSslRequestCode) {
    // A CancelRequest is 16 bytes: length 16, then its code.
    if (be32(&head[0]) == 16 && be32(&head[4]) == kCancelRequestCode) {
      ++refused_cancels_;
    } else {
      ++refused_other_;
    }
    ::close(fd);
    return;
  }
  int up = connect_upstream(upstream_port_);
  if (up < 0 || !send_all(up, head.data(), head.size())) {
    if (up >= 0) ::close(up);
    ::close(fd);
    return;
  }
  ++passed_;
  // Both ways until either side closes (or the gate stops).
  std::array<unsigned char, 16384> buf{};
  bool open = true;
  while (open && !stopping_) {
    pollfd p[2] = {{fd, POLLIN, 0}, {up, POLLIN, 0}};
    if (::poll(p, 2, 50) <= 0) continue;
    for (int i = 0; i < 2 && open; ++i) {
      if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      ssize_t n = ::recv(p[i].fd, buf.data(), buf.size(), 0);
      open = n > 0 && send_all(p[1 - i].fd, buf.data(), static_cast<size_t>(n));
    }
  }
  ::close(up);
  ::close(fd);
}

}  // namespace pgs::it
