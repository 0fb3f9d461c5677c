// What the router knows about functions called in a statement: can they run on a hot standby, can
// their result be cached, and do they change session state. Unknown functions are neither safe nor
// cacheable (conservative): a user function may write, lock or depend on anything.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pgs::router {

enum class FunctionEffect : uint8_t {
  none,
  advisory_lock,         // pg_advisory_lock[_shared], pg_try_advisory_lock[_shared]: session-level
  advisory_xact_lock,    // pg_advisory_xact_lock*, pg_try_advisory_xact_lock*: transaction-level
  advisory_unlock,       // pg_advisory_unlock[_shared]
  advisory_unlock_all,   // pg_advisory_unlock_all
  set_config,            // set_config(name, value, is_local)
};

struct FunctionInfo {
  bool replica_safe = false;  // reads only, and gives the same answer on a replica as on the primary
  bool volatile_ = true;      // two calls may return different results (not cacheable)
  FunctionEffect effect = FunctionEffect::none;
  bool known = false;         // in the built-in table
};

// `schema` is "" for an unqualified call; only unqualified and pg_catalog-qualified calls match the
// built-in table. `extra_safe` holds ClassifyOptions::replica_safe_functions: entries match the name as
// written ("app.f" or "f"); such functions are replica-safe but still volatile (we know nothing else).
FunctionInfo lookup_function(std::string_view schema, std::string_view name,
                             const std::vector<std::string>& extra_safe);

}  // namespace pgs::router
