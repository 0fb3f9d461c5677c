// The admin console: splits a Query's text into commands, runs each, encodes the replies.
// Commands are case-insensitive words separated by whitespace; ';' separates commands; an empty
// command is skipped. The first failing command ends the batch with its ErrorResponse.
#include "proxy/admin/admin_console.h"

#include <cctype>
#include <optional>

#include "protocol/writer.h"
#include "proxy/admin/aggregate.h"
#include "proxy/admin/show.h"

namespace pgs::proxy::admin {

namespace {

std::vector<std::string> words(std::string_view command) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : command) {
    if (std::isspace(static_cast<unsigned char>(ch))) {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(ch))));
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

void encode(std::string& out, const Table& t) {
  if (!t.notice.empty()) protocol::write_notice(out, {.severity = "NOTICE", .sqlstate = "00000", .message = t.notice});
  std::vector<protocol::ColumnSpec> cols;
  cols.reserve(t.columns.size());
  for (const auto& c : t.columns) cols.push_back({.name = c});
  protocol::write_row_description(out, cols);
  std::vector<std::optional<std::string_view>> values;
  for (const auto& row : t.rows) {
    values.clear();
    for (const auto& cell : row) values.push_back(cell ? std::optional<std::string_view>(*cell) : std::nullopt);
    protocol::write_data_row(out, values);
  }
  protocol::write_command_complete(out, "SHOW");
}

std::string command_names() {
  std::string s;
  for (const auto& [c, d] : command_list()) s += (s.empty() ? "" : ", ") + c;
  return s;
}

void unknown(std::string& out, std::string_view command) {
  std::string message = "pgsidecar: unknown admin command: " + std::string(command.substr(0, 200));
  std::string hint = "Commands: " + command_names() + ".";
  protocol::write_error(out, {.sqlstate = "42601", .message = message, .hint = hint});
}

std::shared_ptr<const Snapshot> snapshot_of(const AdminHooks& hooks) {
  return hooks.snapshot ? hooks.snapshot() : nullptr;
}

// SHOW <what>: the table, or nullopt if <what> is unknown.
std::optional<Table> show(const std::string& what, const AdminHooks& hooks) {
  auto all = [&] { return aggregate(hooks.stats ? hooks.stats() : std::vector<WorkerStats>{}); };
  auto config = [&]() -> std::shared_ptr<const conf::Config> {
    auto snap = snapshot_of(hooks);
    return snap && snap->config ? snap->config : std::make_shared<const conf::Config>();
  };
  auto now = WallClock::now();
  if (what == "POOLS") return show_pools(all());
  if (what == "STATS") return show_stats(all());
  if (what == "CLIENTS") return show_clients(all(), now);
  if (what == "SERVERS") return show_servers(all(), now);
  if (what == "VERSION") return show_version(hooks.version);
  if (what == "HELP") return show_help();
  if (what == "CACHE") return show_cache(all());
  if (what == "DIGESTS") {
    if (!hooks.digest_rows) return show_digests(std::nullopt);
    return show_digests(hooks.digest_rows(100));
  }
  if (what == "CONFIG") return show_config(*config());
  if (what == "REPLICAS") {
    auto health = hooks.health ? hooks.health() : nullptr;
    return show_replicas(*config(), health.get());
  }
  return std::nullopt;
}

// One command; false when it ended the batch with an error.
bool run_one(std::string& out, std::string_view text, const std::vector<std::string>& w, const AdminHooks& hooks) {
  if (w[0] == "SHOW" && w.size() <= 2) {
    if (auto table = show(w.size() == 2 ? w[1] : "HELP", hooks)) {
      encode(out, *table);
      return true;
    }
  }
  if (w.size() != 1) {
    unknown(out, text);
    return false;
  }
  const std::string& c = w[0];
  if (c == "RELOAD") {
    std::string message;
    if (!hooks.reload || !hooks.reload(message)) {
      protocol::write_error(out, {.sqlstate = "F0000",
                                  .message = "pgsidecar: reload failed; the running configuration is kept",
                                  .detail = message});
      return false;
    }
    protocol::write_command_complete(out, "RELOAD");
    return true;
  }
  if (c == "PAUSE" || c == "RESUME") {
    if (hooks.set_paused) hooks.set_paused(c == "PAUSE");
    protocol::write_command_complete(out, c);
    return true;
  }
  if (c == "SHUTDOWN") {
    protocol::write_command_complete(out, "SHUTDOWN");
    if (hooks.shutdown) hooks.shutdown();
    return true;
  }
  unknown(out, text);
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string execute(std::string_view sql, const AdminHooks& hooks) {
  std::string out;
  bool any = false;
  while (true) {
    size_t semi = sql.find(';');
    std::string_view text = trim(sql.substr(0, semi));
    auto w = words(text);
    if (!w.empty()) {
      any = true;
      if (!run_one(out, text, w, hooks)) return out;
    }
    if (semi == std::string_view::npos) break;
    sql.remove_prefix(semi + 1);
  }
  if (!any) protocol::write_empty_query_response(out);
  return out;
}

}  // namespace pgs::proxy::admin
