#include "proxy/session/session_params.h"

#include "proxy/session/statement_text.h"

#include <algorithm>
#include <cctype>

namespace pgs::proxy {

namespace {
// Orders a folded key against a name as if the name were folded, without folding it into a string.
bool folded_less(std::string_view folded, std::string_view name) {
  size_t n = std::min(folded.size(), name.size());
  for (size_t i = 0; i < n; ++i) {
    char a = folded[i], b = ascii_lower(name[i]);
    if (a != b) return static_cast<unsigned char>(a) < static_cast<unsigned char>(b);
  }
  return folded.size() < name.size();
}

bool folded_equal(std::string_view folded, std::string_view name) {
  if (folded.size() != name.size()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (folded[i] != ascii_lower(name[i])) return false;
  }
  return true;
}
}  // namespace

std::string fold_guc_name(std::string_view name) {
  std::string out(name);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

bool valid_guc_name(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
  });
}

void GucMap::set(std::string_view name, std::string_view value) {
  std::string key = fold_guc_name(name);
  auto it = std::lower_bound(items_.begin(), items_.end(), key,
                             [](const auto& item, const std::string& k) { return item.first < k; });
  if (it != items_.end() && it->first == key) {
    it->second.assign(value);
  } else {
    items_.emplace(it, std::move(key), std::string(value));
  }
}

const std::string* GucMap::get(std::string_view name) const {
  auto it = std::lower_bound(items_.begin(), items_.end(), name,
                             [](const auto& item, std::string_view n) { return folded_less(item.first, n); });
  return (it != items_.end() && folded_equal(it->first, name)) ? &it->second : nullptr;
}

bool GucMap::erase(std::string_view name) {
  std::string key = fold_guc_name(name);
  auto it = std::find_if(items_.begin(), items_.end(), [&](const auto& item) { return item.first == key; });
  if (it == items_.end()) return false;
  items_.erase(it);
  return true;
}

namespace {

// Splits `options` the way the server's pg_split_opts does: whitespace separates, backslash escapes.
std::vector<std::string> split_options(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
      continue;
    }
    if (c == '\\' && i + 1 < text.size()) c = text[++i];
    cur.push_back(c);
    in_word = true;
  }
  if (in_word) out.push_back(std::move(cur));
  return out;
}

// "name=value" -> the pair, with '-' in the name read as '_' (as the server does for --name=value).
std::optional<StartupError> add_option_setting(std::string_view item, GucMap& gucs) {
  auto eq = item.find('=');
  if (eq == std::string_view::npos) {
    return StartupError{"08P01", "invalid command-line argument for server process: " + std::string(item)};
  }
  std::string name(item.substr(0, eq));
  std::replace(name.begin(), name.end(), '-', '_');
  if (!valid_guc_name(name)) {
    return StartupError{"42704", "unrecognized configuration parameter \"" + name + "\""};
  }
  gucs.set(name, item.substr(eq + 1));
  return std::nullopt;
}

std::optional<StartupError> parse_options(std::string_view text, GucMap& gucs) {
  auto words = split_options(text);
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w == "-c") {
      if (i + 1 >= words.size()) return StartupError{"08P01", "invalid command-line argument: -c needs a value"};
      if (auto err = add_option_setting(words[++i], gucs)) return err;
    } else if (w.rfind("-c", 0) == 0 && w.size() > 2) {
      if (auto err = add_option_setting(std::string_view(w).substr(2), gucs)) return err;
    } else if (w.rfind("--", 0) == 0 && w.size() > 2) {
      if (auto err = add_option_setting(std::string_view(w).substr(2), gucs)) return err;
    } else {
      return StartupError{"08P01", "invalid command-line argument for server process: " + w};
    }
  }
  return std::nullopt;
}

}  // namespace

std::variant<StartupRequest, StartupError> parse_startup_request(const protocol::frontend::Startup& startup) {
  StartupRequest req;
  std::string_view options;
  for (const auto& [name, value] : startup.params) {
    if (name == "user") {
      req.user.assign(value);
    } else if (name == "database") {
      req.database.assign(value);
    } else if (name == "options") {
      options = value;
    } else if (name == "replication") {
      // "false"/"0"/"off"/"no" keep a normal connection; anything else asks for a walsender.
      req.replication = !(value == "false" || value == "0" || value == "off" || value == "no");
    } else if (name.rfind("_pq_.", 0) == 0) {
      req.protocol_options.emplace_back(name);
    } else {
      if (!valid_guc_name(name)) {
        return StartupError{"42704", "unrecognized configuration parameter \"" + std::string(name) + "\""};
      }
      req.gucs.set(name, value);
    }
  }
  if (req.user.empty()) return StartupError{"28000", "no PostgreSQL user name specified in startup packet"};
  if (req.user.size() > 63) return StartupError{"28000", "user name too long"};
  if (req.database.empty()) req.database = req.user;
  if (req.database.size() > 63) return StartupError{"3D000", "database name too long"};
  if (!options.empty()) {
    if (auto err = parse_options(options, req.gucs)) return *err;
  }
  if (const std::string* app = req.gucs.get("application_name")) req.application_name = *app;
  return req;
}

bool is_tracked_setting(std::string_view name) {
  static constexpr std::string_view kTracked[] = {
      "application_name", "client_encoding", "datestyle", "intervalstyle", "timezone",
      "standard_conforming_strings", "default_transaction_read_only", "search_path"};
  std::string folded = fold_guc_name(name);
  for (auto t : kTracked) {
    if (folded == t) return true;
  }
  return false;
}

std::string quote_literal(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('\'');
  for (char c : s) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

namespace {
std::string quote_guc_for_reset(std::string_view folded_name) {
  // Each dotted part as a quoted identifier: RESET "pgsidecar"."route".
  std::string out;
  size_t start = 0;
  while (true) {
    size_t dot = folded_name.find('.', start);
    out += '"';
    out.append(folded_name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    out += '"';
    if (dot == std::string_view::npos) break;
    out += '.';
    start = dot + 1;
  }
  return out;
}
}  // namespace

std::string build_sync_sql(const GucMap& desired, const GucMap& applied, const GucMap& defaults) {
  std::string sets;
  for (const auto& [name, value] : desired.items()) {
    const std::string* current = applied.get(name);
    if (current == nullptr) current = defaults.get(name);
    if (current != nullptr && *current == value) continue;
    sets += sets.empty() ? "SELECT " : ", ";
    sets += "pg_catalog.set_config(" + quote_literal(name) + ", " + quote_literal(value) + ", false)";
  }
  std::string resets;
  for (const auto& [name, value] : applied.items()) {
    if (desired.get(name) != nullptr) continue;
    const std::string* def = defaults.get(name);
    if (def != nullptr && *def == value) continue;
    resets += "RESET " + quote_guc_for_reset(name) + ";";
  }
  if (sets.empty()) return resets;
  return sets + ";" + resets;
}

bool settings_in_sync(const GucMap& desired, const GucMap& applied, const GucMap& defaults) {
  // Names are stored folded and sorted, so the three lists merge in one pass; defaults are looked up in
  // increasing name order, so their cursor only moves forward.
  const auto& want = desired.items();
  const auto& set = applied.items();
  const auto& base = defaults.items();
  auto d = want.begin();
  auto a = set.begin();
  auto b = base.begin();
  auto default_of = [&](const std::string& name) -> const std::string* {
    while (b != base.end() && b->first < name) ++b;
    return b != base.end() && b->first == name ? &b->second : nullptr;
  };
  while (d != want.end() || a != set.end()) {
    if (d == want.end() || (a != set.end() && a->first < d->first)) {
      const std::string* def = default_of(a->first);  // applied but not wanted: must be at its default
      if (def == nullptr || *def != a->second) return false;
      ++a;
      continue;
    }
    const std::string* current = nullptr;
    if (a != set.end() && a->first == d->first) {
      current = &a->second;
      ++a;
    } else {
      current = default_of(d->first);
    }
    if (current == nullptr || *current != d->second) return false;
    ++d;
  }
  return true;
}

GucMap applied_after_sync(const GucMap& desired, const GucMap& defaults) {
  GucMap out;
  for (const auto& [name, value] : desired.items()) {
    const std::string* def = defaults.get(name);
    if (def == nullptr || *def != value) out.set(name, value);
  }
  return out;
}

}  // namespace pgs::proxy
