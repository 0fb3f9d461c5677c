#include "tests/support/raw_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <stdexcept>

namespace pgs::test {
namespace {

std::string random_nonce() {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 24; ++i) out += alphabet[rd() % (sizeof alphabet - 1)];
  return out;
}

// Parameter name/value pairs from a ParameterStatus body.
std::pair<std::string, std::string> parameter_status(const std::string& body) {
  size_t z = body.find('\0');
  if (z == std::string::npos) return {body, ""};
  std::string value = body.substr(z + 1);
  if (!value.empty() && value.back() == '\0') value.pop_back();
  return {body.substr(0, z), value};
}

// Answers one AuthenticationRequest; false (with outcome.problem) when it cannot.
bool answer_auth(RawConn& c, const Msg& m, const std::string& user, const std::string& password,
                 std::string& scram_first_bare, LoginOutcome& out) {
  if (m.body.size() < 4) { out.problem = "short AuthenticationRequest"; return false; }
  uint32_t code = get_be32(m.body, 0);
  if (out.auth_code < 0) out.auth_code = static_cast<int>(code);
  switch (code) {
    case 0:
      return true;
    case 3:
      return c.send(typed_message('p', cstr(password)));
    case 5:
      if (m.body.size() < 8) { out.problem = "short md5 salt"; return false; }
      return c.send(typed_message('p', cstr(md5_response(user, password, m.body.substr(4, 4)))));
    case 10: {
      scram_first_bare = "n=,r=" + random_nonce();
      std::string data = "n,," + scram_first_bare;
      return c.send(typed_message('p', cstr("SCRAM-SHA-256") + be32(uint32_t(data.size())) + data));
    }
    case 11:
      return c.send(typed_message('p', scram_client_final(password, scram_first_bare,
                                                           m.body.substr(4), nullptr)));
    case 12:
      return true;  // server signature; the raw client trusts its test server
    default:
      out.problem = "unsupported auth code " + std::to_string(code);
      return false;
  }
}

}  // namespace

std::string ErrorFields::get(char code) const {
  auto it = fields.find(code);
  return it == fields.end() ? "" : it->second;
}

std::string ErrorFields::describe() const {
  return get('S') + " " + get('C') + " " + get('M');
}

ErrorFields parse_error_fields(const std::string& body) {
  ErrorFields f;
  size_t pos = 0;
  while (pos < body.size() && body[pos] != '\0') {
    char code = body[pos++];
    size_t z = body.find('\0', pos);
    if (z == std::string::npos) break;
    f.fields[code] = body.substr(pos, z - pos);
    pos = z + 1;
  }
  return f;
}

uint32_t get_be32(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
         (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}

std::string cstr(std::string_view s) { return std::string(s) + '\0'; }

std::string be16(uint16_t v) { return {char(v >> 8), char(v)}; }

std::string be32(uint32_t v) {
  std::string s(4, '\0');
  s[0] = char(v >> 24);
  s[1] = char(v >> 16);
  s[2] = char(v >> 8);
  s[3] = char(v);
  return s;
}

std::string startup_packet_raw(uint32_t code, const std::string& body) {
  return be32(uint32_t(8 + body.size())) + be32(code) + body;
}

std::string startup_packet(const std::vector<std::pair<std::string, std::string>>& params,
                           uint32_t code) {
  std::string body;
  for (const auto& [k, v] : params) body += cstr(k) + cstr(v);
  return startup_packet_raw(code, body + '\0');
}

std::string typed_message(char type, const std::string& body) {
  return std::string(1, type) + be32(uint32_t(4 + body.size())) + body;
}

std::string query_message(const std::string& sql) { return typed_message('Q', cstr(sql)); }

RawConn::RawConn(const std::string& host, uint16_t port) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::string err = std::strerror(errno);
    if (fd_ >= 0) close(fd_);
    throw std::runtime_error("connect " + host + ":" + std::to_string(port) + ": " + err);
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

RawConn::~RawConn() {
  if (fd_ >= 0) close(fd_);
}

bool RawConn::send(std::string_view bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool RawConn::fill(size_t n, Millis deadline) {
  auto end = Clock::now() + deadline;
  char tmp[65536];
  while (buf_.size() - pos_ < n) {
    if (closed_) return false;
    pollfd p{fd_, POLLIN, 0};
    int r = poll(&p, 1, ms_left(end));
    if (r == 0) return false;
    if (r < 0 && errno == EINTR) continue;
    ssize_t got = recv(fd_, tmp, sizeof tmp, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) { closed_ = true; return false; }
    buf_.append(tmp, static_cast<size_t>(got));
  }
  return true;
}

std::optional<char> RawConn::read_byte(Millis deadline) {
  if (!fill(1, deadline)) return std::nullopt;
  char c = buf_[pos_];
  consume(1);
  return c;
}

std::optional<Msg> RawConn::read_message(Millis deadline) {
  auto end = Clock::now() + deadline;
  if (!fill(5, deadline)) return std::nullopt;
  uint32_t len = get_be32(buf_, pos_ + 1);
  if (len < 4 || len > (256u << 20)) return std::nullopt;
  if (!fill(1 + len, Millis(ms_left(end)))) return std::nullopt;
  Msg m{buf_[pos_], buf_.substr(pos_ + 5, len - 4)};
  consume(1 + len);
  return m;
}

Drain RawConn::drain(Millis deadline, size_t keep) {
  Drain d;
  d.bytes = buf_.substr(pos_, keep);
  consume(buf_.size() - pos_);
  auto end = Clock::now() + deadline;
  char tmp[65536];
  while (!closed_) {
    pollfd p{fd_, POLLIN, 0};
    int r = poll(&p, 1, ms_left(end));
    if (r == 0) { d.timed_out = true; break; }
    if (r < 0 && errno == EINTR) continue;
    ssize_t got = recv(fd_, tmp, sizeof tmp, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && errno == ECONNRESET) d.reset = true;
    if (got <= 0) { closed_ = true; break; }
    if (d.bytes.size() < keep) d.bytes.append(tmp, std::min(size_t(got), keep - d.bytes.size()));
  }
  d.closed = closed_;
  return d;
}

size_t RawConn::read_some(char* buf, size_t max, Millis deadline) {
  if (buf_.size() > pos_) {
    size_t n = std::min(max, buf_.size() - pos_);
    std::memcpy(buf, buf_.data() + pos_, n);
    consume(n);
    return n;
  }
  pollfd p{fd_, POLLIN, 0};
  if (closed_ || poll(&p, 1, static_cast<int>(deadline.count())) <= 0) return 0;
  ssize_t got = recv(fd_, buf, max, 0);
  if (got <= 0) { closed_ = true; return 0; }
  return static_cast<size_t>(got);
}

void RawConn::consume(size_t n) {
  pos_ += n;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 65536 && pos_ * 2 > buf_.size()) {
    buf_.erase(0, pos_);  // compact rarely: reading a 100 MB stream must stay linear
    pos_ = 0;
  }
}

void RawConn::set_rcvbuf(int bytes) { setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes); }

void RawConn::close_with_reset() {
  linger l{1, 0};
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd_);
  fd_ = -1;
  closed_ = true;
}

std::string LoginOutcome::describe() const {
  if (ok) return "ok (auth code " + std::to_string(auth_code) + ")";
  if (error) return "ErrorResponse: " + error->describe();
  return "problem: " + problem;
}

LoginOutcome login(RawConn& c, const std::string& user, const std::string& password,
                   const std::string& database,
                   const std::vector<std::pair<std::string, std::string>>& extra, Millis deadline) {
  std::vector<std::pair<std::string, std::string>> params = {{"user", user}, {"database", database}};
  params.insert(params.end(), extra.begin(), extra.end());
  if (!c.send(startup_packet(params))) return LoginOutcome{false, {}, "send startup failed"};
  return finish_login(c, user, password, deadline);
}

LoginOutcome finish_login(RawConn& c, const std::string& user, const std::string& password,
                          Millis deadline) {
  LoginOutcome out;
  auto end = Clock::now() + deadline;
  std::string scram_first_bare;
  while (true) {
    auto m = c.read_message(Millis(ms_left(end)));
    if (!m) {
      out.problem = c.closed() ? "connection closed" : "timeout";
      return out;
    }
    if (m->type == 'E') {
      out.error = parse_error_fields(m->body);
      return out;
    }
    if (m->type == 'Z') {
      out.ok = true;
      return out;
    }
    if (m->type == 'S') out.parameters.insert(parameter_status(m->body));
    if (m->type == 'R' && !answer_auth(c, *m, user, password, scram_first_bare, out)) {
      if (out.problem.empty()) out.problem = "send failed";
      return out;
    }
  }
}

QueryOutcome read_until_ready(RawConn& c, Millis deadline) {
  QueryOutcome q;
  auto end = Clock::now() + deadline;
  while (true) {
    auto m = c.read_message(Millis(ms_left(end)));
    if (!m) {
      q.closed = c.closed();
      return q;
    }
    if (m->type == 'E' && !q.error) q.error = parse_error_fields(m->body);
    if (m->type == 'Z') {
      q.status = m->body.empty() ? '?' : m->body[0];
      return q;
    }
    q.messages.push_back(std::move(*m));
  }
}

QueryOutcome simple_query(RawConn& c, const std::string& sql, Millis deadline) {
  if (!c.send(query_message(sql))) {
    QueryOutcome q;
    q.closed = true;
    return q;
  }
  return read_until_ready(c, deadline);
}

}  // namespace pgs::test
