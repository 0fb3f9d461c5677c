// A blocking loopback connection for integration tests: send bytes, read whole backend frames.
// Every read has a deadline (SO_RCVTIMEO), so a silent peer fails the test instead of hanging it.
#pragma once

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "protocol/backend.h"
#include "protocol/frame.h"
#include "tests/support/net.h"
#include "tests/support/wait.h"

namespace pgs::protocol::test {

// An owned copy of one typed message.
struct OwnedFrame {
  char type = '\0';
  std::string body;
  Bytes bytes() const { return {reinterpret_cast<const uint8_t*>(body.data()), body.size()}; }
};

class WireConn {
 public:
  explicit WireConn(int fd) : fd_(fd) { set_timeout(10); }
  WireConn(const WireConn&) = delete;
  WireConn& operator=(const WireConn&) = delete;
  ~WireConn() {
    if (fd_ >= 0) ::close(fd_);
  }

  // Connects to 127.0.0.1:port, retrying until `deadline` (the dev services may still be starting).
  static std::optional<int> connect_until(uint16_t port, std::chrono::steady_clock::time_point deadline) {
    int fd = -1;
    bool up = ::pgs::test::wait_until([&] { return (fd = ::pgs::test::connect_loopback(port)) >= 0; },
                                      ::pgs::test::time_left(deadline), std::chrono::milliseconds(100));
    if (!up) return std::nullopt;
    return fd;
  }

  bool send(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  // Next typed frame, or std::nullopt on timeout, EOF or an invalid frame.
  std::optional<OwnedFrame> read_frame() {
    for (;;) {
      FrameResult r = split_frame(view(), 1u << 26);
      if (auto* f = std::get_if<Frame>(&r)) {
        OwnedFrame out{f->type, std::string(as_string_view(f->body))};
        buf_.erase(0, f->size);
        return out;
      }
      if (std::holds_alternative<Invalid>(r) || !fill()) return std::nullopt;
    }
  }

  // Next startup-phase packet (server side of a test), as code + body.
  std::optional<std::pair<uint32_t, std::string>> read_startup() {
    for (;;) {
      StartupResult r = split_startup(view());
      if (auto* f = std::get_if<StartupFrame>(&r)) {
        auto out = std::make_pair(f->code, std::string(as_string_view(f->body)));
        buf_.erase(0, f->size);
        return out;
      }
      if (std::holds_alternative<Invalid>(r) || !fill()) return std::nullopt;
    }
  }

 private:
  Bytes view() const { return {reinterpret_cast<const uint8_t*>(buf_.data()), buf_.size()}; }
  bool fill() {
    char chunk[8192];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buf_.append(chunk, static_cast<size_t>(n));
    return true;
  }
  void set_timeout(int seconds) {
    timeval tv{seconds, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  int fd_;
  std::string buf_;
};

}  // namespace pgs::protocol::test
