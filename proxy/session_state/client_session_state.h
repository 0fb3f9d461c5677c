// ClientSessionState: what one client's statements did to its session that transaction pooling must not
// lose or leak (issue 3, issue 10's default-deny; issue 11 item 2). It owns the client's pins and the
// session probe (SessionTracker: the settings to read back, whether the probe runs), and the server
// parameters its client was told (ParameterStatus). It takes each statement on its way to the server,
// code it cannot see (a FunctionCall, a statement too large to read), the release point, the probe's row
// and each ParameterStatus, and returns what to do: send the statement or a replacement (a refusal that
// fails on the server, or the DEALLOCATE of a protocol-level statement's server-side name), whether the
// server's settings became unknown, which probe to run before the server goes back to its pool, what the
// probe read back (settings, pin changes), whether to tell the client.
//
// It does no I/O and knows no worker, pool or server: the classifier, the per-worker memo, the catalog,
// the pinning policy and the client's SQL-prepared statements (SqlPreparedGate) are read through
// SessionSources; the connection carries out the returned actions on its server. The per-statement path
// (note_statement) does one keyword scan and, for a statement without session words, asks the catalog
// and then the per-worker memo; it adds no allocation of its own. Thread affinity: the owning
// connection's.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/session/client_statements.h"
#include "proxy/session/prepared.h"
#include "proxy/session/session_params.h"
#include "proxy/session/session_tracker.h"
#include "router/classification.h"

namespace pgs::proxy {

class SessionCodeCatalog;

// What checking a statement reads besides the session's own state: the worker's view, a seam for tests.
// Each is asked only when the decision needs it.
class SessionSources {
 public:
  virtual std::shared_ptr<const router::Classification> classify(std::string_view sql) = 0;
  // Which relations run user code (session_code.h); null before the catalog was read.
  virtual const SessionCodeCatalog* session_code() = 0;
  // Whether a statement with no session word runs code the proxy cannot see: `decide()` (which
  // classifies) once per statement shape, memoised per worker (Worker::runs_session_code). `shape`
  // receives the statement's lexical shape when it was computed.
  virtual bool runs_session_code(std::string_view sql, const std::function<bool()>& decide, uint64_t* shape) = 0;
  // Transaction pooling with session.pinning = "refuse": a statement that would pin is refused.
  virtual bool refuse_pins() = 0;
  // The client's settings (RESET ALL / DISCARD ALL: every one of them is read back).
  virtual const GucMap& client_settings() = 0;
  // The PREPARE text of the client's SQL-prepared statement `name` (SqlPreparedGate::definition), or null.
  virtual const std::string* sql_prepared_definition(const std::string& name) = 0;

 protected:
  ~SessionSources() = default;
};

// What to do with a statement on its way to the bound server.
struct StatementCheck {
  bool changes_session = false;  // it may change session state (a prepared statement keeps this)
  // Not empty: send this in place of the statement. A refusal (a DO block raising 42501 for a reserved
  // statement name, 0A000 for a pin under session.pinning = "refuse"), or the DEALLOCATE of `deallocated`.
  std::string replacement;
  // A SQL DEALLOCATE of a protocol-level statement of the client (forgotten by ClientStatements): make
  // sure the server holds its server-side name, then forget it there (ServerConn::forget_prepared).
  PreparedRef deallocated;
  bool settings_unknown = false;    // code the proxy cannot see may run: ServerConn::mark_settings_unknown
  bool statements_cleared = false;  // DISCARD ALL / DEALLOCATE ALL: ServerConn::expect_statements_cleared
};

// The session probe's row, read.
struct ProbeOutcome {
  bool ok = false;  // false: the row has the wrong shape (the session fails with 08006)
  std::string warning;  // when the number of values was wrong: what came, for the log
  // The settings read back, in order: the client's value now, and the server's (nullopt: unset).
  std::vector<std::pair<std::string, std::optional<std::string>>> settings;
  std::array<int, kPinReasonCount> pin_changes{};  // +1 / -1 per reason, for pinned_clients
};

// What brings a server just bound to a client's settings (session_params.h).
struct SettingsSync {
  std::string sql;       // run first, replies swallowed ("" when nothing differs)
  GucMap applied_after;  // what the server has applied once `sql` succeeded
};
// `settings_unknown`: unseen code ran on that server, so its session may hold settings nobody can list:
// RESET ALL first, then the client's settings from the server's defaults.
SettingsSync settings_sync(const GucMap& desired, const GucMap& applied, const GucMap& defaults,
                           bool settings_unknown);

class ClientSessionState {
 public:
  // Replaces a statement naming a reserved (pgsidecar_*) prepared statement: fails with 42501.
  static constexpr std::string_view kReservedNameRefusal =
      "DO $pgsidecar$BEGIN RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = "
      "'pgsidecar: prepared statement names starting with pgsidecar_ are reserved'; END$pgsidecar$";
  // Replaces a statement that would pin under session.pinning = "refuse": fails with 0A000.
  static std::string pin_refusal(PinReason reason);

  // ---- statements, as they go to the bound server ----
  // `session_words`: statement_may_change_session(sql), when the caller has it already. `shape` (optional) receives
  // the statement's lexical shape when deciding needed it. `statements`: the client's protocol-level
  // prepared statements (a DEALLOCATE of one, DISCARD ALL and DEALLOCATE ALL change them).
  [[nodiscard]] StatementCheck note_statement(std::string_view sql, ClientStatements& statements,
                                              SessionSources& sources, std::optional<bool> session_words = std::nullopt,
                                              uint64_t* shape = nullptr);
  // A FunctionCall message: it runs a function by OID, unseen by the parser. The server's settings are
  // unknown from now on (ServerConn::mark_settings_unknown).
  void on_function_call(const SessionCodeCatalog* code) { on_unseen_code({}, code); }
  // A Query or Parse too large to read (client_stream.cc): whatever it does is read back or reset, like
  // unseen code. The server's settings are unknown from now on.
  void on_unread_statement(const SessionCodeCatalog* code) {
    tracker_.note_activity();
    on_unseen_code({}, code);
  }

  // ---- the release point (ReadyForQuery 'I' with nothing in flight) ----
  // Nothing is in flight: a probe, if one ran, has ended.
  void on_release_point() { probe_running_ = false; }
  // In transaction pooling, before the server goes back to its pool: the probe to run on it when the
  // transaction may have changed session state (its row goes to on_probe_row), or nullopt. `login_user`:
  // who the client logged in as (SET SESSION AUTHORIZATION pins); `settings`: the client's (a full probe
  // reads them all back).
  [[nodiscard]] std::optional<std::string> probe_at_release(std::string_view login_user, const GucMap& settings);
  bool probe_running() const { return probe_running_; }
  // The probe's row. `untracked_sql_statements` gets every prepared statement name the server reports
  // (pg_prepared_statements) and returns how many of them are SQL-prepared statements the proxy does not
  // track (SqlPreparedGate::reconcile): those pin.
  [[nodiscard]] ProbeOutcome on_probe_row(
      std::vector<std::optional<std::string>> row,
      const std::function<size_t(const std::vector<std::string>& server_names)>& untracked_sql_statements);

  // ---- what the server reports ----
  // A ParameterStatus from the bound server: true when the client must be told (it was told another
  // value, or none); it is then recorded as told.
  [[nodiscard]] bool on_parameter_status(std::string_view name, std::string_view value);
  // The client was told this value (the welcome at login).
  void note_reported(std::string_view name, std::string_view value) { reported_.set(name, value); }

  // ---- what the connection asks ----
  // LISTEN, an advisory lock, a temp table ...: the client keeps its server across transactions.
  bool pinned() const { return tracker_.pinned(); }
  bool pinned_for(PinReason r) const { return tracker_.pinned_for(r); }
  std::string pin_reasons() const;  // "listen,advisory_lock" or ""
  // The server may hold state of this session: it is reset (DISCARD ALL) before anyone else gets it.
  bool server_needs_reset() const { return tracker_.pinned() || tracker_.needs_probe(); }
  // The session has state a server lost with it would take along: its request is not re-run elsewhere.
  bool holds_server_state() const { return tracker_.pinned() || !tracker_.probe_settings().empty(); }

 private:
  // Code the proxy cannot see may have changed anything: read back what can be read (every real
  // setting, the custom ones whose names the text or the catalog spells out), reset the rest.
  void on_unseen_code(std::string_view sql, const SessionCodeCatalog* code);
  // may_run_session_code(), except that an EXECUTE of a SQL-prepared statement the proxy tracks is
  // judged by the statement it prepared: EXECUTE alone runs nothing unseen.
  bool runs_unseen_code(const router::Classification& c, const SessionCodeCatalog* code, SessionSources& sources);
  // The rest of note_statement for a statement with session words, classified as `c`.
  void note_classified(std::string_view sql, const router::Classification& c, const SessionCodeCatalog* code,
                       ClientStatements& statements, SessionSources& sources, StatementCheck& check);

  SessionTracker tracker_;      // pins, and what the next probe reads back
  bool probe_running_ = false;  // the probe (tracker_.begin_probe) runs on the bound server
  GucMap reported_;             // what the client was told via ParameterStatus (welcome + later changes)
};

}  // namespace pgs::proxy
