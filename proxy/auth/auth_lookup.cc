#include "proxy/auth/auth_lookup.h"

#include <libpq-fe.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "proxy/monitor/libpq_text.h"

namespace pgs::proxy {

namespace {

using monitor::libpq_message_line;

void close_and_free(uv_handle_t* h) {
  h->data = nullptr;
  uv_close(h, [](uv_handle_t* closed) {
    if (closed->type == UV_POLL) {
      delete reinterpret_cast<uv_poll_t*>(closed);
    } else {
      delete reinterpret_cast<uv_timer_t*>(closed);
    }
  });
}

}  // namespace

AuthLookup::AuthLookup(uv_loop_t* loop, HostResolver& resolver, AuthLookupTarget target, std::string name,
                       Done done)
    : loop_(loop), resolver_(resolver), target_(std::move(target)), name_(std::move(name)), done_(std::move(done)) {}

AuthLookup::~AuthLookup() { abandon(); }

void AuthLookup::abandon() noexcept {
  resolver_.cancel(std::exchange(resolve_ticket_, 0));
  if (poll_ != nullptr) close_and_free(reinterpret_cast<uv_handle_t*>(poll_));
  if (timer_ != nullptr) close_and_free(reinterpret_cast<uv_handle_t*>(timer_));
  poll_ = nullptr;
  timer_ = nullptr;
  if (conn_ != nullptr) PQfinish(conn_);
  conn_ = nullptr;
  phase_ = Phase::done;
}

void AuthLookup::start() {
  timer_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  timer_->data = this;
  uv_timer_start(timer_, &AuthLookup::timer_cb, static_cast<uint64_t>(target_.timeout.count()), 0);
  phase_ = Phase::resolving;
  // 0: answered at once (a numeric host, a fresh answer), and the lookup may be over and gone already.
  if (uint64_t ticket = resolver_.resolve(target_.host, target_.port, [this](const Resolution& r) { on_resolved(r); });
      ticket != 0) {
    resolve_ticket_ = ticket;
  }
}

void AuthLookup::on_resolved(const Resolution& r) {
  resolve_ticket_ = 0;
  if (phase_ != Phase::resolving) return;
  if (r.addresses.empty()) return fail("08006", "cannot resolve host \"" + target_.host + "\": " + r.error);
  const std::string port = std::to_string(target_.port);
  const std::string timeout_s = std::to_string(std::max<int64_t>(1, target_.timeout.count() / 1000));
  // host (the name as configured, for verify-full's certificate check) once per address, and hostaddr
  // (the addresses found): libpq tries them in order and looks nothing up.
  std::string hosts, addrs;
  for (const auto& a : r.addresses) {
    hosts += (hosts.empty() ? "" : ",") + target_.host;
    addrs += (addrs.empty() ? "" : ",") + address_text(a);
  }
  std::vector<const char*> keys = {"host",     "hostaddr", "port",       "dbname",      "user",    "password",
                                   "application_name", "connect_timeout", "gssencmode", "sslmode", "sslrootcert",
                                   nullptr};
  std::vector<const char*> values = {hosts.c_str(), addrs.c_str(), port.c_str(), target_.dbname.c_str(),
                                     target_.user.c_str(), target_.password.c_str(), "pgsidecar auth_query",
                                     timeout_s.c_str(), "disable", target_.sslmode.c_str(),
                                     target_.sslrootcert.c_str(), nullptr};
  conn_ = PQconnectStartParams(keys.data(), values.data(), 0);
  if (conn_ == nullptr || PQstatus(conn_) == CONNECTION_BAD) {
    return fail("08006", conn_ == nullptr ? "out of memory" : libpq_message_line(PQerrorMessage(conn_)));
  }
  phase_ = Phase::connecting;
  watch(UV_WRITABLE);  // libpq: after PQconnectStart, act as if PQconnectPoll said PGRES_POLLING_WRITING
}

// libpq may change its socket during the connect (another address, a retry without TLS): the poll
// handle follows it.
void AuthLookup::watch(int events) {
  const int fd = PQsocket(conn_);
  if (fd < 0) return fail("08006", "no socket");
  if (poll_ != nullptr && fd != polled_fd_) {
    close_and_free(reinterpret_cast<uv_handle_t*>(poll_));
    poll_ = nullptr;
  }
  if (poll_ == nullptr) {
    poll_ = new uv_poll_t;
    if (uv_poll_init(loop_, poll_, fd) != 0) {
      delete poll_;
      poll_ = nullptr;
      return fail("08006", "cannot watch the lookup's socket");
    }
    poll_->data = this;
    polled_fd_ = fd;
  }
  uv_poll_start(poll_, events, &AuthLookup::poll_cb);
}

void AuthLookup::poll_cb(uv_poll_t* h, int, int) noexcept {
  if (h->data != nullptr) static_cast<AuthLookup*>(h->data)->on_ready();
}

void AuthLookup::timer_cb(uv_timer_t* h) noexcept {
  if (h->data == nullptr) return;
  auto* self = static_cast<AuthLookup*>(h->data);
  self->fail("08006", "no answer within " + std::to_string(self->target_.timeout.count()) + " ms");
}

void AuthLookup::on_ready() {
  if (phase_ == Phase::connecting) {
    switch (PQconnectPoll(conn_)) {
      case PGRES_POLLING_READING: return watch(UV_READABLE);
      case PGRES_POLLING_WRITING: return watch(UV_WRITABLE);
      case PGRES_POLLING_OK: return send_query();
      default: return fail("08006", libpq_message_line(PQerrorMessage(conn_)));
    }
  }
  if (phase_ != Phase::querying) return;
  if (flushing_) {
    const int flushed = PQflush(conn_);
    if (flushed < 0) return fail("08006", libpq_message_line(PQerrorMessage(conn_)));
    flushing_ = flushed == 1;
  }
  if (PQconsumeInput(conn_) == 0) return fail("08006", libpq_message_line(PQerrorMessage(conn_)));
  read_results();
}

void AuthLookup::send_query() {
  const char* params[1] = {name_.c_str()};
  if (PQsetnonblocking(conn_, 1) != 0 ||
      PQsendQueryParams(conn_, target_.query.c_str(), 1, nullptr, params, nullptr, nullptr, 0) == 0) {
    return fail("08006", libpq_message_line(PQerrorMessage(conn_)));
  }
  phase_ = Phase::querying;
  const int flushed = PQflush(conn_);
  if (flushed < 0) return fail("08006", libpq_message_line(PQerrorMessage(conn_)));
  flushing_ = flushed == 1;
  watch(flushing_ ? (UV_READABLE | UV_WRITABLE) : UV_READABLE);
}

// The first row's second column is the secret (the first is the name, as in PgBouncer's auth_query).
void AuthLookup::read_results() {
  for (;;) {
    if (PQisBusy(conn_) != 0) {
      if (!flushing_) watch(UV_READABLE);
      return;
    }
    PGresult* res = PQgetResult(conn_);
    if (res == nullptr) break;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQnfields(res) >= 2) {
      if (!have_row_) {
        have_row_ = true;
        answer_ = answer_from_secret(PQntuples(res) > 0 && PQgetisnull(res, 0, 1) == 0 ? PQgetvalue(res, 0, 1)
                                                                                        : nullptr);
      }
    } else if (query_error_.empty()) {
      query_error_ = PQresultStatus(res) == PGRES_TUPLES_OK ? "auth_query must return two columns (name, secret)"
                                                            : libpq_message_line(PQresultErrorMessage(res));
    }
    PQclear(res);
  }
  if (!query_error_.empty()) return fail("28000", query_error_);
  if (!have_row_) return fail("28000", "auth_query returned no result");
  finish(std::move(answer_));
}

void AuthLookup::fail(const char* sqlstate, const std::string& why) {
  AuthAnswer a;
  a.kind = AuthAnswer::Kind::failed;
  a.sqlstate = sqlstate;
  a.error = why;
  finish(std::move(a));
}

void AuthLookup::finish(AuthAnswer answer) {
  if (phase_ == Phase::done) return;
  abandon();
  Done done = std::move(done_);
  done_ = nullptr;
  if (done) done(std::move(answer));  // may destroy this lookup
}

}  // namespace pgs::proxy
