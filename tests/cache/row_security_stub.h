// Row-level security facts for policy tests: a fixed catalog (cache/policy.h RowSecurityFacts).
#pragma once

#include <set>
#include <string>

#include "cache/policy.h"

namespace pgs::cache::testing {

// Every relation is known in every database and has no row-level security, except those listed; when
// `only` is not empty, the catalog has just those relations (and those in `on`).
class FixedRowSecurity : public RowSecurityFacts {
 public:
  std::set<std::string> on;       // RLS enabled (or a view over such a table)
  std::set<std::string> unknown;  // not in the catalog
  std::set<std::string> only;
  RowSecurity row_security(std::string_view, std::string_view qualified) const override {
    std::string name(qualified);
    if (on.count(name) != 0) return RowSecurity::on;
    if (unknown.count(name) != 0 || (!only.empty() && only.count(name) == 0)) return RowSecurity::unknown;
    return RowSecurity::off;
  }
};

// SessionFacts whose catalog knows every relation and none has row-level security.
inline SessionFacts known_facts() {
  static const FixedRowSecurity none;
  SessionFacts f;
  f.row_security = &none;
  f.database = "flopods";
  return f;
}

}  // namespace pgs::cache::testing
