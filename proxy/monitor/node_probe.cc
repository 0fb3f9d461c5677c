#include "proxy/monitor/node_probe.h"

#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "proxy/monitor/libpq_text.h"

namespace pgs::monitor {
namespace {


}  // namespace

NodeProbe::NodeProbe(const MonitorNode& node, const MonitorOptions& options) : options_(options) {
  auto add = [this](std::string k, std::string v) {
    keys_.push_back(std::move(k));
    values_.push_back(std::move(v));
  };
  add("host", node.host);
  add("port", std::to_string(node.port));
  if (!options.user.empty()) add("user", options.user);
  if (!options.password.empty()) add("password", options.password);
  add("dbname", options.dbname);
  add("application_name", options.application_name);
  // Server-side guard: a probe stuck on the server is cancelled there too, not only abandoned here.
  add("options", "-c statement_timeout=" + std::to_string(std::max<int64_t>(options.check_timeout.count(), 1)));
  for (const auto& [k, v] : node.tls_conninfo) add(k, v);
  for (const auto& [k, v] : options.extra_conninfo) add(k, v);  // given last: they win
}

NodeProbe::~NodeProbe() { drop(); }

void NodeProbe::drop() {
  if (conn_ != nullptr) PQfinish(conn_);
  conn_ = nullptr;
}

void NodeProbe::begin(Clock::time_point round_start) {
  result_ = ProbeResult{};
  reused_ = false;
  retried_ = false;
  if (conn_ != nullptr && PQstatus(conn_) != CONNECTION_OK) drop();
  if (conn_ != nullptr) {
    reused_ = true;
    send_query();
    return;
  }
  // A quarter interval of slack: rounds start on a fixed schedule, the clock may read a hair early.
  if (round_start + options_.interval / 4 < next_connect_) {
    phase_ = Phase::done;
    result_.failure = Reason::backoff;
    result_.error = last_error_;
    return;
  }
  start_connect();
}

void NodeProbe::start_connect() {
  std::vector<const char*> k, v;
  for (size_t i = 0; i < keys_.size(); ++i) {
    k.push_back(keys_[i].c_str());
    v.push_back(values_[i].c_str());
  }
  k.push_back(nullptr);
  v.push_back(nullptr);
  conn_ = PQconnectStartParams(k.data(), v.data(), 0);
  if (conn_ == nullptr) return fail(Reason::unreachable, "out of memory");
  if (PQstatus(conn_) == CONNECTION_BAD) return fail(Reason::unreachable, libpq_message_line(PQerrorMessage(conn_)));
  phase_ = Phase::connecting;
  want_ = POLLOUT;  // libpq: after PQconnectStart, act as if PQconnectPoll returned PGRES_POLLING_WRITING
}

int NodeProbe::socket() const { return conn_ != nullptr ? PQsocket(conn_) : -1; }

short NodeProbe::events() const { return want_; }

void NodeProbe::send_query() {
  row_.reset();
  row_error_.clear();
  if (PQsetnonblocking(conn_, 1) != 0 || PQsendQuery(conn_, std::string(kProbeSql).c_str()) == 0) {
    if (retry_fresh()) return;
    return fail(Reason::unreachable, libpq_message_line(PQerrorMessage(conn_)));
  }
  phase_ = Phase::querying;
  int flushed = PQflush(conn_);
  if (flushed < 0) {
    if (retry_fresh()) return;
    return fail(Reason::unreachable, libpq_message_line(PQerrorMessage(conn_)));
  }
  want_ = flushed == 1 ? (POLLIN | POLLOUT) : POLLIN;
}

bool NodeProbe::retry_fresh() {
  if (!reused_ || retried_) return false;
  retried_ = true;
  reused_ = false;
  drop();
  start_connect();
  return true;
}

void NodeProbe::on_ready() {
  if (phase_ == Phase::connecting) {
    switch (PQconnectPoll(conn_)) {
      case PGRES_POLLING_READING: want_ = POLLIN; return;
      case PGRES_POLLING_WRITING: want_ = POLLOUT; return;
      case PGRES_POLLING_OK: return send_query();
      default: return fail(Reason::unreachable, libpq_message_line(PQerrorMessage(conn_)));
    }
  }
  if (phase_ != Phase::querying) return;
  if ((want_ & POLLOUT) != 0) {
    int flushed = PQflush(conn_);
    if (flushed < 0) return fail(Reason::unreachable, libpq_message_line(PQerrorMessage(conn_)));
    want_ = flushed == 1 ? (POLLIN | POLLOUT) : POLLIN;
  }
  if (PQconsumeInput(conn_) == 0) {
    if (retry_fresh()) return;
    return fail(Reason::unreachable, libpq_message_line(PQerrorMessage(conn_)));
  }
  read_results();
}

// Takes every result of the probe as it arrives; done at the final null result. Exactly one row of
// kProbeColumns is success. Partial progress lives in row_ / row_error_ across calls.
void NodeProbe::read_results() {
  for (;;) {
    if (PQisBusy(conn_) != 0) return;  // more to read: wait for the socket
    PGresult* res = PQgetResult(conn_);
    if (res == nullptr) break;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) == int(kProbeColumns)) {
      ProbeRow cols;
      for (int c = 0; c < int(kProbeColumns); ++c) {
        if (PQgetisnull(res, 0, c) == 0) cols[c] = std::string_view(PQgetvalue(res, 0, c), PQgetlength(res, 0, c));
      }
      row_ = probe_from_row(cols);
      if (!row_) row_error_ = "unexpected probe row";
    } else if (row_error_.empty()) {
      row_error_ = libpq_message_line(PQresultErrorMessage(res));
    }
    PQclear(res);
  }
  if (PQstatus(conn_) != CONNECTION_OK) {
    if (retry_fresh()) return;
    return fail(Reason::unreachable, row_error_.empty() ? libpq_message_line(PQerrorMessage(conn_)) : row_error_);
  }
  if (!row_) return fail(Reason::query_failed, row_error_.empty() ? "probe returned no row" : row_error_);
  result_ = std::move(*row_);
  phase_ = Phase::done;
  want_ = 0;
}

void NodeProbe::fail(Reason reason, std::string error) {
  result_ = ProbeResult{};
  result_.failure = reason;
  result_.error = std::move(error);
  phase_ = Phase::done;
  want_ = 0;
  drop();
}

void NodeProbe::expire() {
  if (active()) fail(Reason::timeout, "no answer within " + std::to_string(options_.check_timeout.count()) + " ms");
}

ProbeResult NodeProbe::finish(Clock::time_point round_start) {
  if (active()) expire();
  phase_ = Phase::idle;
  if (result_.reached) {
    backoff_ = Millis{0};
    next_connect_ = round_start;
  } else if (result_.failure != Reason::backoff) {
    drop();
    last_error_ = result_.error;
    backoff_ = backoff_.count() == 0 ? options_.interval : std::min(backoff_ * 2, options_.reconnect_backoff_max);
    backoff_ = std::max(backoff_, options_.interval);
    next_connect_ = round_start + backoff_;
  }
  return std::move(result_);
}

bool run_round(std::span<const std::unique_ptr<NodeProbe>> probes, NodeProbe::Clock::time_point deadline,
               int wake_fd, const std::atomic<bool>& stopping) {
  std::vector<pollfd> fds;
  std::vector<NodeProbe*> owners;
  for (;;) {
    fds.clear();
    owners.clear();
    fds.push_back({wake_fd, POLLIN, 0});
    for (const auto& p : probes) {
      if (!p->active()) continue;
      fds.push_back({p->socket(), p->events(), 0});
      owners.push_back(p.get());
    }
    if (owners.empty()) return true;
    auto now = NodeProbe::Clock::now();
    if (now >= deadline) break;
    auto left = std::chrono::ceil<Millis>(deadline - now).count();
    int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<int64_t>(left, 60000)));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    if (fds[0].revents != 0) {
      if (stopping) return false;
      uint64_t count = 0;  // an options update: the caller applies it after the round
      ssize_t ignored = ::read(wake_fd, &count, sizeof count);
      (void)ignored;
      if (stopping) return false;  // stop() sets the flag before it writes: its wake may be in `count`
    }
    for (size_t i = 0; i < owners.size(); ++i) {
      if (fds[i + 1].revents != 0) owners[i]->on_ready();
    }
  }
  for (const auto& p : probes) p->expire();
  return true;
}

}  // namespace pgs::monitor
