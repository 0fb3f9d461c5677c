// Error collection for the loader: every problem is recorded, none stops the load (conf/ is the one
// place where a bad value must not hide the next one). Internal to conf/.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "conf/config.h"

namespace pgs::conf::detail {

class Diagnostics {
 public:
  void error(std::string key, int line, std::string message);
  void syntax_error(int line, int column, std::string message);
  // Where `key` (a dotted path, as in ConfigError::key) was written; validation after reading uses it.
  void note_line(const std::string& key, int line) { lines_.emplace(key, line); }
  int line_of(const std::string& key) const;  // 0 if the key was not in the file
  bool empty() const { return errors_.empty(); }
  // Errors sorted by line (stable), so the output follows the file.
  std::vector<ConfigError> take();

 private:
  std::vector<ConfigError> errors_;
  std::unordered_map<std::string, int> lines_;
};

}  // namespace pgs::conf::detail
