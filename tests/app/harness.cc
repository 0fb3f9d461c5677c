#include "tests/app/harness.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fstream>
#include <sstream>
#include <thread>

namespace pgs::app::test {

namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = boost::asio::ip::tcp;

std::string db_conninfo() {
  const char* env = std::getenv("FLOPODS_TEST_DB");
  return env != nullptr ? env : "host=127.0.0.1 port=15432 dbname=flopods user=flopods password=flopods-dev";
}

std::string redis_address() {
  const char* env = std::getenv("FLOPODS_TEST_REDIS");
  return env != nullptr ? env : "127.0.0.1:16379";
}

std::string api_binary() { return FLOPODS_API_BIN; }

bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // poll interval, not a guess at timing
  }
}

unsigned short free_port() {
  boost::asio::io_context ioc;
  tcp::acceptor a(ioc, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

namespace {
std::string temp_path(const std::string& name) {
  static int counter = 0;
  return "/tmp/flopods-test-" + std::to_string(getpid()) + "-" + std::to_string(++counter) + "-" + name + ".log";
}

pid_t spawn(const std::string& program, const std::vector<std::string>& args, const std::string& out_path) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  const int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(fd, 1);
  dup2(fd, 2);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execvp(program.c_str(), argv.data());
  _exit(127);
}
}  // namespace

Process::Process(const std::string& program, const std::vector<std::string>& args, const std::string& name)
    : out_path_(temp_path(name)) {
  pid_ = spawn(program, args, out_path_);
}

Process::~Process() {
  stop();
  unlink(out_path_.c_str());
}

bool Process::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    status_ = status;
    pid_ = -1;
    return false;
  }
  return true;
}

int Process::stop(std::chrono::milliseconds grace) {
  if (!running()) return status_;
  kill(pid_, SIGTERM);
  if (!wait_for([this] { return !running(); }, grace)) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
    pid_ = -1;
  }
  return status_;
}

std::string Process::output() const {
  std::ifstream in(out_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int run_to_end(const std::string& program, const std::vector<std::string>& args, std::string* output,
               std::chrono::milliseconds timeout) {
  Process p(program, args, "run");
  if (!wait_for([&p] { return !p.running(); }, timeout)) {
    p.stop();
    return -1;
  }
  if (output != nullptr) *output = p.output();
  const int status = p.stop();
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
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
  const bool up = wait_for(
      [&] {
        if (conn_ != nullptr) PQfinish(conn_);
        conn_ = PQconnectdb(ci.c_str());
        return PQstatus(conn_) == CONNECTION_OK;
      },
      std::chrono::seconds(60));
  if (!up) ADD_FAILURE() << "cannot connect to " << ci << ": " << PQerrorMessage(conn_);
  PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);
}

Db::~Db() { PQfinish(conn_); }

std::vector<std::vector<std::string>> Db::q(const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p.c_str());
  PGresult* res = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                               nullptr, 0);
  std::vector<std::vector<std::string>> rows;
  const auto st = PQresultStatus(res);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    ADD_FAILURE() << "SQL failed: " << sql << "\n" << PQresultErrorMessage(res);
  } else {
    for (int r = 0; r < PQntuples(res); ++r) {
      rows.emplace_back();
      for (int c = 0; c < PQnfields(res); ++c) rows.back().emplace_back(PQgetvalue(res, r, c));
    }
  }
  PQclear(res);
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
