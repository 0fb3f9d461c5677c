#include "proxy/pool/pool.h"

#include <algorithm>
#include <type_traits>

#include "proxy/client/client_conn.h"
#include "proxy/core/log.h"
#include "proxy/core/process.h"
#include "proxy/core/worker.h"
#include "proxy/server/server_conn.h"

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

Pool::~Pool() = default;  // the lists unlink whatever they still hold

size_t Pool::total_servers() const {
  size_t n = 0;
  for (const auto& list : servers_) n += list.size();
  return n;
}

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
  target_.tls_mode = endpoint.server_tls;
  target_.allow_cleartext = endpoint.server_allow_cleartext;
  target_.server_dbname = db.server_dbname.empty() ? db.name : db.server_dbname;
  target_.user = user.name;
  target_.server_password = server_password;
  serve_waiters();  // a larger pool may serve waiting clients now
}

// ---- clients ----

ServerConn* Pool::take_idle() {
  ConnList<ServerConn>& idle = servers(ServerState::idle);
  // LIFO: the most recently used server is the warmest. One whose socket is already closing (its
  // state follows at its close callback) is never handed out. Nor is one idle for server_check_delay
  // that has sent something or closed: a server idle in the pool is expected to say nothing, so its
  // bytes are most likely a FATAL (terminated, shut down) whose read callback has not run yet in this
  // loop turn, and handing it out would cost the client its request. Bytes that are harmless (a
  // ParameterStatus after a reload, in the same loop turn) cost only a new connection: unread input is
  // not inspected, by default-deny.
  while (ServerConn* s = idle.back()) {
    if (s->closing()) {
      s->set_state(ServerState::closing);
      continue;
    }
    const bool check = Clock::now() - s->state_since() >= settings_.server_check_delay;
    if (!check || !s->has_unread_input()) return s;
    ++worker_.metrics().servers_failed_check;
    s->terminate();
  }
  return nullptr;
}

void Pool::request_server(ClientConn* client) {
  (void)client;  // at the end of clients(waiting): served in turn
  serve_waiters();
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
  (void)client;  // in clients(login_wait) until record_welcome or a failed login
  if (count_opening() == 0 && static_cast<int>(total_servers()) < size_limit_) open_server();
}

void Pool::record_welcome(const std::vector<std::pair<std::string, std::string>>& params) {
  welcome_ = params;
  bool first = !has_welcome_;
  has_welcome_ = true;
  if (first || !clients(ClientState::login_wait).empty()) {
    // A client's close is deferred to its close callback, so the copy stays valid through the loop.
    for (ClientConn* c : clients(ClientState::login_wait).snapshot()) c->on_welcome_ready();
  }
}

// ---- servers ----

void Pool::open_server() {
  auto* s = new ServerConn(*this, worker_.next_server_id());  // joins servers(connecting)
  ++worker_.metrics().server_connects;
  s->connect();
}

void Pool::on_server_ready(ServerConn* server) {
  if (server->state() != ServerConn::State::idle) return;
  if (hold_for_cancels(server)) return;
  retry_backoff_ = std::chrono::milliseconds{0};
  last_connect_error_.clear();
  ClientConn* first_waiting = clients(ClientState::waiting).front();
  if (first_waiting != nullptr && !worker_.shutting_down() && !worker_.paused()) {
    hand_over(server, first_waiting);
    return;
  }
  if (worker_.shutting_down()) server->terminate();
  // Otherwise it stays where its state put it: at the warm end of servers(idle).
}

void Pool::on_server_login_failed(ServerConn* server, const std::string& error) {
  LOG_WARN("pool " + name() + ": server login failed: " + error);
  ++worker_.metrics().server_connect_failures;
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
    for (ClientConn* c : clients(ClientState::waiting).snapshot()) c->reroute_to_primary();
  } else if (!has_live_server()) {
    // Nothing can free up for the clients waiting here (every server is gone and a new one failed:
    // the primary is down, restarting or refusing): they get the error now, as a direct connection
    // would, and keep their connection, rather than wait out query_wait_timeout.
    for (ClientConn* c : clients(ClientState::waiting).snapshot()) {
      c->refuse_batch("08006", "pgsidecar: cannot connect to the server: " + error);
    }
  }
  // A client cannot finish logging in without a server: tell the ones waiting for the welcome now.
  for (ClientConn* c : clients(ClientState::login_wait).snapshot()) {
    c->fail("08006", "pgsidecar: could not log in to the server: " + error);
  }
}

void Pool::on_server_closed(ServerConn* server) {
  cancels_.erase(server->id());
  reset_pending_.erase(server->id());
  ConnList<ServerConn>::unlink(server);
  serve_waiters();
}

// ---- cancels ----

void Pool::cancel_forwarded(ServerConn* server) {
  CancelState& st = cancels_[server->id()];
  ++st.in_flight;
  st.server = server;
}

bool Pool::defer_cancel_if_in_flight(ServerConn* server) {
  auto it = cancels_.find(server->id());
  if (it == cancels_.end() || it->second.in_flight == 0) return false;
  it->second.again = true;
  return true;
}

bool Pool::hold_for_cancels(ServerConn* server) {
  auto it = cancels_.find(server->id());
  if (it == cancels_.end()) return false;
  if (it->second.in_flight > 0) {
    server->set_state(ServerState::being_canceled);
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
  server->set_state(ServerState::being_canceled);
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
  bool again = std::exchange(st.again, false);
  ServerConn* cancelled = st.server;
  if (!unknown) cancels_.erase(it);
  ServerConn* server = servers(ServerState::being_canceled).front();
  while (server != nullptr && server->id() != server_id) server = ConnList<ServerConn>::next(server);
  // Not held: still with its client; its release point decides (an unknown entry closes it then). A
  // cancel deferred meanwhile goes now if the client's query still runs (it is the same client: the
  // server stayed bound, or it would be held); a held server's query is over, and so is the need.
  if (server == nullptr) {
    if (again && cancelled->state() == ServerState::active && cancelled->running_query()) {
      worker_.forward_cancel(*cancelled);
    }
    return;
  }
  if (reset_pending_.erase(server_id) > 0) {
    server->reset_and_release();  // then on_server_ready, which closes it if `unknown`
    return;
  }
  server->set_state(ServerState::idle);
  on_server_ready(server);  // stays idle, or handed to a waiting client; closed if `unknown`
}

void Pool::serve_waiters() {
  if (worker_.paused()) return;
  // Hand idle servers to waiting clients first, then open new ones within the limit.
  const ConnList<ClientConn>& waiting = clients(ClientState::waiting);
  while (ClientConn* c = waiting.front()) {
    ServerConn* s = take_idle();
    if (s == nullptr) break;
    hand_over(s, c);  // c leaves the waiting list (active, or refused)
  }
  if (worker_.shutting_down()) return;
  size_t opening = count_opening();
  if (Clock::now() < retry_at_) return;
  while (waiting.size() > opening && static_cast<int>(total_servers()) < size_limit_) {
    open_server();
    ++opening;
  }
}

size_t Pool::count_opening() const {
  return servers(ServerState::connecting).size() + servers(ServerState::login).size();
}

bool Pool::has_live_server() const {
  for (ServerState st : {ServerState::idle, ServerState::active, ServerState::resetting, ServerState::being_canceled}) {
    if (!servers(st).empty()) return true;
  }
  return false;
}

void Pool::close_idle_servers() {
  for (ServerState st : {ServerState::idle, ServerState::being_canceled}) {
    for (ServerConn* s : servers(st).snapshot()) s->terminate();
  }
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

PoolStats Pool::stats(Clock::time_point now) const {
  PoolStats st;
  st.database = database_;
  st.user = user_;
  st.node = target().name;
  st.pool_mode = settings_.pool_mode == conf::PoolMode::session ? "session" : "transaction";
  st.size_limit = size_limit_;
  auto count = [this](auto state) {
    if constexpr (std::is_same_v<decltype(state), ClientState>) {
      return static_cast<int>(clients(state).size());
    } else {
      return static_cast<int>(servers(state).size());
    }
  };
  // PgBouncer's cl_active: logged-in clients not waiting, bound to a server or idle in between.
  st.cl_idle = count(ClientState::idle);
  st.cl_active = count(ClientState::active) + st.cl_idle;
  st.cl_waiting = count(ClientState::waiting);
  if (const ClientConn* first = clients(ClientState::waiting).front()) {
    st.maxwait_seconds = std::chrono::duration<double>(now - first->state_since()).count();
  }
  st.sv_active = count(ServerState::active) + count(ServerState::resetting);
  st.sv_idle = count(ServerState::idle);
  st.sv_being_canceled = count(ServerState::being_canceled);
  st.sv_login = count(ServerState::connecting) + count(ServerState::login);
  st.sv_total = static_cast<int>(total_servers());
  st.xact_count = xact_count_;
  st.query_count = query_count_;
  st.wait_count = wait_count_;
  st.xact_seconds = xact_seconds_;
  st.wait_seconds = wait_seconds_;
  st.wait = wait_histogram_;
  return st;
}

void Pool::server_rows(Clock::time_point now, std::vector<ServerRow>& out) const {
  for (const auto& list : servers_) {
    for (const ServerConn* s = list.front(); s != nullptr; s = ConnList<ServerConn>::next(s)) {
      ServerRow row;
      row.id = s->id();
      row.worker = worker_.index();
      row.user = user_;
      row.database = database_;
      row.state = std::string(state_name(s->state()));
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
}

void Pool::tick(Clock::time_point now) {
  // Clients that waited too long for a server.
  auto wait_limit = settings_.query_wait_timeout;
  const ConnList<ClientConn>& waiting = clients(ClientState::waiting);
  while (wait_limit.count() > 0 && !waiting.empty() && now - waiting.front()->state_since() > wait_limit) {
    ClientConn* c = waiting.front();  // refuse_batch moves it to idle
    std::string why = "pgsidecar: query_wait_timeout: no server connection became free within " +
                      std::to_string(wait_limit.count()) + " ms";
    if (!last_connect_error_.empty()) why += " (last server error: " + last_connect_error_ + ")";
    c->refuse_batch("57014", why);
  }
  // Servers stuck connecting or logging in.
  for (ServerState opening : {ServerState::connecting, ServerState::login}) {
    for (ServerConn* s : servers(opening).snapshot()) {
      if (now - s->state_since() <= settings_.server_connect_timeout) continue;
      on_server_login_failed(s, "server_connect_timeout (" + s->connect_stage() + ")");
      s->terminate();
    }
  }
  // Idle servers past their idle timeout or lifetime, keeping min_pool_size.
  auto idle_limit = settings_.server_idle_timeout;
  auto lifetime = settings_.server_lifetime;
  for (ServerConn* s : servers(ServerState::idle).snapshot()) {
    bool too_idle = idle_limit.count() > 0 && now - s->state_since() > idle_limit &&
                    static_cast<int>(total_servers() - servers(ServerState::closing).size()) > min_size_;
    bool too_old = lifetime.count() > 0 && now - s->created_at() > lifetime;
    if (too_idle || too_old) s->terminate();
  }
  if (!worker_.shutting_down()) {
    serve_waiters();
    while (static_cast<int>(total_servers()) < min_size_ && now >= retry_at_) open_server();
  }
}

}  // namespace pgs::proxy
