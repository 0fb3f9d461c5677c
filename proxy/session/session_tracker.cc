#include "proxy/session/session_tracker.h"

#include <algorithm>
#include <cctype>
#include <span>

#include <boost/json.hpp>

#include "proxy/session/session_params.h"
#include "proxy/session/statement_text.h"

namespace pgs::proxy {

using router::SessionOp;

std::string_view pin_reason_name(PinReason r) {
  static constexpr std::string_view kNames[] = {
#define PGS_X(e, n) n,
      PGS_PIN_REASONS(PGS_X)
#undef PGS_X
  };
  return kNames[static_cast<size_t>(r)];
}

namespace {
// The words of may_change_session(), "set" last so that statement_may_change_session() can leave it out.
// "do", "call", "execute" and "load" run or load code; with user code in the database every statement
// is classified anyway (SessionCodeCatalog::code_free).
constexpr std::string_view kSessionWords[] = {"discard", "listen", "advisory", "temp",    "hold",
                                              "prepare", "dealloc", "session", "role",   "close",
                                              "do",      "call",    "execute", "load",
                                              "pgsidecar_",  // reserved statement names (note_statement)
                                              "set"};
constexpr std::span<const std::string_view> kAllSessionWords(kSessionWords);
}  // namespace

bool may_change_session(std::string_view sql) {
  // Runs on every Query and Parse: one pass, no allocation. Case-insensitive match of a few words.
  static const KeywordSet kSet(kAllSessionWords);
  if (sql.size() > (1 << 16)) return true;  // too long to scan cheaply: let the parser decide
  return kSet.found_in(sql);
}

namespace {
// A byte that continues an identifier or keyword: Postgres takes letters, digits, '_', '$' and every
// non-ASCII byte (UTF-8 names) as part of one.
bool continues_word(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x80 || u == '_' || u == '$' || (u >= '0' && u <= '9') || (ascii_lower(c) >= 'a' && ascii_lower(c) <= 'z');
}

// One UPDATE statement: it starts with the word UPDATE and has no ';' before trailing white space, so
// nothing after it can be a second statement (a ';' in a string or comment is refused too: cheap and
// conservative).
bool is_lone_update(std::string_view sql) {
  size_t i = 0;
  while (i < sql.size() && ascii_space(sql[i])) ++i;
  constexpr std::string_view kUpdate = "update";
  if (sql.size() - i <= kUpdate.size()) return false;
  for (size_t k = 0; k < kUpdate.size(); ++k) {
    if (ascii_lower(sql[i + k]) != kUpdate[k]) return false;
  }
  if (!ascii_space(sql[i + kUpdate.size()])) return false;
  const size_t semicolon = sql.find(';');
  if (semicolon == std::string_view::npos) return true;
  for (size_t j = semicolon + 1; j < sql.size(); ++j) {
    if (!ascii_space(sql[j])) return false;
  }
  return true;
}

// The "set" at `at` is the whole word SET: not a part of a longer name such as RESET, OFFSET, set_config
// or setseed.
bool set_is_a_word(std::string_view sql, size_t at) {
  const bool starts = at == 0 || !continues_word(sql[at - 1]);
  const bool ends = at + 3 == sql.size() || !continues_word(sql[at + 3]);
  return starts && ends;
}
}  // namespace

bool statement_may_change_session(std::string_view sql) {
  if (sql.size() > (1 << 16)) return true;  // as may_change_session(): the parser decides
  // may_change_session() finds "set" in every UPDATE. A lone UPDATE whose only session word is SET
  // used as a whole word cannot change session state by its own text: the word is its SET clause (a
  // SET command would be a second statement, after a ';'). Code it runs (triggers, functions) is
  // checked as for any statement without session words (ClientSessionState::note_statement). One pass:
  // every other session word, and every "set" that is not such a clause, decides.
  static const KeywordSet kSet(kAllSessionWords);
  constexpr size_t kSetWord = kAllSessionWords.size() - 1;
  static_assert(kAllSessionWords[kSetWord] == "set");
  const bool lone_update = is_lone_update(sql);
  return kSet.find_each(sql, [&](size_t k, size_t at) {
    return !(k == kSetWord && lone_update && set_is_a_word(sql, at));  // true: a session word, stop
  });
}

std::optional<PinReason> SessionTracker::pins(const router::Classification& c) {
  for (const auto& st : c.statements) {
    for (const auto& ch : st.session_changes) {
      if (ch.transaction_scoped) continue;
      switch (ch.op) {
        case SessionOp::listen:
          return PinReason::listen;
        case SessionOp::advisory_lock:
          return PinReason::advisory_lock;
        case SessionOp::temp_object:
          return PinReason::temp_table;
        case SessionOp::declare_with_hold:
          return PinReason::hold_cursor;
        case SessionOp::set:
          if (ch.name == "session_authorization") return PinReason::session_authorization;
          break;
        default:
          break;
      }
    }
  }
  return std::nullopt;
}

void SessionTracker::watch_setting(const std::string& name) {
  std::string folded = fold_guc_name(name);
  // session_authorization cannot be replayed with set_config by an ordinary user: it pins instead.
  if (!valid_guc_name(folded) || folded == "session_authorization") return;
  if (std::find(probe_settings_.begin(), probe_settings_.end(), folded) == probe_settings_.end()) {
    probe_settings_.push_back(std::move(folded));
  }
}

void SessionTracker::note(const router::Classification& c) {
  for (const auto& st : c.statements) {
    for (const auto& ch : st.session_changes) {
      if (ch.transaction_scoped || ch.op == SessionOp::execute) continue;
      // SQL-level PREPARE / DEALLOCATE are tracked from the server's replies (sql_prepared.h).
      if (ch.op == SessionOp::prepare || ch.op == SessionOp::deallocate || ch.op == SessionOp::deallocate_all) continue;
      probe_needed_ = true;
      switch (ch.op) {
        case SessionOp::set:
        case SessionOp::reset:
          watch_setting(ch.name);
          break;
        case SessionOp::set_config:
          // A bound or computed value is read back all the same; a computed name cannot be watched
          // (the classification marks it opaque: a full probe reads every setting).
          if (!ch.name.empty()) watch_setting(ch.name);
          break;
        default:
          break;  // RESET ALL / DISCARD ALL: the caller re-reads every setting it tracks
      }
    }
  }
}

bool SessionTracker::pinned() const {
  return std::any_of(counts_.begin(), counts_.end(), [](int64_t n) { return n > 0; });
}

std::string SessionTracker::begin_probe(std::string_view login_user, const std::vector<std::string>& known) {
  inflight_full_ = full_probe_;
  if (full_probe_) {
    for (const auto& name : known) watch_setting(name);
  }
  inflight_settings_ = std::move(probe_settings_);
  probe_settings_.clear();
  probe_needed_ = false;
  full_probe_ = false;
  std::string sql = "SELECT ";
  for (const auto& name : inflight_settings_) {
    sql += "pg_catalog.current_setting(" + quote_literal(name) + ", true), ";
  }
  sql +=
      "(SELECT count(*) FROM pg_catalog.pg_listening_channels()), "
      "(SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND "
      "pid = pg_catalog.pg_backend_pid()), "
      "(SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema()), "
      "(SELECT count(*) FROM pg_catalog.pg_cursors WHERE is_holdable), "
      // The names, not a count (the proxy's own pgsidecar_* statements included): the caller reconciles
      // them with what it tracks (ClientConn::on_probe_row) and hands apply_probe() the number of
      // SQL-prepared statements it does not track.
      "(SELECT pg_catalog.json_agg(name) FROM pg_catalog.pg_prepared_statements), "
      "(SELECT CASE WHEN pg_catalog.current_setting('session_authorization') = " +
      quote_literal(login_user) + " THEN 0 ELSE 1 END)";
  if (inflight_full_) {
    // Custom (placeholder) settings are listed in pg_settings too once a session set them.
    sql +=
        ", (SELECT pg_catalog.json_object_agg(name, pg_catalog.current_setting(name)) FROM pg_catalog.pg_settings "
        "WHERE source = 'session')";
  }
  return sql;
}

std::optional<std::vector<std::string>> parse_json_names(std::string_view json) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(boost::json::string_view(json.data(), json.size()), ec);
  if (ec || !v.is_array()) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& item : v.get_array()) {
    if (!item.is_string()) return std::nullopt;
    out.emplace_back(item.get_string());
  }
  return out;
}

namespace {

// The full probe's JSON object {"name": "value", ...}; settings already read by name are skipped.
bool parse_session_settings(std::string_view text, const std::vector<std::string>& already,
                            std::vector<std::pair<std::string, std::string>>& out) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(boost::json::string_view(text.data(), text.size()), ec);
  if (ec || !v.is_object()) return false;
  for (const auto& kv : v.get_object()) {
    if (!kv.value().is_string()) return false;
    std::string name = fold_guc_name(std::string_view(kv.key().data(), kv.key().size()));
    if (!valid_guc_name(name) || name == "session_authorization") continue;  // that one pins instead
    if (std::find(already.begin(), already.end(), name) != already.end()) continue;
    const auto& value = kv.value().get_string();
    out.emplace_back(std::move(name), std::string(value.data(), value.size()));
  }
  return true;
}

}  // namespace

bool SessionTracker::apply_probe(const std::vector<std::optional<std::string>>& values,
                                 std::vector<std::pair<std::string, std::string>>* discovered) {
  size_t n = inflight_settings_.size();
  if (values.size() != probe_columns()) return false;
  if (inflight_full_ && values.back().has_value() && discovered != nullptr &&
      !parse_session_settings(*values.back(), inflight_settings_, *discovered)) {
    return false;
  }
  for (size_t i = 0; i < kPinReasonCount; ++i) {
    const auto& v = values[n + i];
    int64_t count = 0;
    if (v) {
      for (char ch : *v) {
        if (!std::isdigit(static_cast<unsigned char>(ch))) return false;
        count = count * 10 + (ch - '0');
        if (count > 1000000000) break;
      }
    }
    counts_[i] = count;
  }
  inflight_settings_.clear();
  inflight_full_ = false;
  return true;
}

}  // namespace pgs::proxy
