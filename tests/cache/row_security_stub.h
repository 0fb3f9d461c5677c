// Row-level security facts for policy tests: a fixed catalog (cache/policy.h RowSecurityFacts).
#pragma once

#include <set>
#include <string>

#include "cache/policy.h"

namespace pgs::cache::testing {

// Every relation is known in every database and has no row-level security, except those listed.
class FixedRowSecurity : public RowSecurityFacts {
 public:
  std::set<std::string> on;       // RLS enabled (or a view over such a table)
  std::set<std::string> unknown;  // not in the catalog
  RowSecurity row_security(std::string_view, std::string_view qualified) const override {
    std::string name(qualified);
    if (unknown.count(name) != 0) return RowSecurity::unknown;
    return on.count(name) != 0 ? RowSecurity::on : RowSecurity::off;
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
