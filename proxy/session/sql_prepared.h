// SQL-level PREPARE / EXECUTE / DEALLOCATE under transaction pooling (issue 3). Unlike protocol-level
// statements (proxy/prepared.h), a SQL-prepared statement is named in the SQL text (EXECUTE q), so it
// lives on the server under the client's own name. The proxy keeps each client's statements (name ->
// the PREPARE statement's text) and a record of what each server holds; before a request that names a
// statement runs, it brings the server to the client's state for that name (DEALLOCATE a stranger's
// definition, PREPARE the client's), so the server answers PREPARE twice (42P05), EXECUTE of an unknown
// name (26000) and everything else itself. What a statement did is learnt from the server's replies
// (its CommandComplete), never assumed: prepared statements are not transactional in Postgres (a
// PREPARE in a rolled-back transaction stays), and a failed statement does nothing.
// Pure: no libuv, no sockets.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "router/classification.h"

namespace pgs::proxy {

// One change to a set of SQL-prepared statements, confirmed by the CommandComplete `tag` (or by a
// CloseComplete for a protocol Close of a SQL-prepared name: empty tag).
struct SqlPrepEffect {
  enum class Op : uint8_t { prepare, deallocate, deallocate_all };
  Op op = Op::prepare;
  std::string name;
  std::string definition;  // prepare: the PREPARE statement's text, as sent
  std::string tag;         // "PREPARE", "DEALLOCATE", "DEALLOCATE ALL", "DISCARD ALL"; "" = CloseComplete
};

// The effects of one request's statements by ordinal (the n-th CommandComplete of a Query).
struct SqlPrepEffects {
  std::vector<std::optional<SqlPrepEffect>> by_statement;
  bool injected = false;  // the proxy's own statements: the server changes, the client's set does not
};
using SqlPrepEffectsRef = std::shared_ptr<const SqlPrepEffects>;

// Cheap pre-check (no allocation): false only when `sql` cannot name or change a SQL-prepared statement.
// Its words are among statement_may_change_session()'s (session_tracker.h): the proxy skips this check for a
// text that has none of those (tests/proxy/sql_prepared_test.cc keeps it so).
inline constexpr std::string_view kSqlPreparedWords[] = {"prepare", "execute", "dealloc", "discard"};
bool mentions_sql_prepared(std::string_view sql);

// True when `sql` may create a SQL-prepared statement the proxy cannot see: it says "prepare" but no
// statement of `c` is a PREPARE (dynamic SQL in a DO block or a function; a text the parser skipped).
bool may_prepare_unseen(std::string_view sql, const router::Classification& c);

// What a classified statement list means for SQL-prepared statements.
struct SqlPrepRequest {
  std::vector<std::string> names;          // prepared or executed by name (unique): the definition matters
  std::vector<std::string> dealloc_names;  // only deallocated (unique, not in `names`): existence matters
  SqlPrepEffectsRef effects;               // null when nothing changes
};
SqlPrepRequest sql_prep_request(const router::Classification& c);

// A set of SQL-prepared statements, name -> definition, least recently used last.
class SqlStatementSet {
 public:
  const std::string* find(const std::string& name) const;
  void put(const std::string& name, std::string definition);
  void erase(const std::string& name);
  void clear();
  void apply(const SqlPrepEffect& e);
  void touch(const std::string& name);
  size_t size() const { return index_.size(); }
  // Up to `n` names from the least recently used end, skipping `keep`.
  std::vector<std::string> least_recent(size_t n, const std::vector<std::string>& keep) const;

 private:
  using Entry = std::pair<std::string, std::string>;  // name, definition
  std::list<Entry> lru_;                              // front = most recently used
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

// The statements (one Query) that make `server` hold exactly `client`'s definition of each of `names`,
// and a statement of each of `dealloc_names` exactly when the client has one (a placeholder when the
// client's own definition is not needed: DEALLOCATE must succeed even if that no longer compiles),
// then, when `may_evict`, DEALLOCATE least recently used statements to bring it to `capacity`.
// Empty `sql` when nothing is needed. Touches the matching names in `server`.
struct SqlSyncPlan {
  std::string sql;
  SqlPrepEffectsRef effects;  // one per statement, injected
};
SqlSyncPlan plan_sql_sync(const std::vector<std::string>& names, const std::vector<std::string>& dealloc_names,
                          const SqlStatementSet& client, SqlStatementSet& server, size_t capacity, bool may_evict);

// What `server` holds that `client` does not hold under the same name with the same definition (the
// statements another client left there) is deallocated before `client` uses the server: a statement's
// text may hold literals, and pg_prepared_statements would list it. Returns the DEALLOCATE statements
// ("" when none) and erases those names from `server` (if they fail, the server is closed).
std::string deallocate_strangers(const SqlStatementSet& client, SqlStatementSet& server);

// "name" quoted as an identifier for DEALLOCATE.
std::string quote_ident(std::string_view name);

}  // namespace pgs::proxy
