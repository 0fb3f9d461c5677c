// Notifications: GET /api/v1/notifications?unread=true&limit=, POST /api/v1/notifications/{id}/read.
#include "app/handlers_common.h"

namespace pgs::app {
namespace json = boost::json;

namespace {

constexpr std::string_view kColumns = "id, kind, title, payload, created_at, read_at";

Response list_notifications(Services& s, Request& req) {
  auto limit = parse_limit(req.query, 50, 200);
  if (!limit) return bad_request(limit.error());
  bool unread = false;
  if (auto it = req.query.find("unread"); it != req.query.end()) {
    if (it->second == "true" || it->second == "1") {
      unread = true;
    } else if (it->second != "false" && it->second != "0") {
      return bad_request("unread must be true or false");
    }
  }
  // Two texts rather than "$2 OR read_at IS NULL", so the unread one can use the partial index.
  const std::string sql = "SELECT " + std::string(kColumns) + " FROM core.notifications WHERE user_id = $1" +
                          (unread ? " AND read_at IS NULL" : "") + " ORDER BY created_at DESC, id DESC LIMIT $2";
  auto rows = read(s.db, sql, {param(req.user->id), param(*limit)});
  if (!rows) return rows.error();
  return json_response(200, json::object{{"notifications", rows->all_json()}});
}

Response mark_read(Services& s, Request& req) {
  auto id = path_id(req, 0);
  if (!id) return id.error();
  auto lease = s.db.acquire();
  if (!lease) return db_error_response(lease.error());
  auto rows = run(**lease,
                  "UPDATE core.notifications SET read_at = coalesce(read_at, now()) WHERE id = $1 AND user_id = $2 "
                  "RETURNING " + std::string(kColumns),
                  {param(*id), param(req.user->id)});
  if (!rows) return rows.error();
  if (!rows->empty()) return json_response(200, rows->row_json(0));
  auto exists = run(**lease, "SELECT 1 FROM core.notifications WHERE id = $1", {param(*id)});
  if (!exists) return exists.error();
  return exists->empty() ? error_response(404, "not_found", "no such notification") : forbidden();
}

}  // namespace

void add_notification_routes(Router& router, Services& s) {
  router.add("GET", "/api/v1/notifications", [&s](Request& r) { return list_notifications(s, r); });
  router.add("POST", "/api/v1/notifications/{id}/read", [&s](Request& r) { return mark_read(s, r); });
}

}  // namespace pgs::app
