// Documents: GET /api/v1/workspaces/{id}/documents?limit=, GET /api/v1/documents/search?q=&limit=
// (full-text search over name and description, across the caller's workspaces only).
#include "app/handlers_common.h"

namespace pgs::app {
namespace json = boost::json;

namespace {

Response list_documents(Services& s, Request& req) {
  auto ws = path_id(req, 0);
  if (!ws) return ws.error();
  auto limit = parse_limit(req.query, 50, 200);
  if (!limit) return bad_request(limit.error());
  auto role = workspace_role(s.db, *ws, req.user->id);
  if (!role) return role.error();
  auto rows = read(s.db,
                   "SELECT id, workspace_id, name, description, mime_type, size_bytes, uploaded_by, created_at "
                   "FROM documents.documents WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
                   {param(*ws), param(*limit)});
  if (!rows) return rows.error();
  return json_response(200, json::object{{"documents", rows->all_json()}});
}

Response search_documents(Services& s, Request& req) {
  const auto q = req.query.find("q");
  if (q == req.query.end() || q->second.find_first_not_of(" \t") == std::string::npos) {
    return bad_request("q is required");
  }
  if (q->second.size() > 200) return bad_request("q must be at most 200 bytes");
  auto limit = parse_limit(req.query, 20, 100);
  if (!limit) return bad_request(limit.error());
  auto rows = read(s.db,
                   "SELECT d.id, d.workspace_id, d.name, d.description, d.mime_type, d.size_bytes, d.created_at, "
                   "round(ts_rank(d.search, q)::numeric, 4) AS rank "
                   "FROM documents.documents d, websearch_to_tsquery('english', $1) q "
                   "WHERE d.search @@ q AND d.workspace_id IN "
                   "(SELECT workspace_id FROM core.workspace_members WHERE user_id = $2) "
                   "ORDER BY rank DESC, d.id DESC LIMIT $3",
                   {q->second, param(req.user->id), param(*limit)});
  if (!rows) return rows.error();
  return json_response(200, json::object{{"documents", rows->all_json()}});
}

}  // namespace

void add_document_routes(Router& router, Services& s) {
  router.add("GET", "/api/v1/workspaces/{id}/documents", [&s](Request& r) { return list_documents(s, r); });
  router.add("GET", "/api/v1/documents/search", [&s](Request& r) { return search_documents(s, r); });
}

}  // namespace pgs::app
