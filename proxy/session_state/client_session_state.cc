#include "proxy/session_state/client_session_state.h"

#include "proxy/session/session_code.h"
#include "proxy/session/sql_prepared.h"
#include "proxy/session/statement_text.h"

namespace pgs::proxy {

using router::SessionOp;

SettingsSync settings_sync(const GucMap& desired, const GucMap& applied, const GucMap& defaults,
                           bool settings_unknown) {
  SettingsSync s;
  if (settings_unknown) {
    s.sql = "RESET ALL;" + build_sync_sql(desired, GucMap{}, defaults);
  } else {
    s.sql = build_sync_sql(desired, applied, defaults);
  }
  s.applied_after = s.sql.empty() ? applied : applied_after_sync(desired, defaults);
  return s;
}

std::string ClientSessionState::pin_refusal(PinReason reason) {
  return "DO $pgsidecar$BEGIN RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = "
         "'pgsidecar: " + std::string(pin_reason_name(reason)) +
         " is not supported in transaction pooling (session.pinning = refuse)'; END$pgsidecar$";
}

// Session-state effects of a statement being sent (issue 3). In refuse mode a statement that would pin
// gets a replacement that fails on the server with 0A000 (so the server, not the proxy, handles the
// error's effect on the transaction).
StatementCheck ClientSessionState::note_statement(std::string_view sql, ClientStatements& statements,
                                                  SessionSources& sources, std::optional<bool> session_words,
                                                  uint64_t* shape) {
  StatementCheck check;
  tracker_.note_activity();
  const SessionCodeCatalog* code = sources.session_code();
  if (!(session_words ? *session_words : statement_may_change_session(sql))) {
    // Default-deny: no word of the statement changes the session, so only code it runs unseen could.
    // Without user code in the databases it runs none; otherwise the answer depends only on the
    // statement's shape (its literals name no table or function), memoised per worker.
    if (code != nullptr && code->code_free()) return check;
    // One captured pointer: the callable fits std::function's own storage (no allocation).
    struct Ask {
      ClientSessionState* self;
      std::string_view sql;
      const SessionCodeCatalog* code;
      SessionSources* sources;
    } ask{this, sql, code, &sources};
    auto decide = [&ask] {
      return ask.self->runs_unseen_code(*ask.sources->classify(ask.sql), ask.code, *ask.sources);
    };
    if (!sources.runs_session_code(sql, decide, shape)) return check;
    on_unseen_code(sql, code);
    check.settings_unknown = true;
    check.changes_session = true;
    return check;
  }
  auto c = sources.classify(sql);
  for (const auto& st : c->statements) {
    for (const auto& ch : st.session_changes) {
      bool names_statement =
          ch.op == SessionOp::prepare || ch.op == SessionOp::execute || ch.op == SessionOp::deallocate;
      if (names_statement && is_reserved_statement_name(ch.name)) {
        check.replacement = kReservedNameRefusal;
        return check;
      }
    }
  }
  if (sources.refuse_pins()) {
    if (auto reason = SessionTracker::pins(*c)) {
      check.replacement = pin_refusal(*reason);
      return check;
    }
  }
  // A SQL DEALLOCATE of a name the client prepared with the protocol (PQprepare, then DEALLOCATE s1).
  if (std::optional<Deallocation> d = statements.take_deallocated(*c)) {
    check.deallocated = std::move(d->statement);
    check.replacement = std::move(d->sql);
    return check;
  }
  note_classified(sql, *c, code, statements, sources, check);
  return check;
}

void ClientSessionState::note_classified(std::string_view sql, const router::Classification& c,
                                         const SessionCodeCatalog* code, ClientStatements& statements,
                                         SessionSources& sources, StatementCheck& check) {
  tracker_.note(c);
  if (may_prepare_unseen(sql, c)) tracker_.request_probe();  // PREPARE by dynamic SQL: may pin
  if (runs_unseen_code(c, code, sources)) {
    on_unseen_code(sql, code);
    check.settings_unknown = true;
    check.changes_session = true;
  }
  for (const auto& st : c.statements) {
    for (const auto& ch : st.session_changes) {
      if (ch.op != SessionOp::execute && !ch.transaction_scoped) check.changes_session = true;
      if (ch.op == SessionOp::reset_all || ch.op == SessionOp::discard_all) {
        for (const auto& [name, value] : sources.client_settings().items()) tracker_.watch_setting(name);
      }
      if (statements.on_session_change(ch)) check.statements_cleared = true;  // DISCARD/DEALLOCATE ALL
    }
  }
}

void ClientSessionState::on_unseen_code(std::string_view sql, const SessionCodeCatalog* code) {
  tracker_.request_full_probe();
  for (const auto& name : custom_setting_names(sql)) tracker_.watch_setting(name);
  if (code != nullptr) {
    for (const auto& name : code->custom_settings()) tracker_.watch_setting(name);
  }
}

bool ClientSessionState::runs_unseen_code(const router::Classification& c, const SessionCodeCatalog* code,
                                          SessionSources& sources) {
  if (c.kind != router::Kind::execute || c.statements.size() != 1 || !c.unsafe_functions.empty()) {
    return may_run_session_code(c, code);
  }
  const auto& changes = c.statements.front().session_changes;
  if (changes.empty() || changes.front().op != SessionOp::execute) return true;
  const std::string* definition = sources.sql_prepared_definition(changes.front().name);
  if (definition == nullptr) return true;  // prepared where the proxy did not see it
  auto body = prepared_statement_body(*definition);
  return !body || may_run_session_code(*sources.classify(*body), code);
}

std::optional<std::string> ClientSessionState::probe_at_release(std::string_view login_user, const GucMap& settings) {
  if (!tracker_.needs_probe()) return std::nullopt;
  probe_running_ = true;
  std::vector<std::string> known;
  if (tracker_.full_probe_requested()) {
    for (const auto& [name, value] : settings.items()) known.push_back(name);
  }
  return tracker_.begin_probe(login_user, known);
}

ProbeOutcome ClientSessionState::on_probe_row(
    std::vector<std::optional<std::string>> row,
    const std::function<size_t(const std::vector<std::string>& server_names)>& untracked_sql_statements) {
  probe_running_ = false;
  ProbeOutcome out;
  const std::vector<std::string> names = tracker_.probe_settings();  // apply_probe() forgets them
  if (row.size() != tracker_.probe_columns()) {
    out.warning = std::to_string(row.size()) + " values for " + std::to_string(names.size()) + " settings";
    return out;
  }
  // The SQL-prepared statements the server really holds (pg_prepared_statements, as a JSON array of
  // names): the caller reconciles them with what it tracks, and what nobody tracks pins (apply_probe gets
  // their number in that column).
  auto& held = row[names.size() + static_cast<size_t>(PinReason::sql_prepare)];
  auto all = parse_json_names(held.value_or("[]"));
  if (!all) return out;
  held = std::to_string(untracked_sql_statements(*all));
  std::array<bool, kPinReasonCount> before{};
  for (size_t r = 0; r < kPinReasonCount; ++r) before[r] = tracker_.pinned_for(static_cast<PinReason>(r));
  std::vector<std::pair<std::string, std::string>> discovered;  // set where the proxy could not see
  if (!tracker_.apply_probe(row, &discovered)) return out;
  out.settings.reserve(names.size() + discovered.size());
  for (size_t i = 0; i < names.size(); ++i) out.settings.emplace_back(names[i], std::move(row[i]));
  for (auto& [name, value] : discovered) out.settings.emplace_back(std::move(name), std::move(value));
  for (size_t r = 0; r < kPinReasonCount; ++r) {
    bool after = tracker_.pinned_for(static_cast<PinReason>(r));
    if (after != before[r]) out.pin_changes[r] = after ? 1 : -1;
  }
  out.ok = true;
  return out;
}

bool ClientSessionState::on_parameter_status(std::string_view name, std::string_view value) {
  const std::string* told = reported_.get(name);
  if (told != nullptr && *told == value) return false;
  reported_.set(name, value);
  return true;
}

std::string ClientSessionState::pin_reasons() const {
  std::string out;
  for (size_t r = 0; r < kPinReasonCount; ++r) {
    if (!tracker_.pinned_for(static_cast<PinReason>(r))) continue;
    if (!out.empty()) out += ",";
    out += pin_reason_name(static_cast<PinReason>(r));
  }
  return out;
}

}  // namespace pgs::proxy
