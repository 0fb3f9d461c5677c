#include "conf/table_reader.h"

#include <algorithm>
#include <cstdlib>

#include "conf/units.h"

namespace pgs::conf::detail {
namespace {

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string between(std::string_view lo, std::string_view hi) {
  return "must be between " + std::string(lo) + " and " + std::string(hi);
}

// Edit distance, for "did you mean" hints on unknown keys. Keys are short; O(n*m) is fine.
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

int line_of(const toml::node& node) { return static_cast<int>(node.source().begin.line); }

std::string_view type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

TableReader::TableReader(const toml::table& table, std::string path, Diagnostics& diag)
    : table_(table), path_(std::move(path)), diag_(diag), line_(line_of(table)) {}

std::string TableReader::path_of(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

void TableReader::error(std::string_view key, const toml::node& node, std::string message) {
  diag_.error(path_of(key), line_of(node), std::move(message));
}

const toml::node* TableReader::take(std::string_view key) {
  known_.emplace_back(key);
  const toml::node* node = table_.get(key);
  if (node != nullptr) diag_.note_line(path_of(key), line_of(*node));
  return node;
}

bool TableReader::expect_type(std::string_view key, const toml::node& node, toml::node_type type) {
  if (node.type() == type) return true;
  error(key, node, "expected " + std::string(type_name(type)) + ", got " + std::string(type_name(node.type())));
  return false;
}

void TableReader::optional_integer(std::string_view key, std::optional<int>& out, int64_t min, int64_t max) {
  const toml::node* node = take(key);
  if (node == nullptr || !expect_type(key, *node, toml::node_type::integer)) return;
  int64_t v = node->as_integer()->get();
  if (v < min || v > max) {
    error(key, *node, between(std::to_string(min), std::to_string(max)) + ", got " + std::to_string(v));
    return;
  }
  out = static_cast<int>(v);
}

void TableReader::integer(std::string_view key, int& out, int64_t min, int64_t max) {
  std::optional<int> value;
  optional_integer(key, value, min, max);
  if (value) out = *value;
}

void TableReader::port(std::string_view key, uint16_t& out) {
  std::optional<int> value;
  optional_integer(key, value, 1, 65535);
  if (value) out = static_cast<uint16_t>(*value);
}

void TableReader::boolean(std::string_view key, bool& out) {
  const toml::node* node = take(key);
  if (node == nullptr || !expect_type(key, *node, toml::node_type::boolean)) return;
  out = node->as_boolean()->get();
}

void TableReader::string(std::string_view key, std::string& out, Length length) {
  const toml::node* node = take(key);
  if (node == nullptr || !expect_type(key, *node, toml::node_type::string)) return;
  const std::string& v = node->as_string()->get();
  if (v.size() < length.min && length.min == 1) {
    error(key, *node, "must not be empty");
  } else if (v.size() < length.min || v.size() > length.max) {
    error(key, *node, "length must be between " + std::to_string(length.min) + " and " +
                          std::to_string(length.max) + " bytes, got " + std::to_string(v.size()));
  } else {
    out = v;
  }
}

void TableReader::secret(std::string_view key, std::string& out, Length length) {
  const std::string file_key = std::string(key) + "_file";
  const std::string env_key = std::string(key) + "_env";
  const toml::node* inline_node = table_.get(key);
  const toml::node* file_node = table_.get(file_key);
  const toml::node* env_node = table_.get(env_key);
  int given = (inline_node != nullptr) + (file_node != nullptr) + (env_node != nullptr);
  if (given > 1) {
    const toml::node& at = file_node != nullptr ? *file_node : *env_node;
    take(file_key);
    take(env_key);
    take(key);
    error(file_node != nullptr ? std::string_view(file_key) : std::string_view(env_key), at,
          "set only one of " + std::string(key) + ", " + file_key + " and " + env_key);
    return;
  }
  if (file_node == nullptr && env_node == nullptr) {
    take(file_key);
    take(env_key);
    string(key, out, length);
    return;
  }
  take(key);
  std::string source;
  std::string_view source_key = file_node != nullptr ? std::string_view(file_key) : std::string_view(env_key);
  string(source_key, source, Length{1, 4096});
  if (source.empty()) return;  // the error is recorded
  const toml::node& at = file_node != nullptr ? *file_node : *env_node;
  if (env_node != nullptr) {
    take(file_key);
    const char* value = std::getenv(source.c_str());
    if (value == nullptr) {
      error(env_key, at, "environment variable " + source + " is not set");
      return;
    }
    source = value;
  } else {
    take(env_key);
    std::optional<std::string> contents = read_secret_file(source, length.max);
    if (!contents) {
      error(file_key, at, "cannot read " + source);
      return;
    }
    source = std::move(*contents);
  }
  if (source.size() < length.min || source.size() > length.max) {
    error(source_key, at, "the secret's length must be between " + std::to_string(length.min) + " and " +
                              std::to_string(length.max) + " bytes, got " + std::to_string(source.size()));
    return;
  }
  out = std::move(source);
}

void TableReader::string_list(std::string_view key, std::vector<std::string>& out, Length length) {
  const toml::node* node = take(key);
  if (node == nullptr || !expect_type(key, *node, toml::node_type::array)) return;
  std::vector<std::string> values;
  bool ok = true;
  const toml::array& array = *node->as_array();
  for (size_t i = 0; i < array.size(); ++i) {
    const toml::node& item = array[i];
    std::string item_key = std::string(key) + "[" + std::to_string(i) + "]";
    if (!expect_type(item_key, item, toml::node_type::string)) {
      ok = false;
      continue;
    }
    const std::string& v = item.as_string()->get();
    if (v.size() < length.min || v.size() > length.max) {
      error(item_key, item, "length must be between " + std::to_string(length.min) + " and " +
                                std::to_string(length.max) + " bytes");
      ok = false;
      continue;
    }
    values.push_back(v);
  }
  if (ok) out = std::move(values);
}

void TableReader::duration(std::string_view key, Millis& out, Millis min, Millis max) {
  const toml::node* node = take(key);
  if (node == nullptr) return;
  std::optional<Millis> value;
  if (node->is_integer() && node->as_integer()->get() == 0) {
    value = Millis{0};
  } else if (node->is_string()) {
    value = parse_duration(node->as_string()->get());
  }
  if (!value) {
    error(key, *node, "expected a duration with a unit (ms, s, m, h, d), e.g. \"5s\" or \"250ms\"");
    return;
  }
  if (*value < min || *value > max) {
    error(key, *node, between(format_duration(min), format_duration(max)) + ", got " + format_duration(*value));
    return;
  }
  out = *value;
}

void TableReader::millis(std::string_view key, Millis& out, Millis min, Millis max) {
  const toml::node* node = table_.get(key);
  if (node != nullptr && node->is_integer()) {
    take(key);
    int64_t v = node->as_integer()->get();
    if (v < min.count() || v > max.count()) {
      error(key, *node, between(std::to_string(min.count()), std::to_string(max.count())) + " (ms), got " +
                            std::to_string(v));
      return;
    }
    out = Millis{v};
    return;
  }
  duration(key, out, min, max);
}

void TableReader::size(std::string_view key, uint64_t& out, uint64_t min, uint64_t max) {
  const toml::node* node = take(key);
  if (node == nullptr) return;
  std::optional<uint64_t> value;
  if (node->is_integer() && node->as_integer()->get() >= 0) {
    value = static_cast<uint64_t>(node->as_integer()->get());
  } else if (node->is_string()) {
    value = parse_size(node->as_string()->get());
  }
  if (!value) {
    error(key, *node, "expected a size: bytes as an integer, or a string with a unit (kB, MB, GB), e.g. \"64MB\"");
    return;
  }
  if (*value < min || *value > max) {
    error(key, *node, between(format_size(min), format_size(max)) + ", got " + format_size(*value));
    return;
  }
  out = *value;
}

void TableReader::size(std::string_view key, uint32_t& out, uint64_t min, uint64_t max) {
  uint64_t value = out;
  size(key, value, min, std::min<uint64_t>(max, UINT32_MAX));
  out = static_cast<uint32_t>(value);
}

std::optional<size_t> TableReader::match_name(std::string_view key, const toml::node& node,
                                              const std::vector<std::string_view>& names) {
  if (!expect_type(key, node, toml::node_type::string)) return std::nullopt;
  const std::string& v = node.as_string()->get();
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == v) return i;
  }
  std::string message = "must be one of ";
  for (size_t i = 0; i < names.size(); ++i) message += (i ? ", " : "") + quoted(names[i]);
  error(key, node, message + "; got " + quoted(v));
  return std::nullopt;
}

const toml::table* TableReader::table(std::string_view key) {
  const toml::node* node = take(key);
  if (node == nullptr || !expect_type(key, *node, toml::node_type::table)) return nullptr;
  return node->as_table();
}

const toml::array* TableReader::array_of_tables(std::string_view key) {
  const toml::node* node = take(key);
  if (node == nullptr) return nullptr;
  if (!node->is_array_of_tables() && !(node->is_array() && node->as_array()->empty())) {
    error(key, *node, "expected an array of tables ([[" + path_of(key) + "]] sections), got " +
                          std::string(type_name(node->type())));
    return nullptr;
  }
  return node->as_array();
}

void TableReader::finish() {
  for (const auto& [key, node] : table_) {
    std::string_view name = key.str();
    if (std::find(known_.begin(), known_.end(), name) != known_.end()) continue;
    std::string message = path_.empty() ? "unknown table or key" : "unknown key";
    const std::string* best = nullptr;
    size_t best_distance = 3;
    for (const std::string& candidate : known_) {
      size_t d = edit_distance(name, candidate);
      if (d < best_distance) {
        best_distance = d;
        best = &candidate;
      }
    }
    if (best != nullptr) message += " (did you mean " + quoted(*best) + "?)";
    int line = key.source().begin.line ? static_cast<int>(key.source().begin.line) : line_of(node);
    diag_.error(path_of(name), line, std::move(message));
  }
}

}  // namespace pgs::conf::detail
