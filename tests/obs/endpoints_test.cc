// The handler bodies wired into a real HttpServer, as the proxy wires them: worker digest tables
// publish into the hub, /metrics serves the exposition of a MetricData (as proxy/admin's exporter
// does), and a client reads /metrics, /digests and /readyz over loopback.
#include "proxy/obs/endpoints.h"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <thread>

#include "tests/obs/metric_data_fill.h"

namespace pgs::obs {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

http::response<http::string_body> get(uint16_t port, const std::string& target) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  stream.expires_after(std::chrono::seconds(5));
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  http::write(stream, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(stream, buf, res);
  return res;
}

TEST(Endpoints, ReadinessFollowsThePrimaryAndDraining) {
  Readiness r;
  r.primary_reachable = true;
  r.redis = "down";
  r.replicas = {{"replica1", true, 4096, 0.5}, {"replica2", false, -1, -1}};
  HttpResponse res = readiness_response(r);
  EXPECT_EQ(res.status, 200u) << "Redis down and a sick replica keep the proxy ready";
  const auto v = boost::json::parse(res.body).as_object();
  EXPECT_TRUE(v.at("ready").as_bool());
  EXPECT_EQ(v.at("primary").as_string(), "up");
  EXPECT_EQ(v.at("redis").as_string(), "down");
  const auto& reps = v.at("replicas").as_array();
  ASSERT_EQ(reps.size(), 2u);
  EXPECT_EQ(reps[0].at("lag_bytes").to_number<int64_t>(), 4096);
  EXPECT_TRUE(reps[1].at("lag_seconds").is_null());
  EXPECT_FALSE(reps[1].at("healthy").as_bool());
  r.draining = true;
  EXPECT_EQ(readiness_response(r).status, 503u);
  r.draining = false;
  r.primary_reachable = false;
  res = readiness_response(r);
  EXPECT_EQ(res.status, 503u);
  EXPECT_EQ(boost::json::parse(res.body).at("primary").as_string(), "down");
}

TEST(Endpoints, HandlersOverHttp) {
  MetricDataFill metrics;
  metrics.counter(MetricId::queries_total, {"primary"}, 1000);
  for (int i = 0; i < 1000; ++i) {
    metrics.observe(MetricId::query_duration_seconds, {"primary"}, (200 + i % 500) / 1e6);
  }
  metrics.gauge(MetricId::uptime_seconds, {}, 12.5);
  DigestHub digests(DigestOptions{.capacity = 100});
  std::vector<std::thread> workers;
  for (int w = 0; w < 2; ++w) {
    workers.emplace_back([&] {
      DigestTable table(DigestOptions{.capacity = 100});
      for (int i = 0; i < 500; ++i) {
        table.record(0xfeed, "SELECT $1", std::chrono::microseconds(200 + i), 1, false, false);
      }
      digests.publish(table);
    });
  }
  for (auto& t : workers) t.join();

  HttpHandlers h;
  h.metrics = [&](std::string_view) {
    return HttpResponse{200, std::string(kPrometheusContentType), metrics.render()};
  };
  h.digests = [&](std::string_view q) { return digests_response(digests, q); };
  h.readyz = [](std::string_view) { return readiness_response(Readiness{.primary_reachable = true}); };
  HttpServer server(HttpOptions{.port = 0}, std::move(h));
  ASSERT_EQ(server.start(), "");

  auto res = get(server.port(), "/metrics");
  ASSERT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res[http::field::content_type], kPrometheusContentType);
  EXPECT_NE(res.body().find("pgsidecar_queries_total{target=\"primary\"} 1000\n"), std::string::npos);
  EXPECT_NE(res.body().find("pgsidecar_query_duration_seconds_count{target=\"primary\"} 1000\n"),
            std::string::npos);
  EXPECT_NE(res.body().find("# TYPE pgsidecar_uptime_seconds gauge\npgsidecar_uptime_seconds 12.5\n"),
            std::string::npos);

  res = get(server.port(), "/digests?limit=1");
  ASSERT_EQ(res.result_int(), 200u);
  const auto d = boost::json::parse(res.body()).as_object();
  const auto& list = d.at("digests").as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].at("fingerprint").as_string(), "000000000000feed");
  EXPECT_EQ(list[0].at("calls").to_number<uint64_t>(), 1000u);

  res = get(server.port(), "/readyz");
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_TRUE(boost::json::parse(res.body()).at("ready").as_bool());
}

}  // namespace
}  // namespace pgs::obs
