// GET /api/v1/me and the workspace endpoints: GET /api/v1/workspaces, GET /api/v1/workspaces/{id}.
#include "app/handlers_common.h"

namespace pgs::app {

void add_user_routes(Router& router, Services& s) {
  router.add("GET", "/api/v1/me", [&s](Request& req) {
    auto rows = read(s.db,
                     "SELECT u.id, u.email, u.name, u.created_at, "
                     "(SELECT count(*) FROM core.workspace_members m WHERE m.user_id = u.id) AS workspaces, "
                     "(SELECT count(*) FROM core.notifications n WHERE n.user_id = u.id AND n.read_at IS NULL) "
                     "AS unread_notifications FROM core.users u WHERE u.id = $1",
                     {param(req.user->id)});
    if (!rows) return rows.error();
    if (rows->empty()) return error_response(404, "not_found", "no such user");
    return json_response(200, rows->row_json(0));
  });
}

void add_workspace_routes(Router& router, Services& s) {
  router.add("GET", "/api/v1/workspaces", [&s](Request& req) {
    auto rows = read(s.db,
                     "SELECT w.id, w.name, w.plan, w.owner_id, m.role, w.created_at "
                     "FROM core.workspace_members m JOIN core.workspaces w ON w.id = m.workspace_id "
                     "WHERE m.user_id = $1 ORDER BY w.id",
                     {param(req.user->id)});
    if (!rows) return rows.error();
    return json_response(200, boost::json::object{{"workspaces", rows->all_json()}});
  });

  router.add("GET", "/api/v1/workspaces/{id}", [&s](Request& req) {
    auto id = path_id(req, 0);
    if (!id) return id.error();
    auto rows = read(s.db,
                     "SELECT w.id, w.name, w.plan, w.owner_id, w.created_at, m.role, "
                     "(SELECT count(*) FROM core.workspace_members x WHERE x.workspace_id = w.id) AS members, "
                     "(SELECT count(*) FROM canvas.flows f WHERE f.workspace_id = w.id) AS flows "
                     "FROM core.workspaces w LEFT JOIN core.workspace_members m "
                     "ON m.workspace_id = w.id AND m.user_id = $2 WHERE w.id = $1",
                     {param(*id), param(req.user->id)});
    if (!rows) return rows.error();
    if (rows->empty()) return error_response(404, "not_found", "no such workspace");
    if (rows->is_null(0, 5)) return forbidden();
    return json_response(200, rows->row_json(0));
  });
}

}  // namespace pgs::app
