// Test helper of the conf suites: every error of a load, one per line, for failure messages and finds.
#pragma once

#include <string>

#include "conf/config.h"

namespace pgs::conf {

inline std::string errors_of(const LoadResult& r) {
  std::string all;
  for (const auto& e : r.errors) all += e.to_string() + "\n";
  return all;
}

}  // namespace pgs::conf
