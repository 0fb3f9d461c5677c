#include "proxy/pool.h"

#include <algorithm>

#include "proxy/client_conn.h"
#include "proxy/log.h"
#include "proxy/process.h"
#include "proxy/server_conn.h"
#include "proxy/worker.h"

namespace pgs::proxy {

namespace {
constexpr std::chrono::milliseconds kMaxRetryBackoff{1000};
constexpr std::chrono::milliseconds kFirstRetryBackoff{100};

// This worker's share of a process-wide count: total / workers, the remainder to the first workers.
int share_of(int total, int workers, int index, int minimum) {
  int share = total / workers + (index < total % workers ? 1 : 0);
  return std::max(share, minimum);
}
}  // namespace

Pool::Pool(Worker& worker, std::string database, std::string user, int target)
    : worker_(worker), database_(std::move(database)), user_(std::move(user)), target_index_(target) {}

Pool::~Pool() = default;

void Pool::apply_config(const conf::Config& config, const conf::DatabaseConfig& db, const conf::UserConfig& user,
                        const std::string& server_password) {
  settings_ = config.pool_for(db, user);
  int workers = worker_.process().worker_count();
  size_limit_ = share_of(settings_.pool_size, workers, worker_.index(), 1);
  min_size_ = std::min(share_of(settings_.min_pool_size, workers, worker_.index(), 0), size_limit_);
  const conf::ServerEndpoint& endpoint =
      target_index_ < 0 ? config.primary : config.replicas.at(static_cast<size_t>(target_index_));
  target_.name = endpoint.name;
  target_.host = endpoint.host;
  target_.port = endpoint.port;
  target_.server_dbname = db.server_dbname.empty() ? db.name : db.server_dbname;
  target_.user = user.name;
  target_.server_password = server_password;
  serve_waiters();  // a larger pool may serve waiting clients now
}

// ---- clients ----

ServerConn* Pool::take_idle() {
  // A server that failed or is being closed stays listed until its close callback: never hand it out.
  while (!idle_.empty()) {
    ServerConn* s = idle_.back();
    idle_.pop_back();
    if (s->state() == ServerConn::State::idle && !s->closing()) return s;
  }
  return nullptr;
}

void Pool::request_server(ClientConn* client) {
  if (waiting_.empty() && !worker_.paused()) {
    if (ServerConn* s = take_idle()) {
      hand_over(s, client);
      return;
    }
  }
  waiting_.push_back(client);
  serve_waiters();
}

void Pool::forget_client(ClientConn* client) {
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), client), waiting_.end());
  welcome_waiters_.erase(std::remove(welcome_waiters_.begin(), welcome_waiters_.end(), client),
                         welcome_waiters_.end());
}

void Pool::hand_over(ServerConn* server, ClientConn* client) {
  client->on_server_assigned(server);
}

void Pool::release(ServerConn* server, bool clean) {
  server->detach();
  if (!clean || worker_.shutting_down()) {
    server->terminate();
    return;
  }
  auto lifetime = settings_.server_lifetime;
  if (lifetime.count() > 0 && Clock::now() - server->created_at() > lifetime) {
    server->terminate();
    serve_waiters();  // a replacement may be opened for waiting clients
    return;
  }
  on_server_ready(server);
}

void Pool::request_welcome(ClientConn* client) {
  welcome_waiters_.push_back(client);
  if (count_opening() == 0 && static_cast<int>(servers_.size()) < size_limit_) open_server();
}

void Pool::record_welcome(const std::vector<std::pair<std::string, std::string>>& params) {
  welcome_ = params;
  bool first = !has_welcome_;
  has_welcome_ = true;
  if (first || !welcome_waiters_.empty()) {
    auto waiters = std::move(welcome_waiters_);
    welcome_waiters_.clear();
    for (ClientConn* c : waiters) c->on_welcome_ready();
  }
}

// ---- servers ----

void Pool::open_server() {
  auto* s = new ServerConn(*this, worker_.next_server_id());
  servers_.insert(s);
  worker_.counters().server_connects.fetch_add(1, std::memory_order_relaxed);
  s->connect();
}

void Pool::on_server_ready(ServerConn* server) {
  if (server->state() != ServerConn::State::idle) return;
  if (hold_for_cancels(server)) return;
  retry_backoff_ = std::chrono::milliseconds{0};
  last_connect_error_.clear();
  if (!waiting_.empty() && !worker_.shutting_down() && !worker_.paused()) {
    ClientConn* c = waiting_.front();
    waiting_.pop_front();
    hand_over(server, c);
    return;
  }
  if (worker_.shutting_down()) {
    server->terminate();
    return;
  }
  idle_.push_back(server);
}

void Pool::on_server_login_failed(ServerConn* server, const std::string& error) {
  LOG_WARN("pool " + name() + ": server login failed: " + error);
  worker_.counters().server_connect_failures.fetch_add(1, std::memory_order_relaxed);
  last_connect_error_ = error;
  retry_backoff_ = retry_backoff_.count() == 0 ? kFirstRetryBackoff : std::min(retry_backoff_ * 2, kMaxRetryBackoff);
  retry_at_ = Clock::now() + retry_backoff_;
  (void)server;
  if (is_replica()) {
    // Reads waiting for this replica go to the primary now rather than wait for it to come back.
    // A refusal of this role or database (SQLSTATE class 28, 3D000) says nothing of the node.
    bool refused = error.find("SQLSTATE 28") != std::string::npos || error.find("SQLSTATE 3D000") != std::string::npos;
    if (refused) {
      refused_until_ = Clock::now() + std::chrono::seconds(5);
    } else {
      worker_.mark_replica_down(target_index_);
    }
    auto waiters = std::move(waiting_);
    waiting_.clear();
    for (ClientConn* c : waiters) c->reroute_to_primary();
  } else if (!has_live_server()) {
    // Nothing can free up for the clients waiting here (every server is gone and a new one failed:
    // the primary is down, restarting or refusing): they get the error now, as a direct connection
    // would, and keep their connection, rather than wait out query_wait_timeout.
    auto waiters = std::move(waiting_);
    waiting_.clear();
    for (ClientConn* c : waiters) c->refuse_batch("08006", "pgsidecar: cannot connect to the server: " + error);
  }
  // A client cannot finish logging in without a server: tell the ones waiting for the welcome now.
  auto waiters = std::move(welcome_waiters_);
  welcome_waiters_.clear();
  for (ClientConn* c : waiters) c->fail("08006", "pgsidecar: could not log in to the server: " + error);
}

void Pool::on_server_closed(ServerConn* server) {
  cancels_.erase(server->id());
  being_canceled_.erase(std::remove(being_canceled_.begin(), being_canceled_.end(), server), being_canceled_.end());
  reset_pending_.erase(server->id());
  if (servers_.erase(server) == 0) return;
  idle_.erase(std::remove(idle_.begin(), idle_.end(), server), idle_.end());
  serve_waiters();
}

// ---- cancels ----

void Pool::cancel_forwarded(const ServerConn* server) { ++cancels_[server->id()].in_flight; }

bool Pool::hold_for_cancels(ServerConn* server) {
  auto it = cancels_.find(server->id());
  if (it == cancels_.end()) return false;
  if (it->second.in_flight > 0) {
    being_canceled_.push_back(server);
    return true;
  }
  // Every cancel is over but one was never confirmed: it may still land on whatever runs next.
  cancels_.erase(it);
  server->terminate();
  serve_waiters();  // a replacement may be opened for waiting clients
  return true;
}

bool Pool::defer_reset_for_cancels(ServerConn* server) {
  auto it = cancels_.find(server->id());
  if (it == cancels_.end() || it->second.in_flight == 0) return false;
  being_canceled_.push_back(server);
  reset_pending_.insert(server->id());
  return true;
}

void Pool::on_cancel_done(uint64_t server_id, CancelOutcome outcome) {
  auto it = cancels_.find(server_id);
  if (it == cancels_.end()) return;  // the server is gone
  CancelState& st = it->second;
  if (st.in_flight > 0) --st.in_flight;
  if (outcome == CancelOutcome::unknown) st.unknown = true;
  if (st.in_flight > 0) return;
  bool unknown = st.unknown;
  if (!unknown) cancels_.erase(it);
  auto held = std::find_if(being_canceled_.begin(), being_canceled_.end(),
                           [server_id](const ServerConn* s) { return s->id() == server_id; });
  // Not held: still with its client; its release point decides (an unknown entry closes it then).
  if (held == being_canceled_.end()) return;
  ServerConn* server = *held;
  being_canceled_.erase(held);
  if (reset_pending_.erase(server_id) > 0) {
    server->reset_and_release();  // then on_server_ready, which closes it if `unknown`
    return;
  }
  on_server_ready(server);  // idle, or handed to a waiting client; closed if `unknown`
}

void Pool::serve_waiters() {
  if (worker_.paused()) return;
  // Hand idle servers to waiting clients first, then open new ones within the limit.
  while (!waiting_.empty()) {
    ServerConn* s = take_idle();
    if (s == nullptr) break;
    ClientConn* c = waiting_.front();
    waiting_.pop_front();
    hand_over(s, c);
  }
  if (worker_.shutting_down()) return;
  size_t opening = count_opening();
  if (Clock::now() < retry_at_) return;
  while (waiting_.size() > opening && static_cast<int>(servers_.size()) < size_limit_) {
    open_server();
    ++opening;
  }
}

size_t Pool::count_opening() const {
  size_t opening = 0;
  for (ServerConn* s : servers_) {
    auto st = s->state();
    if (st == ServerConn::State::connecting || st == ServerConn::State::login) ++opening;
  }
  return opening;
}

bool Pool::has_live_server() const {
  for (const ServerConn* s : servers_) {
    auto st = s->state();
    if (st == ServerConn::State::idle || st == ServerConn::State::active || st == ServerConn::State::resetting) return true;
  }
  return false;
}

void Pool::close_idle_servers() {
  auto idle = std::move(idle_);
  idle_.clear();
  for (ServerConn* s : idle) s->terminate();
  auto held = std::move(being_canceled_);
  being_canceled_.clear();
  for (ServerConn* s : held) s->terminate();
}

void Pool::note_wait(Clock::duration waited) {
  double s = std::chrono::duration<double>(waited).count();
  ++wait_count_;
  wait_seconds_ += s;
  wait_histogram_.observe(s);
}

void Pool::note_transaction(Clock::duration held) {
  ++xact_count_;
  xact_seconds_ += std::chrono::duration<double>(held).count();
}

PoolStats Pool::stats(Clock::time_point now, PoolClientCount clients) const {
  PoolStats st;
  st.database = database_;
  st.user = user_;
  st.node = target().name;
  st.pool_mode = settings_.pool_mode == conf::PoolMode::session ? "session" : "transaction";
  st.size_limit = size_limit_;
  st.cl_active = clients.active;
  st.cl_idle = clients.idle;
  st.cl_waiting = static_cast<int>(waiting_.size());
  if (!waiting_.empty()) {
    st.maxwait_seconds = std::chrono::duration<double>(now - waiting_.front()->state_since()).count();
  }
  for (ServerConn* s : servers_) {
    switch (s->state()) {
      case ServerConn::State::active:
      case ServerConn::State::resetting:
        ++st.sv_active;
        break;
      case ServerConn::State::idle:
        ++st.sv_idle;
        break;
      case ServerConn::State::connecting:
      case ServerConn::State::login:
        ++st.sv_login;
        break;
      default:
        break;
    }
  }
  for (const ServerConn* s : being_canceled_) {
    if (s->state() != ServerConn::State::idle) continue;
    ++st.sv_being_canceled;
    --st.sv_idle;  // counted above by its state: it is idle, but not available
  }
  st.sv_total = static_cast<int>(servers_.size());
  st.xact_count = xact_count_;
  st.query_count = query_count_;
  st.wait_count = wait_count_;
  st.xact_seconds = xact_seconds_;
  st.wait_seconds = wait_seconds_;
  st.wait = wait_histogram_;
  return st;
}

void Pool::server_rows(Clock::time_point now, std::vector<ServerRow>& out) const {
  static constexpr const char* kStates[] = {"connecting", "login", "idle", "active", "resetting", "closing"};
  for (ServerConn* s : servers_) {
    ServerRow row;
    row.id = s->id();
    row.worker = worker_.index();
    row.user = user_;
    row.database = database_;
    bool held = std::find(being_canceled_.begin(), being_canceled_.end(), s) != being_canceled_.end();
    row.state = held ? "being_canceled" : kStates[static_cast<int>(s->state())];
    row.role = is_replica() ? "replica" : "primary";
    row.addr = target_.host + ":" + std::to_string(target_.port);
    row.backend_pid = s->backend_pid();
    row.connected_seconds = std::chrono::duration<double>(now - s->created_at()).count();
    row.state_seconds = std::chrono::duration<double>(now - s->state_since()).count();
    row.client_id = s->client() != nullptr ? s->client()->id() : 0;
    row.prepared_statements = s->prepared_count();
    out.push_back(std::move(row));
  }
}

void Pool::tick(Clock::time_point now) {
  // Clients that waited too long for a server.
  auto wait_limit = settings_.query_wait_timeout;
  while (wait_limit.count() > 0 && !waiting_.empty() && now - waiting_.front()->state_since() > wait_limit) {
    ClientConn* c = waiting_.front();
    waiting_.pop_front();
    std::string why = "pgsidecar: query_wait_timeout: no server connection became free within " +
                      std::to_string(wait_limit.count()) + " ms";
    if (!last_connect_error_.empty()) why += " (last server error: " + last_connect_error_ + ")";
    c->refuse_batch("57014", why);
  }
  // Servers stuck connecting or logging in.
  for (ServerConn* s : std::vector<ServerConn*>(servers_.begin(), servers_.end())) {
    auto st = s->state();
    if ((st == ServerConn::State::connecting || st == ServerConn::State::login) &&
        now - s->state_since() > settings_.server_connect_timeout) {
      on_server_login_failed(s, "server_connect_timeout");
      s->terminate();
    }
  }
  // Idle servers past their idle timeout or lifetime, keeping min_pool_size.
  auto idle_limit = settings_.server_idle_timeout;
  auto lifetime = settings_.server_lifetime;
  for (size_t i = 0; i < idle_.size();) {
    ServerConn* s = idle_[i];
    bool too_idle = idle_limit.count() > 0 && now - s->state_since() > idle_limit &&
                    static_cast<int>(servers_.size()) > min_size_;
    bool too_old = lifetime.count() > 0 && now - s->created_at() > lifetime;
    if (too_idle || too_old) {
      idle_.erase(idle_.begin() + static_cast<long>(i));
      s->terminate();
      continue;
    }
    ++i;
  }
  if (!worker_.shutting_down()) {
    serve_waiters();
    while (static_cast<int>(servers_.size()) < min_size_ && now >= retry_at_) open_server();
  }
}

}  // namespace pgs::proxy
