#include "conf/diagnostics.h"

#include <algorithm>
#include <limits>

namespace pgs::conf::detail {

void Diagnostics::error(std::string key, int line, std::string message) {
  errors_.push_back(ConfigError{std::move(key), line, std::move(message)});
}

void Diagnostics::syntax_error(int line, int column, std::string message) {
  errors_.push_back(ConfigError{"", line, std::move(message), column});
}

int Diagnostics::line_of(const std::string& key) const {
  auto it = lines_.find(key);
  return it == lines_.end() ? 0 : it->second;
}

std::vector<ConfigError> Diagnostics::take() {
  // Errors without a line (a missing table, say) go last.
  auto order = [](const ConfigError& e) { return e.line == 0 ? std::numeric_limits<int>::max() : e.line; };
  std::stable_sort(errors_.begin(), errors_.end(),
                   [&](const ConfigError& a, const ConfigError& b) { return order(a) < order(b); });
  return std::move(errors_);
}

}  // namespace pgs::conf::detail
