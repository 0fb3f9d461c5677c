// Helpers shared by the endpoint handlers: ids from the path, access checks, statement execution
// with errors already turned into responses.
#pragma once

#include <cstdint>
#include <string>

#include "app/api.h"
#include "app/json_util.h"

namespace pgs::app {

// The path parameter at `index` as a resource id, or a 400 response.
Outcome<std::int64_t, Response> path_id(const Request& req, std::size_t index);

// The caller's role in a workspace ("owner", "editor", "viewer"), or 404 (no such workspace),
// 403 (not a member) or 503.
Outcome<std::string, Response> workspace_role(DbPool& db, std::int64_t workspace_id, std::int64_t user_id);

struct FlowAccess {
  std::int64_t workspace_id = 0;
  std::string role;
};
// The flow's workspace and the caller's role in it, or 404 / 403 / 503. With `lock`, the flow row
// is locked FOR UPDATE (the connection must be inside a transaction).
Outcome<FlowAccess, Response> flow_access(PgConn& conn, std::int64_t flow_id, std::int64_t user_id, bool lock);

inline bool can_edit(const std::string& role) { return role == "owner" || role == "editor"; }

// One statement on a leased connection; a DbError becomes its HTTP response.
Outcome<Rows, Response> run(PgConn& conn, std::string_view sql, const std::vector<Param>& params = {});
// Read-only statement through the pool (retried once on a dead connection).
Outcome<Rows, Response> read(DbPool& db, std::string_view sql, const std::vector<Param>& params = {});

Response bad_request(std::string_view message);
Response forbidden();

}  // namespace pgs::app
