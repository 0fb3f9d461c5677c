#include "app/http_probe.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace pgs::app {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

Outcome<ProbeResult, std::string> http_get(const std::string& url, std::chrono::milliseconds timeout) {
  constexpr std::string_view kScheme = "http://";
  if (!url.starts_with(kScheme)) return std::string("only http:// URLs are supported");
  const std::string rest = url.substr(kScheme.size());
  const auto slash = rest.find('/');
  const std::string hostport = rest.substr(0, slash);
  const std::string target = slash == std::string::npos ? "/" : rest.substr(slash);
  const auto colon = hostport.rfind(':');
  const std::string host = hostport.substr(0, colon);
  const std::string port = colon == std::string::npos ? "80" : hostport.substr(colon + 1);

  boost::asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(host, port, ec);
  if (ec) return "resolve: " + ec.message();
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, hostport);
  req.set(http::field::user_agent, "flopods-api health");
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(4096);
  ProbeResult result;
  // Asynchronous operations so that tcp_stream's deadline bounds the whole exchange.
  stream.expires_after(timeout);
  stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) {
    if (e) { ec = e; return; }
    http::async_write(stream, req, [&](beast::error_code e2, std::size_t) {
      if (e2) { ec = e2; return; }
      http::async_read(stream, buffer, parser, [&](beast::error_code e3, std::size_t) { ec = e3; });
    });
  });
  ioc.run();
  if (ec) return "GET " + url + ": " + ec.message();
  result.status = static_cast<int>(parser.get().result_int());
  result.body = parser.get().body().substr(0, 4096);
  return result;
}

}  // namespace pgs::app
