// Reads one TOML table into struct fields, key by key, recording every error in Diagnostics and
// remembering which keys were asked for, so finish() can name the unknown ones. Internal to conf/.
//
// Contract of every read: an absent key leaves `out` at its in-class default; a present key of the wrong
// type or out of range is an error (key path + line) and also leaves `out` unchanged.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <toml++/toml.h>
#include <vector>

#include "conf/config.h"
#include "conf/diagnostics.h"
#include "conf/enum_names.h"

namespace pgs::conf::detail {

int line_of(const toml::node& node);
std::string_view type_name(toml::node_type type);

// Byte-length bounds of a string value.
struct Length {
  size_t min = 0;
  size_t max = 4096;
};
inline constexpr Length kIdentifier{1, 63};  // Postgres NAMEDATALEN - 1
inline constexpr Length kNonEmpty{1, 4096};

class TableReader {
 public:
  TableReader(const toml::table& table, std::string path, Diagnostics& diag);

  void integer(std::string_view key, int& out, int64_t min, int64_t max);
  void optional_integer(std::string_view key, std::optional<int>& out, int64_t min, int64_t max);
  void port(std::string_view key, uint16_t& out);
  void boolean(std::string_view key, bool& out);
  void string(std::string_view key, std::string& out, Length length = {});
  // A secret: `key` itself, or `key`_file (a file's contents, one trailing newline dropped) or `key`_env
  // (an environment variable's value) — at most one of the three. Read at every load, so a reload
  // (SIGHUP) picks up a rotated file. An unreadable file or an unset variable is an error.
  void secret(std::string_view key, std::string& out, Length length = {});
  // A list of strings, each within `length`; replaces `out` when present.
  void string_list(std::string_view key, std::vector<std::string>& out, Length length = {});
  // "5s", "250ms" ... or the integer 0. Bounds inclusive.
  void duration(std::string_view key, Millis& out, Millis min, Millis max);
  // An integer number of milliseconds, or a duration string.
  void millis(std::string_view key, Millis& out, Millis min, Millis max);
  // An integer (bytes) or "64MB". Bounds inclusive.
  void size(std::string_view key, uint64_t& out, uint64_t min, uint64_t max);
  void size(std::string_view key, uint32_t& out, uint64_t min, uint64_t max);

  template <typename E, size_t N>
  void enumeration(std::string_view key, E& out, const std::array<EnumName<E>, N>& names) {
    std::optional<E> value;
    optional_enumeration(key, value, names);
    if (value) out = *value;
  }
  template <typename E, size_t N>
  void optional_enumeration(std::string_view key, std::optional<E>& out,
                            const std::array<EnumName<E>, N>& names) {
    const toml::node* node = take(key);
    if (node == nullptr) return;
    std::vector<std::string_view> spelled;
    for (const auto& n : names) spelled.push_back(n.name);
    std::optional<size_t> index = match_name(key, *node, spelled);
    if (index) out = names[*index].value;
  }

  // A sub-table (`[cache]` inside the root, say); null if absent or not a table (then an error).
  const toml::table* table(std::string_view key);
  // An array of tables (`[[users]]`); null if absent or of the wrong shape (then an error).
  const toml::array* array_of_tables(std::string_view key);

  // Reports every key present in the table that no read asked for, with a suggestion when one of the
  // known keys is a near miss. Call once, after all reads.
  void finish();

  std::string path_of(std::string_view key) const;
  const std::string& path() const { return path_; }
  int line() const { return line_; }
  Diagnostics& diagnostics() { return diag_; }
  void error(std::string_view key, const toml::node& node, std::string message);

 private:
  // The node under `key`, marking the key known and noting its line; null if absent.
  const toml::node* take(std::string_view key);
  bool expect_type(std::string_view key, const toml::node& node, toml::node_type type);
  std::optional<size_t> match_name(std::string_view key, const toml::node& node,
                                   const std::vector<std::string_view>& names);

  const toml::table& table_;
  std::string path_;
  Diagnostics& diag_;
  int line_;
  std::vector<std::string> known_;
};

}  // namespace pgs::conf::detail
