#include "proxy/session/sql_prepared.h"

#include <algorithm>
#include <cctype>

#include "proxy/session/prepared.h"
#include "proxy/session/statement_text.h"

namespace pgs::proxy {

using router::SessionOp;

bool mentions_sql_prepared(std::string_view sql) {
  // Runs on every Query and Parse that reaches a server: one pass, case-insensitive, no allocation.
  static const KeywordSet kSet(kSqlPreparedWords);
  return kSet.found_in(sql);
}

bool may_prepare_unseen(std::string_view sql, const router::Classification& c) {
  for (const auto& st : c.statements) {
    for (const auto& ch : st.session_changes) {
      if (ch.op == SessionOp::prepare) return false;
    }
  }
  static constexpr std::string_view kWords[] = {"prepare"};
  static const KeywordSet kSet(kWords);  // built once: this runs for every session-word statement
  return kSet.found_in(sql);
}

namespace {

std::string_view trim_front(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  return s;
}

std::optional<SqlPrepEffect> effect_of(const router::SessionChange& ch) {
  SqlPrepEffect e;
  e.name = ch.name;
  switch (ch.op) {
    case SessionOp::prepare:
      e.op = SqlPrepEffect::Op::prepare;
      e.definition.assign(trim_front(ch.sql));
      e.tag = "PREPARE";
      return e;
    case SessionOp::deallocate:
      e.op = SqlPrepEffect::Op::deallocate;
      e.tag = "DEALLOCATE";
      return e;
    case SessionOp::deallocate_all:
      e.op = SqlPrepEffect::Op::deallocate_all;
      e.tag = "DEALLOCATE ALL";
      return e;
    case SessionOp::discard_all:
      e.op = SqlPrepEffect::Op::deallocate_all;
      e.tag = "DISCARD ALL";
      return e;
    default:
      return std::nullopt;
  }
}

}  // namespace

SqlPrepRequest sql_prep_request(const router::Classification& c) {
  SqlPrepRequest r;
  std::shared_ptr<SqlPrepEffects> effects;
  for (size_t i = 0; i < c.statements.size(); ++i) {
    for (const auto& ch : c.statements[i].session_changes) {
      if (is_reserved_statement_name(ch.name)) continue;  // refused by note_statement, never synced
      if (ch.op == SessionOp::prepare || ch.op == SessionOp::execute) {
        if (std::find(r.names.begin(), r.names.end(), ch.name) == r.names.end()) r.names.push_back(ch.name);
      } else if (ch.op == SessionOp::deallocate) {
        if (std::find(r.dealloc_names.begin(), r.dealloc_names.end(), ch.name) == r.dealloc_names.end()) {
          r.dealloc_names.push_back(ch.name);
        }
      }
      auto e = effect_of(ch);
      if (!e) continue;
      if (!effects) effects = std::make_shared<SqlPrepEffects>();
      effects->by_statement.resize(c.statements.size());
      effects->by_statement[i] = std::move(*e);
    }
  }
  std::erase_if(r.dealloc_names, [&](const std::string& n) {
    return std::find(r.names.begin(), r.names.end(), n) != r.names.end();
  });
  r.effects = std::move(effects);
  return r;
}

const std::string* SqlStatementSet::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &it->second->second;
}

void SqlStatementSet::put(const std::string& name, std::string definition) {
  auto it = index_.find(name);
  if (it != index_.end()) {
    it->second->second = std::move(definition);
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.emplace_front(name, std::move(definition));
  index_.emplace(name, lru_.begin());
}

void SqlStatementSet::erase(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) return;
  lru_.erase(it->second);
  index_.erase(it);
}

void SqlStatementSet::clear() {
  lru_.clear();
  index_.clear();
}

void SqlStatementSet::touch(const std::string& name) {
  auto it = index_.find(name);
  if (it != index_.end()) lru_.splice(lru_.begin(), lru_, it->second);
}

void SqlStatementSet::apply(const SqlPrepEffect& e) {
  switch (e.op) {
    case SqlPrepEffect::Op::prepare:
      put(e.name, e.definition);
      break;
    case SqlPrepEffect::Op::deallocate:
      erase(e.name);
      break;
    case SqlPrepEffect::Op::deallocate_all:
      clear();
      break;
  }
}

std::vector<std::string> SqlStatementSet::least_recent(size_t n, const std::vector<std::string>& keep) const {
  std::vector<std::string> out;
  for (auto it = lru_.rbegin(); it != lru_.rend() && out.size() < n; ++it) {
    if (std::find(keep.begin(), keep.end(), it->first) == keep.end()) out.push_back(it->first);
  }
  return out;
}

std::string quote_ident(std::string_view name) {
  std::string out = "\"";
  for (char ch : name) {
    if (ch == '"') out += '"';
    out += ch;
  }
  out += '"';
  return out;
}

std::string deallocate_strangers(const SqlStatementSet& client, SqlStatementSet& server) {
  std::string sql;
  for (const auto& name : server.least_recent(server.size(), {})) {
    const std::string* mine = client.find(name);
    const std::string* there = server.find(name);
    if (mine != nullptr && there != nullptr && *mine == *there) continue;
    sql += "DEALLOCATE " + quote_ident(name) + ";";
    server.erase(name);
  }
  return sql;
}

SqlSyncPlan plan_sql_sync(const std::vector<std::string>& names, const std::vector<std::string>& dealloc_names,
                          const SqlStatementSet& client, SqlStatementSet& server, size_t capacity, bool may_evict) {
  auto effects = std::make_shared<SqlPrepEffects>();
  effects->injected = true;
  SqlSyncPlan plan;
  auto add = [&](SqlPrepEffect e, const std::string& sql) {
    // A newline before the separator: a definition may end in a -- comment.
    if (!plan.sql.empty()) plan.sql += "\n;\n";
    plan.sql += sql;
    effects->by_statement.emplace_back(std::move(e));
  };
  size_t after = server.size();
  for (const auto& name : names) {
    const std::string* mine = client.find(name);
    const std::string* there = server.find(name);
    if (mine != nullptr && there != nullptr && *mine == *there) {
      server.touch(name);
      continue;
    }
    if (there != nullptr) {
      add({SqlPrepEffect::Op::deallocate, name, {}, "DEALLOCATE"}, "DEALLOCATE " + quote_ident(name));
      --after;
    }
    if (mine != nullptr) {
      add({SqlPrepEffect::Op::prepare, name, *mine, "PREPARE"}, *mine);
      ++after;
    }
  }
  for (const auto& name : dealloc_names) {
    if (std::find(names.begin(), names.end(), name) != names.end()) continue;
    bool mine = client.find(name) != nullptr;
    bool there = server.find(name) != nullptr;
    if (mine && !there) {
      std::string placeholder = "PREPARE " + quote_ident(name) + " AS SELECT NULL";
      add({SqlPrepEffect::Op::prepare, name, placeholder, "PREPARE"}, placeholder);
      ++after;
    } else if (!mine && there) {
      add({SqlPrepEffect::Op::deallocate, name, {}, "DEALLOCATE"}, "DEALLOCATE " + quote_ident(name));
      --after;
    }
  }
  if (may_evict && after > capacity) {
    std::vector<std::string> keep = names;
    keep.insert(keep.end(), dealloc_names.begin(), dealloc_names.end());
    for (const auto& victim : server.least_recent(after - capacity, keep)) {
      add({SqlPrepEffect::Op::deallocate, victim, {}, "DEALLOCATE"}, "DEALLOCATE " + quote_ident(victim));
    }
  }
  if (!plan.sql.empty()) plan.effects = std::move(effects);
  return plan;
}

}  // namespace pgs::proxy
