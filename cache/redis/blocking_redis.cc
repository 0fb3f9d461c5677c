#include "cache/redis/blocking_redis.h"

#include <hiredis/hiredis.h>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cache/redis/resp.h"

namespace pgs::cache::redis {
namespace {

using Clock = std::chrono::steady_clock;

// Waits until `fd` is ready for `events` or the deadline passed (false).
bool wait_ready(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

}  // namespace

BlockingRedis::BlockingRedis(ConnOptions options) : options_(std::move(options)) {}

BlockingRedis::~BlockingRedis() { drop(); }

void BlockingRedis::drop() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  tls_.reset();
  if (reader_ != nullptr) redisReaderFree(reader_);
  reader_ = nullptr;
}

bool BlockingRedis::fail(std::string why) {
  last_error_ = std::move(why);
  drop();
  return false;
}

bool BlockingRedis::connect() {
  if (connected()) return true;
  if (options_.tls.enabled() && options_.tls.context == nullptr) return fail(options_.tls.error);
  const Deadline deadline = Clock::now() + options_.connect_timeout;
  if (!open_socket(deadline)) return false;
  reader_ = redisReaderCreate();
  if (reader_ == nullptr) return fail("out of memory");
  if (options_.tls.context != nullptr && !handshake(deadline)) return false;
  if (options_.password.empty()) return true;
  std::string_view with_user[] = {"AUTH", options_.user, options_.password};
  std::string_view without_user[] = {"AUTH", options_.password};
  auto reply = exchange(options_.user.empty() ? std::span<const std::string_view>(without_user)
                                              : std::span<const std::string_view>(with_user),
                        deadline);
  if (!reply) return false;
  if ((*reply)->type != REDIS_REPLY_STATUS) {
    return fail((*reply)->type == REDIS_REPLY_ERROR ? std::string((*reply)->str, (*reply)->len)
                                                    : "an unexpected reply to AUTH");
  }
  return true;
}

bool BlockingRedis::open_socket(Deadline deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(options_.port);
  if (int rc = ::getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &res); rc != 0 || res == nullptr) {
    return fail("cannot resolve " + options_.host + ": " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> owned(res, freeaddrinfo);
  fd_ = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return fail(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd_, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
    return fail(std::string("connect: ") + std::strerror(errno));
  }
  if (!wait_ready(fd_, POLLOUT, deadline)) return fail("connect: timed out");
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return fail(std::string("connect: ") + std::strerror(err));
  return true;
}

bool BlockingRedis::handshake(Deadline deadline) {
  tls_ = std::make_unique<tls::TlsSession>(options_.tls.context, options_.tls.peer);
  if (!tls_->error().empty() || tls_->start_handshake() != tls::TlsSession::Status::ok) {
    return fail("TLS: " + tls_->error());
  }
  for (;;) {
    out_.clear();
    tls_->take_output(out_);
    if (!send_all(out_, deadline)) return false;
    if (tls_->handshake_done()) return true;
    if (!receive(deadline)) return false;
  }
}

bool BlockingRedis::send_all(std::string_view bytes, Deadline deadline) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if (!wait_ready(fd_, POLLOUT, deadline)) return fail("write: timed out");
    } else {
      return fail(std::string("write: ") + std::strerror(errno));
    }
  }
  return true;
}

bool BlockingRedis::send_plain(std::string_view bytes, Deadline deadline) {
  if (tls_ == nullptr) return send_all(bytes, deadline);
  if (tls_->write_plain(bytes) != tls::TlsSession::Status::ok) return fail("TLS: " + tls_->error());
  std::string wire;
  tls_->take_output(wire);
  return send_all(wire, deadline);
}

bool BlockingRedis::receive(Deadline deadline) {
  char buf[16 * 1024];
  if (!wait_ready(fd_, POLLIN, deadline)) return fail("read: timed out");
  ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n == 0) return fail("Redis closed the connection");
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return true;
    return fail(std::string("read: ") + std::strerror(errno));
  }
  if (tls_ == nullptr) {
    redisReaderFeed(reader_, buf, static_cast<size_t>(n));
  } else {
    tls_->feed(reinterpret_cast<const uint8_t*>(buf), static_cast<size_t>(n));
    for (;;) {
      size_t got = 0;
      if (tls_->read_plain(reinterpret_cast<uint8_t*>(buf), sizeof buf, got) != tls::TlsSession::Status::ok) {
        return fail("TLS: " + tls_->error());
      }
      if (got > 0) redisReaderFeed(reader_, buf, got);
      if (got < sizeof buf) break;
    }
  }
  if (reader_->len - reader_->pos > kMaxReplyBytes) return fail("a Redis reply larger than 1 GiB");
  return true;
}

std::optional<BlockingRedis::Reply> BlockingRedis::exchange(std::span<const std::string_view> args, Deadline deadline) {
  format_command(args, out_);
  if (!send_plain(out_, deadline)) return std::nullopt;
  for (;;) {
    void* reply = nullptr;
    if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
      fail(std::string("unreadable reply: ") + reader_->errstr);
      return std::nullopt;
    }
    if (reply != nullptr) return Reply(static_cast<redisReply*>(reply), freeReplyObject);
    if (!receive(deadline)) return std::nullopt;
  }
}

std::optional<BlockingRedis::Reply> BlockingRedis::command(std::span<const std::string_view> args) {
  if (!connected()) {
    last_error_ = "not connected";
    return std::nullopt;
  }
  return exchange(args, Clock::now() + options_.timeout);
}

}  // namespace pgs::cache::redis
