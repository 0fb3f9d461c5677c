// One connection from the proxy to a Postgres server: connect, log in (SCRAM/md5/cleartext client side),
// sit idle in its pool (still read: a FATAL or a NOTICE can arrive any time), then serve one client at a
// time. Thread affinity: its worker's loop.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "protocol/auth.h"
#include "protocol/frame.h"
#include "proxy/core/conn_list.h"
#include "proxy/core/conn_state.h"
#include "proxy/net/event_clock.h"
#include "proxy/net/resolver.h"
#include "proxy/net/stream.h"
#include "proxy/pool/cancel.h"
#include "proxy/session/prepared.h"
#include "proxy/session/session_params.h"
#include "proxy/session/sql_prepared.h"

namespace pgs::proxy {

class ClientConn;
class Pool;
using BindParams = std::vector<std::optional<std::string>>;  // text form; nullopt = NULL

class ServerConn final : public Stream {
 public:
  using State = ServerState;

  ServerConn(Pool& pool, uint64_t id);
  ~ServerConn() override;
  // Resolves the node's host (HostResolver: at once for an address), then connects to its addresses in
  // order until one accepts; all of it within server_connect_timeout (Pool::tick).
  void connect();
  // Where an opening connection is, for a timeout's log line: "resolving the host \"db\"", "connecting
  // to 10.0.0.5", "logging in".
  std::string connect_stage() const;

  State state() const { return state_; }
  // The one place a server changes state: it also moves to that state's list of its pool (pool.h).
  void set_state(State s);
  ConnListHook<ServerConn>& list_hook() { return list_hook_; }
  const ConnListHook<ServerConn>& list_hook() const { return list_hook_; }
  uint64_t id() const { return id_; }
  Pool& pool() { return pool_; }
  ClientConn* client() const { return client_; }
  int32_t backend_pid() const { return backend_pid_; }
  int32_t backend_secret() const { return backend_secret_; }
  Clock::time_point created_at() const { return created_at_; }
  Clock::time_point state_since() const { return state_since_; }
  // Where a CancelRequest for this server's query goes: the address this connection reached (not the
  // name again: after a failover it may name another server), with TLS when this connection has it.
  const CancelTarget& cancel_target() const { return cancel_target_; }

  // Reply tracking (docs "Message Flow", "Extended Query"). Every message sent to the server that
  // expects replies queues one Expected entry; replies are matched to the head of the queue in order.
  // After an ErrorResponse in the extended protocol the server skips everything up to Sync, so do we.
  int pending_ready() const { return pending_ready_; }
  bool unsynced() const { return unsynced_; }
  char transaction_status() const { return tx_status_; }
  // True when the server can be handed to another client: nothing in flight, outside a transaction.
  bool at_release_point() const { return expected_.empty() && !unsynced_ && tx_status_ == 'I'; }
  bool running_query() const { return !expected_.empty(); }
  // "queue=[query,sync] unsynced tx=I": what the proxy waits for, for a log line.
  std::string describe_queue() const;
  // Bytes of replies given to the current client since attach() (0: a retry elsewhere is safe).
  uint64_t replied_bytes() const { return replied_bytes_; }

  // Binding to a client (Pool calls these). `sync_sql` (may be empty) runs first, its replies swallowed;
  // once it succeeded, `applied_after` is the server's applied settings (unused when `sync_sql` is empty).
  void attach(ClientConn* client, const std::string& sync_sql, GucMap applied_after);
  void detach();
  // ---- what the client sends ----
  // Each of these writes the message and queues the replies it is owed in one step: nothing reaches
  // the server without its entry in the reply queue (the client cannot write to outbox()).
  // A client message, forwarded unchanged.
  void forward(char type, std::string_view whole_message);
  // More body bytes of the streamed message forwarded last (its entry is queued already).
  void forward_continuation(std::string_view body_bytes) { outbox().append(body_bytes); }
  // A Query written by the proxy in place of the client's (a refusal that fails on the server).
  void send_query(std::string_view sql);
  // A Parse of `statement` (a server-side name, or "" for the unnamed statement). `tracked`: the
  // statement is the proxy's shared one, recorded as prepared on this server once ParseComplete comes.
  void send_parse(const std::string& statement, std::string_view sql, const std::vector<uint32_t>& types,
                  bool tracked);
  // A Bind addressed to `statement`, with the client's parameter formats, values and result formats
  // (`rest`; `streamed` more of them follow through forward_continuation). `tracked` as for send_parse.
  void send_bind(std::string_view portal, const std::string& statement, std::string_view rest, size_t streamed,
                 bool tracked);
  // A Describe of the statement `statement`.
  void send_describe_statement(const std::string& statement);
  // The statement text of the request just queued (a Query, or the Sync ending a batch).
  // `shape`: the statement's lexical shape when the client computed it (0: unknown), for its digest.
  // The last request is a simple Query of this text (copied into a recycled buffer: no allocation once
  // warm).
  void annotate_last_query(std::string_view sql, uint64_t shape = 0);
  void annotate_last_request(std::shared_ptr<const std::string> sql,
                             std::shared_ptr<const BindParams> params = nullptr, uint64_t shape = 0);
  // A reply the proxy gives itself (a ParseComplete for a statement the server already has); it goes to
  // the client when every earlier reply has.
  void push_synthetic(std::string message);
  // Prepared statements on this server (proxy-wide names).
  const ServerStatements& prepared_statements() const { return statements_; }
  size_t prepared_count() const { return statements_.size(); }
  void forget_prepared(const std::string& name) { statements_.erase(name); }
  // The session probe's list of the statements the server holds: tracked ones it lacks are forgotten.
  void keep_prepared_only(const std::vector<std::string>& held) { statements_.keep_only(held); }
  // Sends Parse for `name` unless the server has it; replies swallowed.
  void ensure_prepared(const std::string& name, std::string_view sql, const std::vector<uint32_t>& types);
  // Before a Parse of `name`: a Close first if the server holds a stale plan under that name.
  void close_if_stale(const std::string& name);
  // Records a Parse just written for `name` (may Close the least recently used statement).
  void note_prepared(const std::string& name);
  // The client ran DISCARD ALL / DEALLOCATE ALL: every statement is gone once it succeeds.
  void expect_statements_cleared() { clear_statements_on_ready_ = true; }
  // SQL-level prepared statements this server holds under their clients' names (see sql_prepared.h);
  // bounded by sql_capacity() through plan_sql_sync's evictions.
  SqlStatementSet& sql_statements() { return sql_statements_; }
  size_t sql_capacity() const;
  // What the statements of the request just queued (a Query, an Execute, a Close) do to SQL-prepared
  // statements; applied as their CommandComplete (CloseComplete) arrives.
  void attach_sql_effects(SqlPrepEffectsRef effects);
  // Sends the statements that bring this server to the client's state before its request (replies
  // swallowed). When they are answered, client()->on_sql_sync_done() says how it went.
  void start_sql_sync(const SqlSyncPlan& plan);
  // Runs the session-state probe (see SessionTracker); the row reaches client()->on_probe_row().
  void start_probe(const std::string& sql);
  // The probe read a setting's value on this server (nullopt: not set at all).
  void set_applied(const std::string& name, const std::optional<std::string>& value);
  // Session-mode cleanup before reuse: DISCARD ALL, replies swallowed, then back to the pool.
  void reset_and_release();
  // Called by the client when its outbox drained below the low-water mark.
  void resume_reading() { if (state_ == State::active) start_reading(); }

  const GucMap& applied() const { return applied_; }
  // Code the proxy could not see ran here (session_code.h): the session may hold custom settings that no
  // query can list (placeholders are not in pg_settings), so the next client's sync starts with RESET ALL.
  void mark_settings_unknown() { settings_unknown_ = true; }
  bool settings_unknown() const { return settings_unknown_; }
  void clear_settings_unknown() { settings_unknown_ = false; }
  const GucMap& defaults() const { return defaults_; }
  void terminate();  // sends Terminate and closes

 protected:
  void on_data() override;
  void on_read_error(int status) override;
  void on_write_progress() override;
  void on_write_error(int status) override;
  void on_closed() override;
  void on_tls_ready() override;

 private:
  static void connect_cb(uv_connect_t* req, int status) noexcept;
  void on_resolved(const Resolution& r);
  void connect_next();     // to addresses_[next_address_]
  void on_connected(int status);
  void on_reopened() override;  // the socket for the next address (or the plaintext retry) is ready
  // ---- TLS to the server (server_tls.cc) ----
  // Where the login is before its StartupMessage: answer = the SSLRequest waits for 'S' or 'N';
  // handshake = TLS is being set up (nothing is said until on_tls_ready).
  enum class TlsPhase : uint8_t { none, answer, handshake };
  void begin_login();      // SSLRequest first, or the StartupMessage at once (server_tls = "disable")
  void send_startup();
  bool on_ssl_answer();    // false: wait (more bytes, the handshake) or the login failed
  // server_tls = "prefer" and the TLS handshake failed: true when the login starts over once, in plaintext
  // on a new connection to the same address (libpq's sslmode=prefer).
  bool retry_without_tls(const std::string& why);
  bool plaintext_retry_ = false;  // this is that retry: no SSLRequest
  std::shared_ptr<const TlsContext> tls_context_;  // the node's, from the snapshot at connect()
  TlsPhase tls_phase_ = TlsPhase::none;
  bool handle_login_message(const protocol::Frame& f);
  bool handle_auth_request(const protocol::Frame& f);
  bool start_scram(const std::string& password);  // false: failed (no password and no pass-through keys)
  // What the replies to a message of `type` just written to outbox() mean. `statement` is the
  // server-side statement name a Parse creates (or a Bind uses).
  void expect_reply_to(char type, const std::string& statement = {});
  // Only this class writes to the server: see "what the client sends" above.
  using Stream::outbox;
  enum class Reply : uint8_t {
    query,           // Query / FunctionCall: replies up to ReadyForQuery
    sync,            // Sync: ReadyForQuery
    parse, bind, describe, execute, close,
    internal_query,  // our own statement (settings sync, DISCARD ALL): every reply swallowed
    internal_probe,  // our session-state probe: its one DataRow goes to the client's tracker
    internal_sql,    // our SQL-prepared sync statements: replies swallowed, the outcome goes to the client
    injected_parse,  // a Parse the client did not send: ParseComplete swallowed
    injected_close,  // a Close of an evicted statement: CloseComplete swallowed
    synthetic,       // no server reply: `data` goes to the client in this position
  };
  struct Expected {
    Reply kind;
    std::string data;  // statement name (parse kinds, injected_close) or the synthetic message
    Clock::time_point sent_at{};  // query / sync: for the query duration histogram
    std::shared_ptr<const std::string> sql;  // sync: the statement text, for digests and slow log
    std::string query_text;  // query: the simple Query's text, for digests and slow log (see spare_text_)
    std::shared_ptr<const BindParams> params;  // sync: the batch's last Bind values (log_parameters only)
    uint64_t shape = 0;             // query: the statement's lexical shape, when known (its digest key)
    SqlPrepEffectsRef sql_effects;  // query / execute / close / internal_sql: SQL-prepared effects
    uint32_t completed = 0;         // CommandCompletes seen so far (the statement ordinal)
    bool copy_end_after = false;    // the client's CopyDone/CopyFail was forwarded right after this entry
  };
  void enqueue(Reply kind, std::string data = {});
  void emit_synthetics();
  void note_copy_in_started();
  void drop_until_sync();
  void drop_entry(Expected& e);
  static bool is_final_reply(Reply kind, char type);
  static bool is_fatal(const protocol::Frame& f);
  static bool is_stale_plan(const protocol::Frame& f);
  static std::string fatal_message(const protocol::Frame& f);
  void process_active();
  bool handle_reply(const protocol::Frame& f);
  bool handle_async_message(const protocol::Frame& f, bool internal);
  bool handle_retried_batch_reply(const protocol::Frame& f);
  bool start_stale_plan_retry(const protocol::Frame& f, Expected& head);
  bool relay_to_client(const protocol::Frame& f, Expected& head);
  void on_error_reply(const protocol::Frame& f, Expected& head);
  bool on_ready_for_query(const protocol::Frame& f, Expected& head);
  bool handle_internal_reply(const protocol::Frame& f);
  bool handle_probe_reply(const protocol::Frame& f);
  bool handle_sql_sync_reply(const protocol::Frame& f);
  void apply_sql_effect(Expected& e, std::string_view tag);
  void handle_parameter_status(const protocol::Frame& f, bool internal);
  void process_idle();
  void fail(const std::string& reason);

  Pool& pool_;
  uint64_t id_;
  State state_ = State::connecting;
  ConnListHook<ServerConn> list_hook_;
  uv_connect_t connect_req_{};
  uint64_t resolve_ticket_ = 0;  // the host's lookup, while connect() waits for it
  std::vector<sockaddr_storage> addresses_;  // the host's, tried in order
  size_t next_address_ = 0;
  sockaddr_storage peer_{};  // the address connected to
  CancelTarget cancel_target_;  // filled in as the connection is made (see cancel_target())
  std::string connect_errors_;  // why each address tried failed, for the log line
  ClientConn* client_ = nullptr;
  Clock::time_point created_at_;
  Clock::time_point state_since_;
  int32_t backend_pid_ = 0;
  int32_t backend_secret_ = 0;
  std::unique_ptr<protocol::scram::ClientExchange> scram_;
  GucMap applied_;       // settings explicitly set on this server (others are at their defaults)
  GucMap defaults_;      // ParameterStatus values reported at login
  GucMap pending_applied_;  // what `applied_` becomes once the sync statement succeeds
  bool settings_unknown_ = false;  // see mark_settings_unknown()
  std::deque<Expected> expected_;
  // A finished Query's text buffer, kept for the next Query's text (up to kSpareTextBytes of capacity).
  std::string spare_text_;
  static constexpr size_t kSpareTextBytes = 4096;
  bool skip_until_sync_ = false;   // an extended-protocol error with no Sync queued yet
  bool clear_statements_on_ready_ = false;
  ServerStatements statements_;
  SqlStatementSet sql_statements_;
  bool sql_sync_done_ = false;     // the sync statements were answered: tell the client
  std::string sql_sync_error_;     // their first ErrorResponse (whole message), "" when they succeeded
  std::unordered_set<std::string> stale_;  // prepared here, but the plan went stale after DDL (bounded)
  std::vector<std::pair<std::string, std::string>> login_params_;  // ParameterStatus at login, as spelled
  int pending_ready_ = 0;   // queued entries answered by ReadyForQuery
  bool sync_failed_ = false;
  bool unsynced_ = false;
  // The server is in COPY FROM STDIN (its CopyInResponse came) and the client has not ended it yet: a
  // Sync or Flush it sends meanwhile is ignored by the server, and gets no ReadyForQuery.
  bool copy_in_open_ = false;
  char tx_status_ = 'I';
  size_t passthrough_remaining_ = 0;
  size_t discard_remaining_ = 0;  // bytes of a large ErrorResponse/NoticeResponse handled shortened
  uint64_t replied_bytes_ = 0;
  uint64_t batch_client_bytes_ = 0;  // given to the client since the last ReadyForQuery
  bool retrying_batch_ = false;      // a stale-plan error: swallow up to ReadyForQuery, then resend
  uint64_t request_rows_ = 0;      // rows in CommandComplete tags since the last request ended
  std::string request_sqlstate_;   // first error since the last request ended  // bytes of a large DataRow/CopyData still to forward as they come
};

}  // namespace pgs::proxy
