// A pool of server connections for one (database, user) on one worker. Its share of the process-wide
// pool_size is pool_size / workers (at least 1). Clients wait in FIFO order for a server.
//
// States are the pool's lists: one ConnList of servers per ServerState and one of clients per
// ClientState (conn_state.h). A connection's set_state() is the only thing that moves it between them,
// so the counts of SHOW POOLS and /metrics are the lists' sizes, and "an idle server" or "the first
// waiting client" is a list's end, never a search.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "conf/config.h"
#include "proxy/core/conn_list.h"
#include "proxy/core/conn_state.h"
#include "proxy/core/stats.h"
#include "proxy/net/event_clock.h"
#include "proxy/pool/cancel.h"
#include "proxy/session/session_params.h"

namespace pgs::proxy {

class ClientConn;
class ServerConn;
class Worker;

struct PoolTarget {
  std::string name;  // "primary", "replica1", ...
  std::string host;
  uint16_t port = 0;
  std::string server_dbname;
  std::string user;
  std::string server_password;
  conf::ServerTls tls_mode = conf::ServerTls::disable;  // the node's server_tls
  bool allow_cleartext = false;                         // the node's server_allow_cleartext
};

class Pool {
 public:
  // target: -1 the primary, i >= 0 replica i of the config.
  Pool(Worker& worker, std::string database, std::string user, int target = -1);
  ~Pool();

  const std::string& database() const { return database_; }
  const std::string& user() const { return user_; }
  std::string name() const { return database_ + "/" + user_ + (target_index_ < 0 ? "" : "@" + target_.name); }
  int target_index() const { return target_index_; }
  bool is_replica() const { return target_index_ >= 0; }
  size_t busy_servers() const { return total_servers() - idle_servers(); }
  // A replica pool whose logins were refused for this (database, user) just now: route around it.
  bool recently_refused() const { return Clock::now() < refused_until_; }
  Worker& worker() { return worker_; }
  const conf::PoolConfig& settings() const { return settings_; }
  const PoolTarget& target() const { return target_; }
  int size_limit() const { return size_limit_; }

  // Recomputes limits, timeouts and the server endpoint from the live config.
  void apply_config(const conf::Config& config, const conf::DatabaseConfig& db, const conf::UserConfig& user,
                    const std::string& server_password);

  // ---- the lists (moved only by the connections' set_state) ----
  ConnList<ServerConn>& servers(ServerState s) { return servers_[static_cast<size_t>(s)]; }
  const ConnList<ServerConn>& servers(ServerState s) const { return servers_[static_cast<size_t>(s)]; }
  ConnList<ClientConn>& clients(ClientState s) { return clients_[static_cast<size_t>(s)]; }
  const ConnList<ClientConn>& clients(ClientState s) const { return clients_[static_cast<size_t>(s)]; }

  // ---- clients ----
  // A client just joined this pool's waiting list: it is assigned a server now
  // (client->on_server_assigned) or when one is free, in FIFO order.
  void request_server(ClientConn* client);
  // A client is done with its server. `clean` = at a release point and reusable.
  void release(ServerConn* server, bool clean);
  // Welcome parameters (ParameterStatus of a real server) are needed to finish a client's login.
  bool has_welcome() const { return has_welcome_; }
  const std::vector<std::pair<std::string, std::string>>& welcome() const { return welcome_; }
  void request_welcome(ClientConn* client);

  // ---- servers ----
  void on_server_ready(ServerConn* server);              // login finished, or reset finished
  void on_server_login_failed(ServerConn* server, const std::string& error);
  void on_server_closed(ServerConn* server);             // from its close callback
  void record_welcome(const std::vector<std::pair<std::string, std::string>>& params);

  // Timeouts, min_pool_size, retry after a failed connect. Called by the worker's tick.
  void tick(Clock::time_point now);
  // Shutdown: close idle servers, refuse waiting clients.
  void close_idle_servers();
  void resume() { serve_waiters(); }  // after admin RESUME

  // ---- cancels (see cancel.h) ----
  // A CancelRequest for the query running on `server` was forwarded to Postgres. Until every such
  // cancel is resolved, the server goes to no other client: reaching its release point meanwhile, it
  // waits apart (being canceled), then rejoins the idle list; if one cannot be resolved (outcome
  // unknown) it is closed instead, since that cancel could still hit the next client's query.
  void cancel_forwarded(ServerConn* server);
  // Another cancel for `server`'s query while one is in flight to it: true when it is deferred, and
  // sent once that one is resolved if the client's query still runs. One cancel connection per server
  // at a time: a client's cancel storm cannot flood Postgres (whose listen backlog then drops
  // connections, so that cancels end unresolved and the server is lost).
  bool defer_cancel_if_in_flight(ServerConn* server);
  void on_cancel_done(uint64_t server_id, CancelOutcome outcome);
  // A server about to be reset (DISCARD ALL: session mode, a pinned client's end) with cancels still
  // in flight: true when it waits apart until they are resolved, then resets (a cancel landing on the
  // DISCARD ALL would fail it and cost the connection).
  bool defer_reset_for_cancels(ServerConn* server);

  // ---- counts for admin/metrics ----
  void note_wait(Clock::duration waited);
  void note_transaction(Clock::duration held);
  void note_query() { ++query_count_; }
  PoolStats stats(Clock::time_point now) const;
  void server_rows(Clock::time_point now, std::vector<ServerRow>& out) const;
  size_t waiting_clients() const { return clients(ClientState::waiting).size(); }
  size_t idle_servers() const { return servers(ServerState::idle).size(); }
  size_t total_servers() const;  // in any state, closing ones included (they still hold a socket)
  size_t connecting_servers() const { return count_opening(); }

 private:
  void open_server();
  ServerConn* take_idle();
  void hand_over(ServerConn* server, ClientConn* client);
  void serve_waiters();
  size_t count_opening() const;
  // A server that is or will be free without a new login: idle, bound to a client, or resetting.
  bool has_live_server() const;
  // At a release point: true when cancels to `server` keep it from the idle list (held or closed).
  bool hold_for_cancels(ServerConn* server);

  Worker& worker_;
  std::string database_;
  std::string user_;
  int target_index_ = -1;
  conf::PoolConfig settings_;
  PoolTarget target_;
  int size_limit_ = 1;
  int min_size_ = 0;
  std::array<ConnList<ServerConn>, kServerStateCount> servers_;
  std::array<ConnList<ClientConn>, kClientStateCount> clients_;  // startup, auth, closing stay empty
  struct CancelState {
    int in_flight = 0;     // forwarded, not resolved yet
    bool unknown = false;  // one was never resolved: do not reuse the server
    bool again = false;    // another was asked for meanwhile (defer_cancel_if_in_flight)
    ServerConn* server = nullptr;  // valid while the entry is: on_server_closed erases it
  };
  std::unordered_map<uint64_t, CancelState> cancels_;  // by server id; live servers only
  std::unordered_set<uint64_t> reset_pending_;  // being canceled, to reset once they are resolved
  bool has_welcome_ = false;
  std::vector<std::pair<std::string, std::string>> welcome_;
  std::string last_connect_error_;
  Clock::time_point retry_at_{};
  Clock::time_point refused_until_{};
  uint64_t xact_count_ = 0, query_count_ = 0, wait_count_ = 0;
  double xact_seconds_ = 0, wait_seconds_ = 0;
  Histogram wait_histogram_;
  std::chrono::milliseconds retry_backoff_{0};
};

}  // namespace pgs::proxy
