#include "tests/app/harness.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "tests/support/dev_env.h"
#include "tests/support/wait.h"

namespace pgs::app::test {

namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = boost::asio::ip::tcp;

namespace support = ::pgs::test;

std::string db_conninfo() {
  const char* env = std::getenv("FLOPODS_TEST_DB");
  return env != nullptr ? env
                        : "host=" + std::string(support::kHost) + " port=" + std::to_string(support::kPrimaryPort) +
                              " dbname=" + support::kDatabase + " user=" + support::kUser +
                              " password=" + support::kPassword;
}

std::string redis_address() {
  const char* env = std::getenv("FLOPODS_TEST_REDIS");
  return env != nullptr ? env : std::string(support::kHost) + ":" + std::to_string(support::kRedisPort);
}

std::string api_binary() { return FLOPODS_API_BIN; }

bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  return support::wait_until(cond, timeout);
}

namespace {
std::string temp_path(const std::string& name) {
  static int counter = 0;
  return "/tmp/flopods-test-" + std::to_string(getpid()) + "-" + std::to_string(++counter) + "-" + name + ".log";
}
}  // namespace

Process::Process(const std::string& program, const std::vector<std::string>& args, const std::string& name)
    : out_path_(temp_path(name)) {
  std::vector<std::string> argv{program};
  argv.insert(argv.end(), args.begin(), args.end());
  child_ = support::Child::spawn(argv, {}, out_path_);
}

Process::~Process() {
  stop();
  unlink(out_path_.c_str());
}

int Process::stop(std::chrono::milliseconds grace) {
  child_.stop(grace);
  return child_.exit_code().value_or(-1);
}

std::string Process::output() const { return support::read_file_tail(out_path_); }

int run_to_end(const std::string& program, const std::vector<std::string>& args, std::string* output,
               std::chrono::milliseconds timeout) {
  std::vector<std::string> argv{program};
  argv.insert(argv.end(), args.begin(), args.end());
  support::RunResult r = support::run_program(argv, {}, timeout);
  if (output != nullptr) *output = r.out + r.err;
  if (r.timed_out) return -1;
  return r.exit_code < 128 ? r.exit_code : -1;
}

ApiServer::ApiServer(std::vector<std::string> extra_args, std::string db, std::string redis) {
  std::vector<std::string> args{"serve", "--listen", "127.0.0.1:0", "--db", db, "--redis", redis};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  proc_ = std::make_unique<Process>(api_binary(), args, "api");
  const std::string marker = "listening on http://127.0.0.1:";
  std::string out;
  const bool up = wait_for(
      [&] {
        out = proc_->output();
        return out.find(marker) != std::string::npos || !proc_->running();
      },
      std::chrono::seconds(20));
  const auto at = out.find(marker);
  if (!up || at == std::string::npos) {
    ADD_FAILURE() << "flopods-api did not start:\n" << out;
    return;
  }
  port_ = static_cast<unsigned short>(std::stoi(out.substr(at + marker.size())));
}

std::string HttpResult::header(const std::string& name) const {
  const auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

HttpResult http(unsigned short port, const std::string& method, const std::string& target, const std::string& token,
                const std::string& body, const std::map<std::string, std::string>& headers) {
  HttpResult out;
  boost::asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  stream.expires_after(std::chrono::seconds(10));
  stream.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) {
    out.error = "connect: " + ec.message();
    return out;
  }
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
  req.set(bhttp::field::host, "127.0.0.1");
  if (!token.empty()) req.set(bhttp::field::authorization, "Bearer " + token);
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty()) {
    req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  bhttp::write(stream, req, ec);
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(16 << 20);
  if (!ec) bhttp::read(stream, buffer, parser, ec);
  if (ec) {
    out.error = "exchange: " + ec.message();
    return out;
  }
  const auto& res = parser.get();
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(field.value());
  }
  out.body = res.body();
  boost::system::error_code jec;
  out.json = boost::json::parse(out.body, jec);
  if (jec) out.json = nullptr;
  return out;
}

Db::Db() {
  const std::string ci = db_conninfo();
  pg_.emplace(support::connect_within(ci, std::chrono::seconds(60), std::chrono::milliseconds(20)));
  if (!pg_->ok()) ADD_FAILURE() << "cannot connect to " << ci << ": " << pg_->error();
  PQsetNoticeProcessor(pg_->get(), [](void*, const char*) {}, nullptr);
}

std::vector<std::vector<std::string>> Db::q(const std::string& sql, const std::vector<std::string>& params) {
  support::PgResult res = pg_->exec_params(sql, params);
  std::vector<std::vector<std::string>> rows;
  const auto st = res.status();
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    ADD_FAILURE() << "SQL failed: " << sql << "\n" << res.error();
  } else {
    for (int r = 0; r < res.rows(); ++r) {
      rows.emplace_back();
      for (int c = 0; c < PQnfields(res.get()); ++c) rows.back().emplace_back(res.value(r, c));
    }
  }
  return rows;
}

std::string Db::one(const std::string& sql, const std::vector<std::string>& params) {
  auto rows = q(sql, params);
  return rows.empty() || rows[0].empty() ? "" : rows[0][0];
}

std::string Db::one_eventually(const std::string& sql, const std::vector<std::string>& params) {
  std::string value;
  wait_for([&] { return !(value = one(sql, params)).empty(); }, std::chrono::seconds(10));
  return value;
}

TestUser make_user(Db& db, const std::string& tag) {
  unsigned char bytes[20];
  RAND_bytes(bytes, sizeof bytes);
  std::string token = "fp_";
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char b : bytes) {
    token.push_back(kHex[b >> 4]);
    token.push_back(kHex[b & 0xf]);
  }
  TestUser u;
  u.email = tag + "-" + std::to_string(getpid()) + "-" + token.substr(3, 8) + "@test.flopods.dev";
  u.token = token;
  u.id = db.one("INSERT INTO core.users (email, name) VALUES ($1, $2) RETURNING id", {u.email, "Test " + tag});
  db.q("INSERT INTO core.api_tokens (user_id, token_hash, label) VALUES ($1, sha256(convert_to($2, 'UTF8')), 'test')",
       {u.id, token});
  return u;
}

}  // namespace pgs::app::test
