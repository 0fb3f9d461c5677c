// What a client's statements did to its session that transaction pooling must not lose or leak
// (issue 3). The router says what a statement may change; at the end of the transaction the proxy asks
// the server what actually holds (a "probe": settings' values, LISTEN channels, advisory locks, temp
// tables, WITH HOLD cursors, SQL-level prepared statements) — so rollbacks, savepoints and failed
// statements need no modelling. Pure: no libuv, no sockets.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "router/classification.h"

namespace pgs::proxy {

// A JSON array of strings (the probe's pg_prepared_statements names); nullopt when it is not one.
std::optional<std::vector<std::string>> parse_json_names(std::string_view json);

// Why a client keeps its server across transactions. X(enumerator, metric label).
// sql_prepare: the server holds SQL-level prepared statements the proxy did not see being prepared
// (PREPARE run as dynamic SQL inside a DO block or a function, or in a text too long to parse), so it
// cannot replay them elsewhere. A PREPARE the proxy sees never pins: it is tracked (sql_prepared.h).
#define PGS_PIN_REASONS(X)                                                         \
  X(listen, "listen") X(advisory_lock, "advisory_lock") X(temp_table, "temp_table") \
  X(hold_cursor, "hold_cursor") X(sql_prepare, "sql_prepare")                       \
  X(session_authorization, "session_authorization")

enum class PinReason : uint8_t {
#define PGS_X(e, n) e,
  PGS_PIN_REASONS(PGS_X)
#undef PGS_X
};
inline constexpr size_t kPinReasonCount = 0
#define PGS_X(e, n) +1
    PGS_PIN_REASONS(PGS_X)
#undef PGS_X
    ;
std::string_view pin_reason_name(PinReason r);

// Cheap pre-check before paying for the parser: false only when `sql` cannot change session state.
bool may_change_session(std::string_view sql);
// may_change_session() without its commonest false positive, the SET clause of a lone UPDATE. The same
// contract: false only when `sql` cannot change session state by its own text. The words of
// mentions_sql_prepared() still make it true.
bool statement_may_change_session(std::string_view sql);

class SessionTracker {
 public:
  // A statement is being sent. Returns the pin reason if `refuse` mode must reject it.
  void note(const router::Classification& c);
  // True when the transaction that just ended may have changed session state: probe before release.
  bool needs_probe() const { return probe_needed_; }
  // Something may have changed session state that no classification shows: probe at the end.
  void request_probe() { probe_needed_ = true; }
  // Code the proxy cannot see ran (a DO block, CALL, a user function, a trigger, a FunctionCall message):
  // any setting may have changed, so the next probe also reads every setting the server's session set
  // (pg_settings.source = 'session'), besides every setting the caller knows of.
  void request_full_probe() {
    probe_needed_ = true;
    full_probe_ = true;
  }
  bool full_probe_requested() const { return full_probe_; }
  // Starts a probe: the statement (one row: the settings' values, NULL when unset, then the state
  // counts, then for a full probe a JSON object of every session-set setting). `login_user` is who the
  // client logged in as (to notice SET SESSION AUTHORIZATION); `known` are the settings the client has
  // (a full probe reads them all). Statements noted while it runs belong to the next probe.
  std::string begin_probe(std::string_view login_user, const std::vector<std::string>& known = {});
  // Adds a setting to read back at the next probe (RESET ALL / DISCARD ALL: every known one).
  void watch_setting(const std::string& name);
  // The settings the running probe reads, in its column order.
  const std::vector<std::string>& probe_settings() const { return inflight_settings_; }
  // The number of values the running probe's row has.
  size_t probe_columns() const { return inflight_settings_.size() + kPinReasonCount + (inflight_full_ ? 1 : 0); }
  // Applies the probe's row: values[i] for probe_settings()[i], then the counts in PinReason order.
  // Returns false if the row has the wrong shape. The caller reads the settings' values first. A full
  // probe's settings that are not among probe_settings() go to `discovered` (name folded, value) — the
  // session changed them where the proxy could not see (replayable names only).
  bool apply_probe(const std::vector<std::optional<std::string>>& values,
                   std::vector<std::pair<std::string, std::string>>* discovered = nullptr);

  bool pinned() const;
  // While pinned, any statement may release what pins (DROP TABLE of the temp table, an unlock inside a
  // function): probe again at the end of the transaction.
  void note_activity() {
    if (pinned()) probe_needed_ = true;
  }
  bool pinned_for(PinReason r) const { return counts_[static_cast<size_t>(r)] > 0; }
  // The first reason a statement would pin for, if any (for pinning = "refuse").
  static std::optional<PinReason> pins(const router::Classification& c);

 private:
  bool probe_needed_ = false;
  std::vector<std::string> probe_settings_;     // settings to read back at the next probe (lower case)
  std::vector<std::string> inflight_settings_;  // what the running probe reads
  bool full_probe_ = false;                     // the next probe reads every session-set setting
  bool inflight_full_ = false;                  // ... and the running one does
  std::array<int64_t, kPinReasonCount> counts_{};
};

}  // namespace pgs::proxy
