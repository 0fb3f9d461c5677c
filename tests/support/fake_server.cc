#include "tests/support/fake_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace pgs::test {

namespace {
constexpr uint32_t kSslRequest = 80877103;
constexpr uint32_t kGssEncRequest = 80877104;
constexpr uint32_t kCancelRequest = 80877102;
const std::string kCancelMarker = "\x01cancel";  // a startup "parameter" no real startup packet has
constexpr uint32_t kProtocol3 = 196608;
constexpr Millis kLoginDeadline{3000};

// Reads until `out` holds n bytes, within the deadline; false on EOF, error (then *eof is set) or timeout.
bool read_exact(int fd, std::string& out, size_t n, Clock::time_point end, bool* eof = nullptr) {
  while (out.size() < n) {
    pollfd p{fd, POLLIN, 0};
    int rc = ::poll(&p, 1, ms_left(end));
    if (rc <= 0) return false;
    char tmp[65536];
    ssize_t got = ::recv(fd, tmp, std::min(sizeof tmp, n - out.size()), 0);
    if (got <= 0) {
      if (eof != nullptr) *eof = true;
      return false;
    }
    out.append(tmp, static_cast<size_t>(got));
  }
  return true;
}

bool send_all(int fd, const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

// The startup packet's parameters, after answering `ssl_answer` to SSLRequest ('N' to GSSENCRequest;
// `ssl_requests` counts them); nullopt if none.
std::optional<std::map<std::string, std::string>> read_startup(int fd, char ssl_answer, int& ssl_requests) {
  auto end = Clock::now() + kLoginDeadline;
  while (true) {
    std::string head;
    if (!read_exact(fd, head, 8, end)) return std::nullopt;
    uint32_t len = get_be32(head, 0), code = get_be32(head, 4);
    if (len < 8 || len > 10000) return std::nullopt;
    std::string body;
    if (!read_exact(fd, body, len - 8, end)) return std::nullopt;
    if (code == kSslRequest || code == kGssEncRequest) {
      if (code == kSslRequest) ++ssl_requests;
      if (!send_all(fd, std::string(1, code == kSslRequest ? ssl_answer : 'N'))) return std::nullopt;
      continue;
    }
    if (code == kCancelRequest) return std::map<std::string, std::string>{{kCancelMarker, body}};
    if (code != kProtocol3) return std::nullopt;
    std::map<std::string, std::string> params;
    size_t i = 0;
    while (i < body.size() && body[i] != '\0') {
      size_t k = body.find('\0', i);
      if (k == std::string::npos) return std::nullopt;
      size_t v = body.find('\0', k + 1);
      if (v == std::string::npos) return std::nullopt;
      params[body.substr(i, k - i)] = body.substr(k + 1, v - k - 1);
      i = v + 1;
    }
    return params;
  }
}

// ParameterStatus, BackendKeyData and ReadyForQuery, after AuthenticationOk when `with_ok`.
std::string login_reply(int32_t pid, bool with_ok = true) {
  std::string out = with_ok ? typed_message('R', be32(0)) : std::string();  // AuthenticationOk
  for (auto [name, value] : {std::pair{"server_version", "15.0 (fake)"}, std::pair{"server_encoding", "UTF8"},
                             std::pair{"client_encoding", "UTF8"}, std::pair{"DateStyle", "ISO, MDY"},
                             std::pair{"TimeZone", "UTC"}, std::pair{"integer_datetimes", "on"},
                             std::pair{"standard_conforming_strings", "on"}}) {
    out += FakeBackend::parameter_status(name, value);
  }
  out += typed_message('K', be32(static_cast<uint32_t>(pid)) + be32(0x5eC7e7));
  out += FakeBackend::ready('I');
  return out;
}
}  // namespace

// ---- FakeBackend ----

FakeBackend::FakeBackend(int fd, std::map<std::string, std::string> startup, int32_t pid)
    : fd_(fd), startup_(std::move(startup)), pid_(pid) {}

FakeBackend::~FakeBackend() { close(); }

void FakeBackend::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

uint16_t FakeBackend::peer_port() const {
  sockaddr_in a{};
  socklen_t n = sizeof a;
  if (fd_ < 0 || getpeername(fd_, reinterpret_cast<sockaddr*>(&a), &n) != 0) return 0;
  return ntohs(a.sin_port);
}

bool FakeBackend::fill(size_t n, Millis deadline) {
  if (fd_ < 0 || eof_) return false;
  return read_exact(fd_, buf_, n, Clock::now() + deadline, &eof_);
}

std::optional<Msg> FakeBackend::read(Millis deadline) {
  auto end = Clock::now() + deadline;
  if (!fill(5, deadline)) return std::nullopt;
  uint32_t len = get_be32(buf_, 1);
  if (len < 4) return std::nullopt;
  if (!fill(1 + len, time_left(end))) return std::nullopt;
  Msg m{buf_[0], buf_.substr(5, len - 4)};
  buf_.erase(0, 1 + len);
  return m;
}

std::vector<Msg> FakeBackend::read_until(char last, Millis deadline) {
  auto end = Clock::now() + deadline;
  std::vector<Msg> out;
  while (auto m = read(time_left(end))) {
    out.push_back(*m);
    if (m->type == last) return out;
  }
  return {};
}

bool FakeBackend::send(const std::string& bytes) { return fd_ >= 0 && send_all(fd_, bytes); }

bool FakeBackend::closed_by_peer(Millis deadline) {
  auto end = Clock::now() + deadline;
  while (fd_ >= 0) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, ms_left(end)) <= 0) return false;
    char tmp[4096];
    if (::recv(fd_, tmp, sizeof tmp, 0) <= 0) return true;
  }
  return true;
}

std::string FakeBackend::ready(char status) { return typed_message('Z', std::string(1, status)); }

std::string FakeBackend::command_complete(const std::string& tag) { return typed_message('C', cstr(tag)); }

std::string FakeBackend::row_description(const std::vector<std::string>& columns) {
  std::string body = be16(static_cast<uint16_t>(columns.size()));
  for (const std::string& c : columns) {
    body += cstr(c) + be32(0) + be16(0) + be32(25) + be16(0xffff) + be32(0xffffffff) + be16(0);  // text
  }
  return typed_message('T', body);
}

std::string FakeBackend::data_row(const std::vector<std::optional<std::string>>& values) {
  std::string body = be16(static_cast<uint16_t>(values.size()));
  for (const auto& v : values) {
    body += v ? be32(static_cast<uint32_t>(v->size())) + *v : be32(0xffffffff);
  }
  return typed_message('D', body);
}

std::string FakeBackend::error(const std::string& severity, const std::string& sqlstate, const std::string& message) {
  return typed_message('E', "S" + cstr(severity) + "V" + cstr(severity) + "C" + cstr(sqlstate) + "M" + cstr(message) +
                                std::string(1, '\0'));
}

std::string FakeBackend::parameter_status(const std::string& name, const std::string& value) {
  return typed_message('S', cstr(name) + cstr(value));
}

std::string FakeBackend::select_one(const std::string& column, const std::string& value, char status) {
  return row_description({column}) + data_row({value}) + command_complete("SELECT 1") + ready(status);
}

// ---- FakeServer ----

FakeServer::FakeServer() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0 || ::listen(listen_fd_, 64) != 0) {
    throw std::runtime_error("fake server: cannot listen on loopback");
  }
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { run(); });
}

FakeServer::~FakeServer() {
  stopping_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  hold_cancels(false);
  for (std::thread& t : background_) t.join();
  ::close(listen_fd_);
}

void FakeServer::run() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char ssl_answer;
    std::vector<LoginStep> script;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ssl_answer = ssl_answer_;
      script = login_script_;
    }
    int ssl_requests = 0;
    auto startup = read_startup(fd, ssl_answer, ssl_requests);
    // A pool connection: not libpq's (the catalog watcher, the monitor, the /readyz ping), not a cancel.
    bool pool_conn = startup && !startup->contains("application_name") && !startup->contains(kCancelMarker) &&
                     startup->contains("database") && startup->at("database") != "postgres";
    if (pool_conn) {
      std::lock_guard<std::mutex> lock(mu_);
      ssl_requests_ += ssl_requests;
    }
    bool scripted = pool_conn && !script.empty();
    if (scripted && !run_login_script(fd, script)) {
      ::close(fd);
      continue;
    }
    if (startup && startup->contains(kCancelMarker)) {
      std::lock_guard<std::mutex> lock(mu_);
      ++cancel_requests_;
      if (hold_cancels_) {
        held_cancels_.push_back(fd);
      } else {
        ::close(fd);  // as Postgres does once the backend is signalled
      }
      continue;
    }
    int32_t pid = next_pid_++;
    if (!startup || !send_all(fd, login_reply(pid, !scripted))) {
      ::close(fd);
      continue;
    }
    auto conn = std::make_unique<FakeBackend>(fd, std::move(*startup), pid);
    // libpq's connections (the catalog watcher, the monitor, the /readyz ping to database postgres)
    // are not the pool's.
    auto db = conn->startup().find("database");
    bool to_postgres = db != conn->startup().end() && db->second == "postgres";
    if (conn->startup().contains("application_name") || to_postgres) {
      serve_in_background(std::move(conn));
      continue;
    }
    ++pool_connections_;
    std::lock_guard<std::mutex> lock(mu_);
    ready_.push_back(std::move(conn));
    cv_.notify_all();
  }
}

void FakeServer::serve_in_background(std::unique_ptr<FakeBackend> conn) {
  background_.emplace_back([this, c = std::shared_ptr<FakeBackend>(std::move(conn))] {
    while (!stopping_) {
      auto m = c->read(Millis(50));
      if (!m) {
        if (c->eof()) return;
        continue;
      }
      if (m->type == 'X') return;
      if (m->type == 'Q' || m->type == 'S') {
        c->send(FakeBackend::error("ERROR", "XX000", "fake server: no catalog here") + FakeBackend::ready('I'));
      }
    }
  });
}

bool FakeServer::run_login_script(int fd, const std::vector<LoginStep>& steps) {
  FakeBackend conn(::dup(fd), {}, 0);  // reads with a deadline; closes its duplicate, `fd` stays open
  std::string message;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (i > 0) {
      auto m = conn.read(kLoginDeadline);
      if (!m) {
        std::lock_guard<std::mutex> lock(mu_);
        ++scripted_abandoned_;
        return false;
      }
      message = m->body;
      std::lock_guard<std::mutex> lock(mu_);
      scripted_messages_.push_back(message);
    }
    if (!conn.send(steps[i](message))) return false;
  }
  return true;
}

void FakeServer::set_ssl_answer(char answer) {
  std::lock_guard<std::mutex> lock(mu_);
  ssl_answer_ = answer;
}

int FakeServer::ssl_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ssl_requests_;
}

void FakeServer::set_login_script(std::vector<LoginStep> steps) {
  std::lock_guard<std::mutex> lock(mu_);
  login_script_ = std::move(steps);
}

int FakeServer::scripted_logins_abandoned() const {
  std::lock_guard<std::mutex> lock(mu_);
  return scripted_abandoned_;
}

std::vector<std::string> FakeServer::scripted_messages() const {
  std::lock_guard<std::mutex> lock(mu_);
  return scripted_messages_;
}

std::string FakeServer::auth_request(int32_t code, const std::string& data) {
  return typed_message('R', be32(static_cast<uint32_t>(code)) + data);
}

void FakeServer::hold_cancels(bool hold) {
  std::lock_guard<std::mutex> lock(mu_);
  hold_cancels_ = hold;
  if (hold) return;
  for (int fd : held_cancels_) ::close(fd);
  held_cancels_.clear();
}

int FakeServer::cancel_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cancel_requests_;
}

std::unique_ptr<FakeBackend> FakeServer::accept(Millis deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, deadline, [this] { return !ready_.empty(); })) return nullptr;
  auto conn = std::move(ready_.front());
  ready_.pop_front();
  return conn;
}

}  // namespace pgs::test
