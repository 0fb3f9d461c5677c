// One connection from the proxy to a Postgres server: connect, log in (SCRAM/md5/cleartext client side),
// sit idle in its pool (still read: a FATAL or a NOTICE can arrive any time), then serve one client at a
// time. Thread affinity: its worker's loop.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "protocol/auth.h"
#include "protocol/frame.h"
#include "proxy/session_params.h"
#include "proxy/stream.h"

namespace pgs::proxy {

class ClientConn;
class Pool;
using Clock = std::chrono::steady_clock;

class ServerConn final : public Stream {
 public:
  enum class State { connecting, login, idle, active, resetting, closing };

  ServerConn(Pool& pool, uint64_t id);
  void connect();

  State state() const { return state_; }
  uint64_t id() const { return id_; }
  Pool& pool() { return pool_; }
  ClientConn* client() const { return client_; }
  int32_t backend_pid() const { return backend_pid_; }
  int32_t backend_secret() const { return backend_secret_; }
  Clock::time_point created_at() const { return created_at_; }
  Clock::time_point state_since() const { return state_since_; }

  // Transaction tracking (docs "Message Flow"): every Query, Sync and FunctionCall yields one
  // ReadyForQuery; an extended-protocol message not yet followed by Sync keeps the batch open.
  int pending_ready() const { return pending_ready_; }
  bool unsynced() const { return unsynced_; }
  char transaction_status() const { return tx_status_; }
  // True when the server can be handed to another client: nothing in flight, outside a transaction.
  bool at_release_point() const {
    return pending_ready_ == 0 && !unsynced_ && tx_status_ == 'I' && swallow_ready_ == 0;
  }
  bool running_query() const { return pending_ready_ > 0; }

  // Binding to a client (Pool calls these). `sync_sql` (may be empty) runs first, its replies swallowed.
  void attach(ClientConn* client, const std::string& sync_sql, GucMap applied_after);
  void detach();
  // Client bytes to forward; `type` is the message type byte, for transaction tracking.
  void note_client_message(char type);
  // Session-mode cleanup before reuse: DISCARD ALL, replies swallowed, then back to the pool.
  void reset_and_release();
  // Called by the client when its outbox drained below the low-water mark.
  void resume_reading() { if (state_ == State::active) start_reading(); }

  const GucMap& applied() const { return applied_; }
  const GucMap& defaults() const { return defaults_; }
  void terminate();  // sends Terminate and closes

 protected:
  void on_data() override;
  void on_read_error(int status) override;
  void on_write_progress() override;
  void on_closed() override;

 private:
  static void connect_cb(uv_connect_t* req, int status) noexcept;
  void on_connected(int status);
  void set_state(State s);
  bool handle_login_message(const protocol::Frame& f);
  bool handle_auth_request(const protocol::Frame& f);
  void process_active();
  bool handle_active_frame(const protocol::Frame& f);
  void process_idle();
  void fail(const std::string& reason);

  Pool& pool_;
  uint64_t id_;
  State state_ = State::connecting;
  uv_connect_t connect_req_{};
  ClientConn* client_ = nullptr;
  Clock::time_point created_at_;
  Clock::time_point state_since_;
  int32_t backend_pid_ = 0;
  int32_t backend_secret_ = 0;
  std::unique_ptr<protocol::scram::ClientExchange> scram_;
  GucMap applied_;       // settings explicitly set on this server (others are at their defaults)
  GucMap defaults_;      // ParameterStatus values reported at login
  GucMap pending_applied_;  // what `applied_` becomes once the sync statement succeeds
  std::vector<std::pair<std::string, std::string>> login_params_;  // ParameterStatus at login, as spelled
  int pending_ready_ = 0;
  int swallow_ready_ = 0;   // ReadyForQuery messages that answer our own statements
  bool sync_failed_ = false;
  bool unsynced_ = false;
  char tx_status_ = 'I';
  size_t passthrough_remaining_ = 0;  // bytes of a large DataRow/CopyData still to forward as they come
};

}  // namespace pgs::proxy
