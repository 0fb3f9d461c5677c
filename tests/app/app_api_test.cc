// Every endpoint of flopods-api over real HTTP on loopback, against the real database (directly or
// through pgsidecar, see FLOPODS_TEST_DB): happy paths and the errors (400, 401, 403, 404, 405,
// 409, 413).
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <set>

#include "tests/app/world.h"

namespace pgs::app::test {
namespace {

namespace json = boost::json;

class Api : public ::testing::Test {
 protected:
  World& w = World::get();
  unsigned short port() { return w.api->port(); }
  HttpResult get(const std::string& target, const std::string& token) { return http(port(), "GET", target, token); }
  HttpResult send(const std::string& method, const std::string& target, const std::string& token,
                  const std::string& body) {
    return http(port(), method, target, token, body);
  }
  static std::string error_code(const HttpResult& r) {
    return r.json.is_object() && r.json.as_object().contains("error") ? std::string(r.json.at("error").as_string())
                                                                      : "<" + r.body + ">";
  }
};

TEST_F(Api, HealthReportsEachDependency) {
  auto r = get("/api/v1/health", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json.at("status"), "ok");
  EXPECT_EQ(r.json.at("checks").at("database").at("ok"), true);
  EXPECT_EQ(r.json.at("checks").at("redis").at("ok"), true);
  EXPECT_EQ(r.header("content-type"), "application/json");
  auto live = get("/healthz", "");
  EXPECT_EQ(live.status, 200);
  EXPECT_EQ(live.json.at("status"), "ok");
}

TEST_F(Api, MissingOrInvalidTokenIs401) {
  auto none = get("/api/v1/me", "");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(error_code(none), "missing_token");
  EXPECT_NE(none.header("www-authenticate").find("Bearer"), std::string::npos);
  auto unknown = get("/api/v1/me", "fp_" + std::string(40, '0'));
  EXPECT_EQ(unknown.status, 401);
  EXPECT_EQ(error_code(unknown), "invalid_token");
  auto malformed = http(port(), "GET", "/api/v1/workspaces", "", "", {{"Authorization", "Basic dXNlcjpwdw=="}});
  EXPECT_EQ(malformed.status, 401);
  // Revoked elsewhere (another client): "eventually", since the app may read from a replica.
  w.db.q("UPDATE core.api_tokens SET revoked_at = now() WHERE user_id = $1", {w.carol.id});
  EXPECT_TRUE(wait_for([&] { return get("/api/v1/me", w.carol.token).status == 401; }, std::chrono::seconds(10)));
  w.db.q("UPDATE core.api_tokens SET revoked_at = NULL WHERE user_id = $1", {w.carol.id});
  EXPECT_TRUE(wait_for([&] { return get("/api/v1/me", w.carol.token).status == 200; }, std::chrono::seconds(10)));
}

TEST_F(Api, MeReturnsTheTokensUser) {
  auto r = get("/api/v1/me", w.alice.token);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json.at("email"), w.alice.email.c_str());
  EXPECT_EQ(r.json.at("workspaces"), 1);
  EXPECT_NE(r.header("ratelimit-limit"), "");
}

TEST_F(Api, WorkspacesListOnlyOwn) {
  auto r = get("/api/v1/workspaces", w.alice.token);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto& list = r.json.at("workspaces").as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(std::to_string(list[0].at("id").as_int64()), w.ws_alice);
  EXPECT_EQ(list[0].at("role"), "owner");
}

TEST_F(Api, WorkspaceGetAndErrors) {
  auto ok = get("/api/v1/workspaces/" + w.ws_alice, w.alice.token);
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.json.at("members"), 2);
  EXPECT_EQ(get("/api/v1/workspaces/" + w.ws_alice, w.carol.token).status, 200);
  EXPECT_EQ(get("/api/v1/workspaces/" + w.ws_bob, w.alice.token).status, 403);
  EXPECT_EQ(get("/api/v1/workspaces/9000000000000000000", w.alice.token).status, 404);
  for (const char* bad : {"abc", "0", "-1", "01", "1.5", "99999999999999999999", "%31x"}) {
    auto r = get(std::string("/api/v1/workspaces/") + bad, w.alice.token);
    EXPECT_EQ(r.status, 400) << bad << " " << r.body;
  }
}

TEST_F(Api, CreateFlowAndItsErrors) {
  const std::string path = "/api/v1/workspaces/" + w.ws_alice + "/flows";
  auto created = send("POST", path, w.alice.token, R"({"name":"Created by test","visibility":"public"})");
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.json.at("visibility"), "public");
  EXPECT_EQ(created.json.at("version"), 1);
  EXPECT_EQ(created.header("location"), "/api/v1/flows/" + std::to_string(created.json.at("id").as_int64()));
  EXPECT_EQ(send("POST", path, w.alice.token, R"({"name":"Created by test"})").status, 409);
  EXPECT_EQ(send("POST", path, w.alice.token, R"({"name":)").status, 400);
  EXPECT_EQ(send("POST", path, w.alice.token, R"([1,2])").status, 400);
  EXPECT_EQ(send("POST", path, w.alice.token, R"({"description":"no name"})").status, 400);
  EXPECT_EQ(send("POST", path, w.alice.token, R"({"name":"x","colour":"red"})").status, 400);
  EXPECT_EQ(send("POST", path, w.alice.token, R"({"name":"x","visibility":"secret"})").status, 400);
  EXPECT_EQ(send("POST", path, w.alice.token, R"({"name":42})").status, 400);
  EXPECT_EQ(send("POST", path, w.carol.token, R"({"name":"viewer may not"})").status, 403);
  EXPECT_EQ(send("POST", "/api/v1/workspaces/" + w.ws_bob + "/flows", w.alice.token, R"({"name":"x"})").status, 403);
  const std::string huge = R"({"name":"big","description":")" + std::string(2 << 20, 'a') + "\"}";
  EXPECT_EQ(send("POST", path, w.alice.token, huge).status, 413);
}

TEST_F(Api, FlowsKeysetPagination) {
  const std::string path = "/api/v1/workspaces/" + w.ws_alice + "/flows";
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(send("POST", path, w.alice.token, R"({"name":"Page )" + std::to_string(i) + "\"}").status, 201);
  }
  std::set<std::int64_t> seen;
  std::string before;
  std::string last_updated = "9999";
  for (int page = 0; page < 20; ++page) {
    auto r = get(path + "?limit=2" + (before.empty() ? "" : "&before=" + before), w.alice.token);
    ASSERT_EQ(r.status, 200) << r.body;
    for (const auto& f : r.json.at("flows").as_array()) {
      EXPECT_TRUE(seen.insert(f.at("id").as_int64()).second) << "flow listed twice";
      const std::string updated(f.at("updated_at").as_string());
      EXPECT_LE(updated, last_updated);
      last_updated = updated;
    }
    if (r.json.at("next_before").is_null()) break;
    before = std::string(r.json.at("next_before").as_string());
  }
  // Counted through the app's own connection would be circular; the test's client may lag a little.
  EXPECT_TRUE(wait_for([&] {
    return std::stoll(w.db.one("SELECT count(*) FROM canvas.flows WHERE workspace_id = $1", {w.ws_alice})) ==
           static_cast<long long>(seen.size());
  }, std::chrono::seconds(10))) << "pages listed " << seen.size() << " flows";
  auto priv = get(path + "?visibility=private&limit=100", w.alice.token);
  ASSERT_EQ(priv.status, 200);
  for (const auto& f : priv.json.at("flows").as_array()) EXPECT_EQ(f.at("visibility"), "private");
  for (const char* bad : {"?limit=0", "?limit=101", "?limit=x", "?before=nope", "?before=12_x", "?visibility=all"}) {
    EXPECT_EQ(get(path + bad, w.alice.token).status, 400) << bad;
  }
  EXPECT_EQ(get("/api/v1/workspaces/" + w.ws_bob + "/flows", w.alice.token).status, 403);
}

TEST_F(Api, FlowGetWithPods) {
  auto r = get("/api/v1/flows/" + w.flow_alice, w.alice.token);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json.at("name"), "Seed flow");
  ASSERT_EQ(r.json.at("pods").as_array().size(), 2u);
  EXPECT_EQ(r.json.at("pods").at(0).at("model"), "gpt-4o");
  EXPECT_EQ(get("/api/v1/flows/" + w.flow_bob, w.alice.token).status, 403);
  EXPECT_EQ(get("/api/v1/flows/8000000000000000000", w.alice.token).status, 404);
  EXPECT_EQ(get("/api/v1/flows/x1", w.alice.token).status, 400);
}

TEST_F(Api, PatchThenImmediateGetSeesTheChange) {
  const std::string path = "/api/v1/flows/" + w.flow_alice;
  for (int i = 0; i < 20; ++i) {
    const std::string desc = "revision " + std::to_string(i);
    auto p = send("PATCH", path, w.alice.token, R"({"description":")" + desc + "\"}");
    ASSERT_EQ(p.status, 200) << p.body;
    EXPECT_EQ(p.json.at("description"), desc.c_str());
    auto g = get(path, w.alice.token);
    ASSERT_EQ(g.status, 200);
    EXPECT_EQ(g.json.at("description"), desc.c_str()) << "stale read after PATCH, round " << i;
    EXPECT_EQ(g.json.at("version"), p.json.at("version"));
  }
  auto now = get(path, w.alice.token);
  const auto version = now.json.at("version").as_int64();
  EXPECT_EQ(send("PATCH", path, w.alice.token, R"({"name":"Renamed","version":)" + std::to_string(version - 1) + "}")
                .status, 409);
  auto ok = send("PATCH", path, w.alice.token, R"({"name":"Seed flow","version":)" + std::to_string(version) + "}");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(send("PATCH", path, w.alice.token, "{}").status, 400);
  EXPECT_EQ(send("PATCH", path, w.alice.token, "{oops").status, 400);
  EXPECT_EQ(send("PATCH", path, w.alice.token, R"({"visibility":"everyone"})").status, 400);
  EXPECT_EQ(send("PATCH", path, w.carol.token, R"({"name":"viewer"})").status, 403);
  EXPECT_EQ(send("PATCH", "/api/v1/flows/" + w.flow_bob, w.alice.token, R"({"name":"x"})").status, 403);
  EXPECT_EQ(send("PATCH", "/api/v1/flows/8000000000000000000", w.alice.token, R"({"name":"x"})").status, 404);
  EXPECT_TRUE(wait_for([&] {
    return std::stoi(w.db.one("SELECT count(*) FROM canvas.flow_activity_logs WHERE flow_id = $1 AND action = "
                              "'updated'", {w.flow_alice})) >= 21;
  }, std::chrono::seconds(10)));
}

std::string partition_for(int year, int month, const std::string& table) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%s_y%04dm%02d", table.c_str(), year, month);
  return buf;
}

TEST_F(Api, ExecutionsLandInTheirMonthlyPartition) {
  const std::string path = "/api/v1/flows/" + w.flow_alice + "/executions";
  auto r = send("POST", path, w.alice.token,
                R"({"pod_id":)" + w.pod_alice + R"(,"model":"gpt-4o","tokens_in":1000,"tokens_out":500,)"
                R"("duration_ms":1234,"input":{"q":"hi"},"output":{"a":"hello"}})");
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string id = std::to_string(r.json.at("id").as_int64());
  EXPECT_EQ(r.json.at("usage").at("cost_micro_usd"), 7500);  // 1000 * 2.5 + 500 * 10
  ASSERT_NE(w.db.one_eventually("SELECT 1 FROM canvas.pod_executions WHERE id = $1", {id}), "");
  const auto row = w.db.q("SELECT tableoid::regclass::text, extract(year FROM started_at AT TIME ZONE 'UTC')::int, "
                          "extract(month FROM started_at AT TIME ZONE 'UTC')::int FROM canvas.pod_executions "
                          "WHERE id = $1", {id});
  ASSERT_EQ(row.size(), 1u);
  const int year = std::stoi(row[0][1]), month = std::stoi(row[0][2]);
  EXPECT_EQ(row[0][0], partition_for(year, month, "canvas.pod_executions"));
  EXPECT_EQ(w.db.one_eventually("SELECT tableoid::regclass::text FROM billing.pod_usage_logs WHERE execution_id = $1",
                                {id}),
            partition_for(year, month, "billing.pod_usage_logs"));

  // A run recorded for the middle of next month goes to next month's partition.
  const int ny = month == 12 ? year + 1 : year, nm = month == 12 ? 1 : month + 1;
  char when[64];
  std::snprintf(when, sizeof when, "%04d-%02d-15T12:00:00Z", ny, nm);
  auto later = send("POST", path, w.alice.token, std::string(R"({"started_at":")") + when + "\"}");
  ASSERT_EQ(later.status, 201) << later.body;
  EXPECT_EQ(w.db.one_eventually("SELECT tableoid::regclass::text FROM canvas.pod_executions WHERE id = $1",
                     {std::to_string(later.json.at("id").as_int64())}),
            partition_for(ny, nm, "canvas.pod_executions"));

  auto list = get(path + "?limit=5", w.alice.token);
  ASSERT_EQ(list.status, 200) << list.body;
  bool found = false;
  for (const auto& e : list.json.at("executions").as_array()) {
    if (std::to_string(e.at("id").as_int64()) == id) {
      found = true;
      EXPECT_EQ(e.at("tokens_in"), 1000);
      EXPECT_EQ(e.at("model"), "gpt-4o");
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(send("POST", path, w.alice.token, R"({"started_at":"2199-01-01T00:00:00Z"})").status, 400);
  EXPECT_EQ(send("POST", path, w.alice.token, R"({"started_at":"yesterday-ish"})").status, 400);
  EXPECT_EQ(send("POST", path, w.alice.token, R"({"pod_id":)" + w.pod_bob + "}").status, 400);
  EXPECT_EQ(send("POST", path, w.alice.token, R"({"model":"gpt-17"})").status, 400);
  EXPECT_EQ(send("POST", path, w.alice.token, R"({"tokens_in":-1})").status, 400);
  EXPECT_EQ(send("POST", path, w.alice.token, R"({"tokens_in":)").status, 400);
  EXPECT_EQ(send("POST", "/api/v1/flows/" + w.flow_bob + "/executions", w.alice.token, "{}").status, 403);
  EXPECT_EQ(get("/api/v1/flows/" + w.flow_bob + "/executions", w.alice.token).status, 403);
  EXPECT_EQ(get(path + "?limit=1000", w.alice.token).status, 400);
}

TEST_F(Api, NotificationsUnreadAndMarkRead) {
  auto unread = get("/api/v1/notifications?unread=true", w.alice.token);
  ASSERT_EQ(unread.status, 200) << unread.body;
  ASSERT_EQ(unread.json.at("notifications").as_array().size(), 1u);
  EXPECT_EQ(get("/api/v1/notifications", w.alice.token).json.at("notifications").as_array().size(), 2u);
  auto marked = send("POST", "/api/v1/notifications/" + w.note_alice + "/read", w.alice.token, "");
  ASSERT_EQ(marked.status, 200) << marked.body;
  EXPECT_FALSE(marked.json.at("read_at").is_null());
  EXPECT_EQ(get("/api/v1/notifications?unread=true", w.alice.token).json.at("notifications").as_array().size(), 0u);
  EXPECT_EQ(send("POST", "/api/v1/notifications/" + w.note_alice + "/read", w.alice.token, "").status, 200);
  EXPECT_EQ(send("POST", "/api/v1/notifications/" + w.note_bob + "/read", w.alice.token, "").status, 403);
  EXPECT_EQ(send("POST", "/api/v1/notifications/8000000000000000000/read", w.alice.token, "").status, 404);
  EXPECT_EQ(send("POST", "/api/v1/notifications/zz/read", w.alice.token, "").status, 400);
  EXPECT_EQ(get("/api/v1/notifications?unread=maybe", w.alice.token).status, 400);
}

TEST_F(Api, DocumentsListAndSearchStayInsideOwnWorkspaces) {
  auto list = get("/api/v1/workspaces/" + w.ws_alice + "/documents", w.alice.token);
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(list.json.at("documents").as_array().size(), 1u);
  EXPECT_EQ(get("/api/v1/workspaces/" + w.ws_bob + "/documents", w.alice.token).status, 403);
  auto found = get("/api/v1/documents/search?q=" + w.word + "+reports", w.alice.token);
  ASSERT_EQ(found.status, 200) << found.body;
  const auto& docs = found.json.at("documents").as_array();
  ASSERT_EQ(docs.size(), 1u) << "bob's document must not be visible to alice";
  EXPECT_EQ(std::to_string(docs[0].at("workspace_id").as_int64()), w.ws_alice);
  EXPECT_EQ(get("/api/v1/documents/search", w.alice.token).status, 400);
  EXPECT_EQ(get("/api/v1/documents/search?q=%20", w.alice.token).status, 400);
  EXPECT_EQ(get("/api/v1/documents/search?q=%zz", w.alice.token).status, 400);
}

TEST_F(Api, UnknownPathsAndMethods) {
  EXPECT_EQ(get("/api/v1/nothing-here", w.alice.token).status, 404);
  auto r = send("DELETE", "/api/v1/flows/" + w.flow_alice, w.alice.token, "");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("allow"), "GET, PATCH");
}

TEST_F(Api, KeepAliveServesSeveralRequestsOnOneConnection) {
  namespace beast = boost::beast;
  namespace bhttp = beast::http;
  boost::asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.expires_after(std::chrono::seconds(10));
  stream.connect({boost::asio::ip::make_address("127.0.0.1"), port()});
  beast::flat_buffer buffer;
  for (int i = 0; i < 3; ++i) {
    bhttp::request<bhttp::empty_body> req{bhttp::verb::get, "/api/v1/me", 11};
    req.set(bhttp::field::host, "x");
    req.set(bhttp::field::authorization, "Bearer " + w.alice.token);
    bhttp::write(stream, req);
    bhttp::response<bhttp::string_body> res;
    bhttp::read(stream, buffer, res);
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_TRUE(res.keep_alive());
  }
}

}  // namespace
}  // namespace pgs::app::test
