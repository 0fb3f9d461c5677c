#include "proxy/session/session_code.h"

#include <algorithm>
#include <charconv>

namespace pgs::proxy {

namespace {

void mark(std::unordered_map<std::string, bool>& map, const std::string& name, bool plain) {
  auto [it, inserted] = map.emplace(name, plain);
  if (!inserted) it->second = it->second && plain;
}

std::string_view unqualified_part(std::string_view qualified) {
  size_t dot = qualified.find('.');
  return dot == std::string_view::npos ? qualified : qualified.substr(dot + 1);
}

}  // namespace

SessionCodeCatalog SessionCodeCatalog::from_rows(const std::vector<cache::CatalogRow>& rows) {
  SessionCodeCatalog out;
  // A write to X may also write Y (cascading foreign keys, partitions): X runs Y's code.
  std::unordered_map<std::string, std::vector<std::string>> reaches;
  bool saw_functions = false;
  for (const auto& r : rows) {
    if (r.kind == "relation" && (r.to == "code" || r.to == "plain") && r.from.find('.') != std::string::npos) {
      mark(out.qualified_, r.from, r.to == "plain");
    } else if (r.kind == "user_functions") {
      uint64_t n = 0;
      auto [p, ec] = std::from_chars(r.from.data(), r.from.data() + r.from.size(), n);
      if (ec != std::errc{} || p != r.from.data() + r.from.size()) n = 1;  // unreadable: assume some
      out.user_functions_ += n;
      saw_functions = true;
    } else if (r.kind == "rls" && !r.to.empty() && (r.to[0] == 't' || r.to[0] == 'f')) {
      std::string key = r.to.substr(1);
      key.push_back('\0');
      key.append(r.from);
      auto [it, inserted] = out.row_security_.emplace(std::move(key), r.to[0] == 't');
      if (!inserted) it->second = it->second || r.to[0] == 't';
    } else if (r.kind == "custom_setting" && !r.from.empty()) {
      out.custom_settings_.push_back(r.from);
    } else if ((r.kind == "cascade" || r.kind == "partition") && !r.to.empty()) {
      reaches[r.from].push_back(r.to);
      if (r.kind == "partition") reaches[r.to].push_back(r.from);  // a write to the parent reaches children
    }
  }
  // Propagate code along the edges until nothing changes (bounded by the number of relations).
  for (size_t round = 0; round <= out.qualified_.size(); ++round) {
    bool changed = false;
    for (auto& [name, plain] : out.qualified_) {
      if (!plain) continue;
      auto it = reaches.find(name);
      if (it == reaches.end()) continue;
      for (const auto& to : it->second) {
        auto t = out.qualified_.find(to);
        if (t == out.qualified_.end() || !t->second) {
          plain = false;
          changed = true;
          break;
        }
      }
    }
    if (!changed) break;
  }
  for (const auto& [name, plain] : out.qualified_) {
    mark(out.unqualified_, std::string(unqualified_part(name)), plain);
    out.any_code_ = out.any_code_ || !plain;
  }
  out.loaded_ = saw_functions;
  return out;
}

bool SessionCodeCatalog::plain(const router::TableRef& t) const {
  const auto& map = t.qualified() ? qualified_ : unqualified_;
  auto it = map.find(t.qualified() ? t.schema + "." + t.name : t.name);
  return it != map.end() && it->second;
}

cache::RowSecurity SessionCodeCatalog::row_security(std::string_view database, std::string_view qualified) const {
  std::string key(database);
  key.push_back('\0');
  key.append(qualified);
  auto it = row_security_.find(key);
  if (it == row_security_.end()) return cache::RowSecurity::unknown;
  return it->second ? cache::RowSecurity::on : cache::RowSecurity::off;
}

bool may_run_session_code(const router::Classification& c, const SessionCodeCatalog* catalog) {
  if (c.flags.opaque_session) return true;
  for (const auto* tables : {&c.tables_read, &c.tables_written}) {
    for (const auto& t : *tables) {
      if (catalog == nullptr || !catalog->plain(t)) return true;
    }
  }
  return false;
}

namespace {
bool ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool ident_char(char c) { return ident_start(c) || (c >= '0' && c <= '9') || c == '$'; }
}  // namespace

std::vector<std::string> custom_setting_names(std::string_view sql) {
  constexpr size_t kMaxNames = 64;
  std::vector<std::string> out;
  for (size_t i = 0; i < sql.size() && out.size() < kMaxNames; ++i) {
    if (sql[i] != '\'') continue;
    // 'ident.ident' and nothing else between the quotes.
    size_t j = i + 1, dots = 0;
    if (j >= sql.size() || !ident_start(sql[j])) continue;
    while (j < sql.size() && (ident_char(sql[j]) || sql[j] == '.')) {
      if (sql[j] == '.') {
        if (j + 1 >= sql.size() || !ident_start(sql[j + 1])) break;
        ++dots;
      }
      ++j;
    }
    if (j >= sql.size() || sql[j] != '\'' || dots != 1) continue;
    std::string name(sql.substr(i + 1, j - i - 1));
    for (char& ch : name) ch = static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
    i = j;
  }
  return out;
}

}  // namespace pgs::proxy
