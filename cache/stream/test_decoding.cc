#include "cache/stream/test_decoding.h"

#include <utility>

namespace pgs::cache::stream {

namespace {

constexpr std::string_view kTablePrefix = "table ";
constexpr std::string_view kAllTables = "*";

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Consumes `prefix` from the front of `s` if it is there.
bool consume(std::string_view& s, std::string_view prefix) {
  if (!s.starts_with(prefix)) return false;
  s.remove_prefix(prefix.size());
  return true;
}

// "BEGIN" / "COMMIT", optionally followed by " <xid>" (include-xids) and, for COMMIT,
// " (at <timestamp>)" (include-timestamp). Anything else ("COMMIT PREPARED 'x'") is not a match.
bool is_keyword_line(std::string_view line, std::string_view keyword, bool timestamp_allowed) {
  if (!consume(line, keyword)) return false;
  if (line.size() >= 2 && line[0] == ' ' && is_digit(line[1])) {
    line.remove_prefix(1);
    while (!line.empty() && is_digit(line.front())) line.remove_prefix(1);
  }
  if (line.empty()) return true;
  return timestamp_allowed && line.starts_with(" (at ") && line.ends_with(')');
}

// One part of a qualified name, as quote_identifier() wrote it: "..." with "" for a quote inside, or
// bare characters up to a delimiter. Consumes it from `s`; nullopt if it is empty or an open quote.
std::optional<std::string> read_identifier(std::string_view& s) {
  std::string out;
  if (consume(s, "\"")) {
    for (;;) {
      const size_t q = s.find('"');
      if (q == std::string_view::npos) return std::nullopt;
      out.append(s.substr(0, q));
      s.remove_prefix(q + 1);
      if (!consume(s, "\"")) break;
      out.push_back('"');
    }
  } else {
    const size_t end = s.find_first_of(".:,\" ");
    out.assign(s.substr(0, end));
    s.remove_prefix(end == std::string_view::npos ? s.size() : end);
  }
  if (out.empty()) return std::nullopt;
  return out;
}

// "schema.name" (quote_qualified_identifier) → the cache's name, "schema.name" unquoted.
std::optional<std::string> read_relation(std::string_view& s) {
  auto schema = read_identifier(s);
  if (!schema || !consume(s, ".")) return std::nullopt;
  auto name = read_identifier(s);
  if (!name) return std::nullopt;
  return *schema + "." + *name;
}

// "table <rel>[, <rel>...]: <ACTION>:[ ...]" → every relation of the line; nullopt if it does not
// read. Only TRUNCATE names several relations (pg_decode_truncate); INSERT/UPDATE/DELETE name one.
std::optional<std::vector<std::string>> read_table_line(std::string_view line) {
  if (!consume(line, kTablePrefix)) return std::nullopt;
  std::vector<std::string> relations;
  do {
    auto rel = read_relation(line);
    if (!rel) return std::nullopt;
    relations.push_back(std::move(*rel));
  } while (consume(line, ", "));
  if (!consume(line, ": ")) return std::nullopt;
  const bool truncate = consume(line, "TRUNCATE:");
  if (!truncate && !consume(line, "INSERT:") && !consume(line, "UPDATE:") && !consume(line, "DELETE:")) {
    return std::nullopt;
  }
  if (!line.empty() && line.front() != ' ') return std::nullopt;
  if (!truncate && relations.size() != 1) return std::nullopt;
  return relations;
}

}  // namespace

DecodedLine parse_test_decoding(std::string_view line) {
  if (is_keyword_line(line, "BEGIN", false)) return {DecodedLine::Kind::begin, {}};
  if (is_keyword_line(line, "COMMIT", true)) return {DecodedLine::Kind::commit, {}};
  auto relations = read_table_line(line);
  if (!relations || relations->size() != 1) return {};
  return {DecodedLine::Kind::change, std::move(relations->front())};
}

TransactionTables::TransactionTables(size_t max_tables) : max_tables_(max_tables) {}

std::optional<std::vector<std::string>> TransactionTables::on_line(std::string_view line) {
  if (is_keyword_line(line, "BEGIN", false)) {
    if (in_transaction_) all_tables_ = true;  // the previous one never committed: we lost our place
    in_transaction_ = true;
    return std::nullopt;
  }
  if (is_keyword_line(line, "COMMIT", true)) {
    std::vector<std::string> answer;
    if (all_tables_ || !in_transaction_) {
      answer.emplace_back(kAllTables);
    } else {
      answer.assign(tables_.begin(), tables_.end());  // a std::set: sorted and unique already
    }
    in_transaction_ = false;
    all_tables_ = false;
    tables_.clear();
    return answer;
  }
  if (!line.starts_with(kTablePrefix)) return std::nullopt;  // "message: ...", unknown lines
  auto relations = read_table_line(line);
  if (!relations || !in_transaction_) {
    all_tables_ = true;
    tables_.clear();
    return std::nullopt;
  }
  for (auto& rel : *relations) add(std::move(rel));
  return std::nullopt;
}

void TransactionTables::add(std::string table) {
  if (all_tables_ || tables_.contains(table)) return;
  if (tables_.size() >= max_tables_) {
    all_tables_ = true;
    tables_.clear();
    return;
  }
  tables_.insert(std::move(table));
}

}  // namespace pgs::cache::stream
