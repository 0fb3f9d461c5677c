// One client connection: start-up and authentication, then the pooled session. In transaction mode a
// server is bound from the first message of a transaction to the ReadyForQuery 'I' that ends it.
// Thread affinity: its worker's loop.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <vector>
#include <string>
#include <unordered_map>

#include "cache/store.h"
#include "protocol/frame.h"
#include "protocol/frontend.h"
#include "proxy/cache_session/result_cache_session.h"
#include "proxy/core/conn_list.h"
#include "proxy/core/conn_state.h"
#include "proxy/auth/auth_cache.h"
#include "proxy/login/login_exchange.h"
#include "proxy/net/event_clock.h"
#include "proxy/net/stream.h"
#include "proxy/request/buffered_request.h"
#include "proxy/request/cache_request.h"
#include "proxy/routing/request_routing.h"
#include "proxy/server/server_conn.h"
#include "proxy/session/client_statements.h"
#include "proxy/session/prepared.h"
#include "proxy/session/session_params.h"
#include "proxy/session/session_tracker.h"
#include "proxy/session/sql_prepared.h"
#include "proxy/session_state/client_session_state.h"
#include "proxy/sql_gate/sql_prepared_gate.h"

namespace pgs::proxy {

class Pool;
class ServerConn;
class SessionCodeCatalog;
class Worker;

class ClientConn final : public Stream {
 public:
  using State = ClientState;

  ClientConn(Worker& worker, uint64_t id);
  ~ClientConn() override { ConnList<ClientConn>::unlink(this); }
  void start();  // after accept

  State state() const { return state_; }
  ConnListHook<ClientConn>& list_hook() { return list_hook_; }
  const ConnListHook<ClientConn>& list_hook() const { return list_hook_; }
  uint64_t id() const { return id_; }
  int32_t cancel_pid() const { return cancel_pid_; }
  int32_t cancel_secret() const { return cancel_secret_; }
  const std::string& user() const { return request_.user; }
  const std::string& database() const { return request_.database; }
  const std::string& application_name() const { return request_.application_name; }
  const std::string& peer() const { return peer_; }
  ServerConn* server() const { return server_; }
  Pool* pool() const { return pool_; }
  Pool* login_pool() const { return primary_pool_; }  // (database, user) on the primary; null before login
  Clock::time_point state_since() const { return state_since_; }
  Clock::time_point created_at() const { return created_at_; }
  Clock::time_point last_activity() const { return last_activity_; }
  const GucMap& settings() const { return request_.gucs; }

  // ---- from the pool / server ----
  void on_welcome_ready();                         // pool knows server parameters now
  void on_auth_answer(const AuthAnswer& answer);   // auth_query answered the lookup this client waits for
  void on_server_assigned(ServerConn* server);     // may run the sync statement first
  void on_server_bytes();                          // the server appended to our outbox; flush
  void on_server_drained();                        // the server's write queue went down
  void on_server_at_release_point();              // ReadyForQuery 'I' with nothing in flight
  // The server died under us. `between_requests`: nothing was in flight on it.
  void on_server_lost(const std::string& message, bool between_requests);
  void reroute_to_primary();                       // a waiting read whose replica failed
  // The last extended-protocol batch can be sent again (kept whole, within bounds).
  bool can_retry_batch() const { return routing_.can_retry_batch(); }
  void retry_batch();                              // send it again (its plan went stale after DDL)
  void on_parameter_status(std::string_view name, std::string_view value);  // server reported a setting
  void on_probe_row(const std::vector<std::optional<std::string>>& values);  // session probe result
  // A statement of this client's changed its SQL-prepared statements (the server confirmed it).
  void apply_sql_effect(const SqlPrepEffect& e) { sql_gate_.apply(e); }
  // The statements that bring the server to this client's SQL-prepared state were answered: send the
  // held request, or answer it with their `error` (a whole ErrorResponse) and the server's `status`.
  void on_sql_sync_done(std::string error, char status);
  // A request (Query, or a batch up to Sync) finished: digests and the slow-query log.
  // `shape`: the statement's lexical shape when it was computed on the way out (0: unknown).
  void on_request_done(std::string_view sql, const BindParams* params, Clock::duration took, uint64_t rows,
                       const std::string& sqlstate, uint64_t shape = 0);
  bool pinned() const { return session_state_.pinned(); }
  std::string pin_reasons() const { return session_state_.pin_reasons(); }  // "listen,advisory_lock" or ""
  // No server in time: the client's first request gets an ERROR; the connection stays usable.
  void refuse_batch(const char* sqlstate, const std::string& message);
  // ---- result cache (issue 5; client_cache.cc): what cache_ decides, carried out ----
  // True when the server must show this client's replies to the cache (observe_reply).
  bool observes_replies() const { return cache_.observes_replies(); }
  // A reply to one of this client's requests, just appended to its outbox: feeds the capture of a
  // miss and the commit tracking that invalidates what a committed transaction wrote.
  void observe_reply(char type, protocol::Bytes whole, size_t outbox_offset);
  // The reply has a part the capture cannot see (a streamed row, a notice, the server lost).
  void abort_capture();
  void on_cache_lookup(uint64_t seq, cache::GetStatus status, std::vector<uint64_t> generations, std::string value,
                       std::optional<uint64_t> replica_floor);
  // A waiter's leader finished: its stored messages (nullptr: the leader failed, or the wait ran out).
  void on_cache_wait_over(const std::string* messages);
  void on_bump_done();  // Redis confirmed a bump of this client's commit (or gave up)
  // Ends the session with a FATAL ErrorResponse.
  void fail(const char* sqlstate, const std::string& message);
  // FATAL 53300 "sorry, too many clients already", then close (max_client_conn reached).
  void refuse_too_many();
  // Accepted beyond max_client_conn only to read a CancelRequest (fd_limit.h kCancelReserveConnections).
  bool cancel_only() const { return cancel_only_; }
  // Shutdown: close now if no transaction is open, otherwise once it ends.
  void begin_shutdown();
  // The worker's tick: a client whose input is paused (waiting on its server, the cache, a full
  // queue) and that has left is handled as if its end had been read, so that what it held (a server
  // that may itself wait for this client, as a COPY does) is let go.
  void notice_hangup_while_paused();

 protected:
  void on_data() override;
  void on_read_error(int status) override;
  void on_write_progress() override;
  void on_write_error(int status) override;
  void on_closed() override;

 private:
  // The one place a client changes state: it also moves to that state's list of the pool it belongs to
  // then (login_wait, idle: its login pool; waiting, active: the pool it runs on; otherwise none).
  void set_state(State s);
  void process_startup();
  bool handle_startup_packet(const protocol::StartupFrame& f);
  void begin_auth();
  void begin_login(const UserSecrets* secrets);
  void note_client_keys(const protocol::scram::ClientKeys& keys);  // starts the exchange (after auth_query, if it asked)
  void process_auth();
  // Acts on what the login exchange answered: false once the client is no longer in State::auth
  // (logged in, waiting for its pool, or failed).
  bool act_on_login(LoginAction a);
  void finish_auth();
  void finish_login();
  void finish_admin_login();
  bool allocate_cancel_key();  // false: the random source failed and the login was failed
  void process_admin();
  void process_session();
  // The next whole (or streamed) message of the session, checked; nullopt when more bytes are needed,
  // or when it was refused (the session is then failed: check state()).
  std::optional<protocol::Frame> next_client_frame();
  // The message decoded once: the view every handler below reads. nullopt: it does not decode, and
  // the session was failed (08P01).
  std::optional<protocol::frontend::Message> decode_client_message(const protocol::Frame& f);
  void skip_refused_frame(const protocol::Frame& f);
  // The buffered request, whose first message is `first` (decoded from the read buffer's head), starts
  // a transaction: the cache, or a server.
  void begin_transaction(const protocol::frontend::Message& first);
  void end_session_pass(bool pause);
  bool forward_message(const protocol::frontend::Message& m);
  // A request kept whole (a stale plan's retry, a failed replica's re-run), forwarded again message by
  // message. False when the client failed meanwhile.
  bool forward_saved_request(const std::string& bytes);
  bool forward_query(const protocol::Frame& f, std::string_view sql);
  // Protocol-level prepared statements (client_prepared.cc): what statements_ decides, done on server_.
  bool forward_parse(const protocol::Frame& f, const protocol::frontend::Parse& parse);
  bool answer_prepare_locally(const protocol::Frame& parse_frame, const protocol::frontend::Parse& parse);
  bool forward_bind(const protocol::Frame& f, const protocol::frontend::BindView& bind);
  void note_bound_statement(const PreparedRef& ps);  // a Bind of one of the client's statements
  bool forward_describe(const protocol::Frame& f, const protocol::frontend::Describe& describe);
  bool forward_close(const protocol::Frame& f, const protocol::frontend::Close& close);
  // The server is not the client's own: the pool runs in transaction mode.
  bool transaction_pooling() const;
  // Session-state tracking (client_session.cc): what session_state_ decides about a statement on its way
  // to server_, done there. Returns whether it may change session state; `refusal` receives what to send
  // in its place ("" to send it). `shape` (optional) receives the statement's lexical shape when deciding
  // needed it. `session_words`: statement_may_change_session(sql), when the caller has it already.
  bool note_statement(std::string_view sql, std::string& refusal, uint64_t* shape = nullptr,
                      std::optional<bool> session_words = std::nullopt);
  // SQL-level prepared statements (client_sql_prepared.cc): what sql_gate_ decides before a message goes
  // to server_, done there (the sync started, or the session failed).
  SqlGateStep pass_sql_gate(const protocol::frontend::Message& m);
  // What `sql` does to SQL-prepared statements (PREPARE q AS ..., DEALLOCATE q), or null.
  SqlPrepEffectsRef sql_effects_of(std::string_view sql);
  // Read/write routing (client_routing.cc): what routing_ decides, done with pools and servers.
  Pool* choose_pool(const BufferedRequest& request);
  RoutingPolicy routing_policy() const;
  bool on_primary() const;  // a pool is chosen and it is the primary's
  // At the release point: runs the LSN probe if routing_ (or the cache's commit bump) wants the primary's
  // WAL position. True when it was started (its row, or the next release point, resumes).
  bool start_lsn_probe_if_needed();
  // After forwarding a Query: the LSN probe goes right behind it when it provably ends a transaction
  // that may have written (client_routing.cc).
  void send_lsn_probe_behind(const protocol::Frame& f, std::string_view sql);
  void on_lsn_row(const std::vector<std::optional<std::string>>& values);
  void end_lsn_hold();  // the binding ends: output held for an LSN row that did not come flows again
  // A probe of the proxy's own runs on the bound server (the session probe, or routing_'s LSN probe).
  bool probe_running() const { return session_state_.probe_running() || routing_.lsn_probe_running(); }
  void unpin_metrics();
  // Result cache (client_cache.cc): what cache_ decides, done with Redis, the worker and the stream.
  enum class CacheAttempt { pending, forward };  // pending: a Redis answer (or a leader) resumes us
  CacheAttempt try_cache(const BufferedRequest& request);
  bool cache_enabled() const;         // the worker has a result cache and [cache] is enabled
  CacheClient cache_client() const;   // the client as the key sees it
  void act_on_cache(CacheStep step, std::string_view messages);  // resumes after a lookup or a wait
  bool serve_from_cache(std::string_view messages);  // writes the hit; false when the request changed
  void note_cache_writes(std::string_view sql);
  void note_unnamed_bound();  // a Bind runs the unnamed statement: its writes are noted
  // Bumps the binding's committed tables now (without the LSN when nullopt).
  void send_commit_bump(std::optional<uint64_t> commit_lsn);
  void on_cache_lsn_probe_done(std::optional<uint64_t> commit_lsn);  // the LSN probe's row, or none
  // A server was bound: where the captured miss (if any) is read, for the store decision.
  void note_cache_read_target();
  void cache_on_server_lost();
  void leave_cache();  // the client goes: leave a wait, hand a lead on
  void detach_server(bool client_gone);
  // Messages larger than max_parse_bytes (client_stream.cc): forwarded as their first bytes, then
  // the rest of the body passes through as it arrives.
  bool forward_large_message(const protocol::frontend::Message& m);
  bool pump_large_message();  // true once the current large message passed (or was dropped) whole
  void note_unknown_writes();  // a statement the proxy cannot read may write any table
  // The request at the head of rbuf_ is a Query (or FunctionCall) that gets an error instead of running:
  // drops it (a large one as it arrives). False when the head is another message (or incomplete).
  bool drop_head_query();
  // A limit was hit: FATAL 54000, then the rest of the message (`total_bytes` from its first byte,
  // part of it buffered) is read and dropped before the close, so that the client reads the error.
  void refuse_large_message(uint64_t total_bytes, const std::string& message);
  void refuse_oversized_message(const protocol::FrameHeader& head, uint32_t max_message_bytes);
  void drain_refused_message();
  size_t inbound_remaining_ = 0;  // body bytes of the current large message still to pass through
  bool inbound_discard_ = false;  // ... to drop instead (a refused batch's message)
  uint64_t drain_before_close_ = 0;  // bytes of a refused message still to drop (State::closing)

  Worker& worker_;
  uint64_t id_;
  State state_ = State::startup;
  ConnListHook<ClientConn> list_hook_;
  Clock::time_point created_at_;
  Clock::time_point state_since_;
  Clock::time_point last_activity_;
  Clock::time_point bound_at_;  // when the current server was assigned
  std::string peer_;
  int32_t cancel_pid_ = 0;
  int32_t cancel_secret_ = 0;
  StartupRequest request_;
  Pool* pool_ = nullptr;          // the pool of the current (or last) transaction
  Pool* primary_pool_ = nullptr;  // the login pool: (database, user) on the primary
  RequestRouting routing_;  // read/write routing, replica retry, the LSN probe and floor (issue 4)
  std::shared_ptr<const std::string> batch_sql_;  // the statement of the current extended batch
  uint64_t batch_shape_ = 0;  // batch_sql_'s lexical shape when note_statement computed it (0: unknown)
  std::shared_ptr<const BindParams> batch_params_;  // its last Bind's values (log_parameters only)
  void capture_bind_params(const protocol::Frame& bind);
  ServerConn* server_ = nullptr;
  // The authentication exchange, from begin_auth() until it ends (null before and after).
  std::unique_ptr<LoginExchange> login_;
  // auth_query's answer for this login (the secrets login_ reads), held until the login ends.
  std::shared_ptr<const UserSecrets> looked_up_;
  bool awaiting_lookup_ = false;  // in State::auth, waiting for on_auth_answer
  std::shared_ptr<const void> snapshot_hold_;  // keeps the login's secrets (login_) alive across a reload
  bool admin_ = false;         // connected to the admin console database
  bool admitted_ = false;      // counted against max_client_conn
  bool cancel_only_ = false;   // beyond it, in the cancel reserve: its startup packet may only cancel
  bool shutting_down_ = false;
  bool skip_until_sync_ = false;  // a refused extended-protocol batch: ignore up to its Sync
  ClientStatements statements_;  // the client's protocol-level prepared statements
  // The result cache: lookups, hits, stampedes, capture and store, commit bumps (issue 5, issue 12).
  ResultCacheSession cache_;
  // Session-state tracking: pins, the session probe, the parameters the client was told.
  ClientSessionState session_state_;
  SqlPreparedGate sql_gate_;  // the client's SQL-level prepared statements (PREPARE name AS ...) and their gate
  char skip_status_ = 'I';    // the ReadyForQuery status that ends a refused batch
};

}  // namespace pgs::proxy
