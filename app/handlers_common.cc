#include "app/handlers_common.h"

namespace pgs::app {

Response bad_request(std::string_view message) { return error_response(400, "bad_request", message); }

Response forbidden() {
  return error_response(403, "forbidden", "you are not allowed to access this resource");
}

Outcome<std::int64_t, Response> path_id(const Request& req, std::size_t index) {
  if (index >= req.path_params.size()) return bad_request("missing id");
  const auto id = parse_id(req.path_params[index]);
  if (!id) return bad_request("invalid id: " + req.path_params[index].substr(0, 32));
  return *id;
}

Outcome<Rows, Response> run(PgConn& conn, std::string_view sql, const std::vector<Param>& params) {
  auto rows = conn.exec(sql, params);
  if (!rows) return db_error_response(rows.error());
  return std::move(*rows);
}

Outcome<Rows, Response> read(DbPool& db, std::string_view sql, const std::vector<Param>& params) {
  auto rows = db.read(sql, params);
  if (!rows) return db_error_response(rows.error());
  return std::move(*rows);
}

Outcome<std::string, Response> workspace_role(DbPool& db, std::int64_t workspace_id, std::int64_t user_id) {
  auto rows = read(db,
                   "SELECT m.role FROM core.workspaces w LEFT JOIN core.workspace_members m "
                   "ON m.workspace_id = w.id AND m.user_id = $2 WHERE w.id = $1",
                   {param(workspace_id), param(user_id)});
  if (!rows) return rows.error();
  if (rows->empty()) return error_response(404, "not_found", "no such workspace");
  if (rows->is_null(0, 0)) return forbidden();
  return std::string(rows->text(0, 0));
}

Outcome<FlowAccess, Response> flow_access(PgConn& conn, std::int64_t flow_id, std::int64_t user_id, bool lock) {
  const std::string sql = std::string(
                              "SELECT f.workspace_id, m.role FROM canvas.flows f LEFT JOIN core.workspace_members m "
                              "ON m.workspace_id = f.workspace_id AND m.user_id = $2 WHERE f.id = $1") +
                          (lock ? " FOR UPDATE OF f" : "");
  auto rows = run(conn, sql, {param(flow_id), param(user_id)});
  if (!rows) return rows.error();
  if (rows->empty()) return error_response(404, "not_found", "no such flow");
  if (rows->is_null(0, 1)) return forbidden();
  return FlowAccess{rows->int64(0, 0), std::string(rows->text(0, 1))};
}

}  // namespace pgs::app
