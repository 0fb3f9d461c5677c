// Flows: GET/POST /api/v1/workspaces/{id}/flows (keyset pagination over updated_at DESC, id DESC),
// GET /api/v1/flows/{id} (with its pods), PATCH /api/v1/flows/{id}.
#include <charconv>

#include "app/handlers_common.h"

namespace pgs::app {
namespace json = boost::json;

namespace {

constexpr std::string_view kFlowColumns =
    "id, workspace_id, name, description, visibility, created_by, version, created_at, updated_at";

// A page cursor "<updated_at in µs since the epoch>_<id>"; opaque to clients.
struct Cursor {
  std::int64_t micros = 0;
  std::int64_t id = 0;
};

std::optional<Cursor> parse_cursor(std::string_view text) {
  const auto sep = text.find('_');
  if (sep == std::string_view::npos) return std::nullopt;
  Cursor c;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + sep, c.micros);
  const auto id = parse_id(text.substr(sep + 1));
  if (ec != std::errc() || end != text.data() + sep || !id) return std::nullopt;
  c.id = *id;
  return c;
}

std::optional<Invalid> check_visibility(const std::optional<std::string>& v) {
  if (v && *v != "private" && *v != "public") return Invalid("visibility must be \"private\" or \"public\"");
  return std::nullopt;
}

Response list_flows(Services& s, Request& req) {
  auto ws = path_id(req, 0);
  if (!ws) return ws.error();
  auto limit = parse_limit(req.query, 20, 100);
  if (!limit) return bad_request(limit.error());
  std::optional<Cursor> cursor;
  if (auto it = req.query.find("before"); it != req.query.end()) {
    cursor = parse_cursor(it->second);
    if (!cursor) return bad_request("invalid before cursor");
  }
  std::optional<std::string> visibility;
  if (auto it = req.query.find("visibility"); it != req.query.end()) visibility = it->second;
  if (auto bad = check_visibility(visibility)) return bad_request(*bad);
  auto role = workspace_role(s.db, *ws, req.user->id);
  if (!role) return role.error();
  auto rows = read(s.db,
                   "SELECT " + std::string(kFlowColumns) +
                       ", (extract(epoch FROM updated_at) * 1000000)::bigint AS cursor_us FROM canvas.flows "
                       "WHERE workspace_id = $1 AND ($2::text IS NULL OR visibility = $2) AND ($3::bigint IS NULL "
                       "OR (updated_at, id) < ('epoch'::timestamptz + $3 * interval '1 microsecond', $4)) "
                       "ORDER BY updated_at DESC, id DESC LIMIT $5",
                   {param(*ws), visibility, cursor ? param(cursor->micros) : Param(),
                    cursor ? param(cursor->id) : Param(), param(*limit)});
  if (!rows) return rows.error();
  json::array flows;
  json::value next = nullptr;
  for (int r = 0; r < rows->size(); ++r) {
    json::object f = rows->row_json(r);
    f.erase("cursor_us");
    flows.emplace_back(std::move(f));
  }
  if (rows->size() == *limit) {
    const int last = rows->size() - 1;
    next = json::string(std::string(rows->text(last, 9)) + "_" + std::string(rows->text(last, 0)));
  }
  return json_response(200, json::object{{"flows", std::move(flows)}, {"next_before", next}});
}

Response create_flow(Services& s, Request& req) {
  auto ws = path_id(req, 0);
  if (!ws) return ws.error();
  auto body = parse_object(req.body);
  if (!body) return bad_request(body.error());
  if (auto bad = check_keys(*body, {"name", "description", "visibility"})) return bad_request(*bad);
  auto name = opt_string(*body, "name", 1, 200);
  auto description = opt_string(*body, "description", 0, 4000);
  auto visibility = opt_string(*body, "visibility", 1, 16);
  if (!name || !description || !visibility) {
    return bad_request(!name ? name.error() : !description ? description.error() : visibility.error());
  }
  if (!*name) return bad_request("name is required");
  if (auto bad = check_visibility(*visibility)) return bad_request(*bad);
  auto role = workspace_role(s.db, *ws, req.user->id);
  if (!role) return role.error();
  if (!can_edit(*role)) return forbidden();
  auto lease = s.db.acquire();
  if (!lease) return db_error_response(lease.error());
  PgConn& c = **lease;
  if (auto b = run(c, "BEGIN"); !b) return b.error();
  auto flow = run(c,
                  "INSERT INTO canvas.flows (workspace_id, name, description, visibility, created_by) "
                  "VALUES ($1, $2, coalesce($3, ''), coalesce($4, 'private'), $5) RETURNING " +
                      std::string(kFlowColumns),
                  {param(*ws), *name, *description, *visibility, param(req.user->id)});
  if (!flow) return flow.error();
  auto log = run(c,
                 "INSERT INTO canvas.flow_activity_logs (flow_id, workspace_id, user_id, action, detail) "
                 "VALUES ($1, $2, $3, 'created', jsonb_build_object('name', $4::text))",
                 {param(flow->int64(0, 0)), param(*ws), param(req.user->id), *name});
  if (!log) return log.error();
  if (auto e = run(c, "COMMIT"); !e) return e.error();
  Response r = json_response(201, flow->row_json(0));
  r.headers.emplace_back("Location", "/api/v1/flows/" + std::string(flow->text(0, 0)));
  return r;
}

Response get_flow(Services& s, Request& req) {
  auto id = path_id(req, 0);
  if (!id) return id.error();
  auto flow = read(s.db,
                   "SELECT f.id, f.workspace_id, f.name, f.description, f.visibility, f.created_by, f.version, "
                   "f.created_at, f.updated_at, m.role FROM canvas.flows f LEFT JOIN core.workspace_members m "
                   "ON m.workspace_id = f.workspace_id AND m.user_id = $2 WHERE f.id = $1",
                   {param(*id), param(req.user->id)});
  if (!flow) return flow.error();
  if (flow->empty()) return error_response(404, "not_found", "no such flow");
  if (flow->is_null(0, 9)) return forbidden();
  auto pods = read(s.db,
                   "SELECT id, name, kind, model, config, position_x, position_y, created_at, updated_at "
                   "FROM canvas.pods WHERE flow_id = $1 ORDER BY id",
                   {param(*id)});
  if (!pods) return pods.error();
  json::object out = flow->row_json(0);
  out.erase("role");
  out["pods"] = pods->all_json();
  return json_response(200, out);
}

Response patch_flow(Services& s, Request& req) {
  auto id = path_id(req, 0);
  if (!id) return id.error();
  auto body = parse_object(req.body);
  if (!body) return bad_request(body.error());
  if (auto bad = check_keys(*body, {"name", "description", "visibility", "version"})) return bad_request(*bad);
  if (body->empty()) return bad_request("nothing to update");
  auto name = opt_string(*body, "name", 1, 200);
  auto description = opt_string(*body, "description", 0, 4000);
  auto visibility = opt_string(*body, "visibility", 1, 16);
  auto version = opt_int(*body, "version", 1, INT32_MAX);
  if (!name || !description || !visibility || !version) {
    return bad_request(!name ? name.error()
                       : !description ? description.error()
                       : !visibility ? visibility.error() : version.error());
  }
  if (auto bad = check_visibility(*visibility)) return bad_request(*bad);
  auto lease = s.db.acquire();
  if (!lease) return db_error_response(lease.error());
  PgConn& c = **lease;
  if (auto b = run(c, "BEGIN"); !b) return b.error();
  auto access = flow_access(c, *id, req.user->id, true);
  if (!access) return access.error();
  if (!can_edit(access->role)) return forbidden();
  auto flow = run(c,
                  "UPDATE canvas.flows SET name = coalesce($2, name), description = coalesce($3, description), "
                  "visibility = coalesce($4, visibility), version = version + 1, updated_at = now() "
                  "WHERE id = $1 AND ($5::int IS NULL OR version = $5) RETURNING " + std::string(kFlowColumns),
                  {param(*id), *name, *description, *visibility,
                   *version ? param(**version) : Param()});
  if (!flow) return flow.error();
  if (flow->empty()) return error_response(409, "version_conflict", "the flow was changed by someone else");
  auto log = run(c,
                 "INSERT INTO canvas.flow_activity_logs (flow_id, workspace_id, user_id, action, detail) "
                 "VALUES ($1, $2, $3, 'updated', $4::jsonb)",
                 {param(*id), param(access->workspace_id), param(req.user->id), json::serialize(*body)});
  if (!log) return log.error();
  if (auto e = run(c, "COMMIT"); !e) return e.error();
  return json_response(200, flow->row_json(0));
}

}  // namespace

void add_flow_routes(Router& router, Services& s) {
  router.add("GET", "/api/v1/workspaces/{id}/flows", [&s](Request& r) { return list_flows(s, r); });
  router.add("POST", "/api/v1/workspaces/{id}/flows", [&s](Request& r) { return create_flow(s, r); });
  router.add("GET", "/api/v1/flows/{id}", [&s](Request& r) { return get_flow(s, r); });
  router.add("PATCH", "/api/v1/flows/{id}", [&s](Request& r) { return patch_flow(s, r); });
}

}  // namespace pgs::app
