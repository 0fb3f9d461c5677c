// Our server side of authentication and our backend writers, spoken to by the real libpq client:
// a one-connection fake server on loopback plays the proxy's part of the login and one query.
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <string>

#include "protocol/auth.h"
#include "protocol/frontend.h"
#include "protocol/writer.h"
#include "tests/protocol/test_util.h"
#include "tests/protocol/wire_conn.h"

namespace pgs::protocol {
namespace {

using test::OwnedFrame;
using test::WireConn;

enum class Method { scram, md5 };

struct ServerOutcome {
  bool authenticated = false;
  std::string user;
  std::string query;  // the SQL of the Query message received, if any
  int encryption_requests = 0;
};

class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 1);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~Listener() { ::close(fd_); }
  uint16_t port() const { return port_; }
  // Accepts one connection within 10 s, or returns -1.
  int accept_one() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) return -1;
    return ::accept(fd_, nullptr, nullptr);
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

constexpr std::string_view kPassword = "tr0ub4dor&3";

bool authenticate(WireConn& c, Method method, const std::string& user) {
  std::string out;
  if (method == Method::md5) {
    const uint8_t salt[4] = {0x9a, 0x01, 0x00, 0x7f};
    write_auth_md5(out, salt);
    c.send(out);
    auto f = c.read_frame();
    if (!f || f->type != 'p') return false;
    auto pw = frontend::PasswordMessage::decode(f->bytes());
    return pw.ok() && md5_verify(md5_stored_hash(user, kPassword).value(), salt, pw->password);
  }
  write_auth_sasl(out, {"SCRAM-SHA-256"});
  c.send(out);
  auto first = c.read_frame();
  if (!first || first->type != 'p') return false;
  auto init = frontend::SaslInitialResponse::decode(first->bytes());
  if (!init.ok() || init->mechanism != "SCRAM-SHA-256") return false;
  scram::ServerExchange ex(scram::Verifier::from_password(kPassword, "pgs-salt-16bytes", 4096),
                           scram::random_nonce());
  auto server_first = ex.on_client_first(init->data);
  if (!server_first.ok()) return false;
  out.clear();
  write_auth_sasl_continue(out, *server_first);
  c.send(out);
  auto fin = c.read_frame();
  if (!fin || fin->type != 'p') return false;
  auto server_final = ex.on_client_final(frontend::SaslResponse::decode(fin->bytes())->data);
  if (!server_final.ok()) return false;
  out.clear();
  write_auth_sasl_final(out, *server_final);
  c.send(out);
  return true;
}

void answer_one_query(WireConn& c, ServerOutcome& outcome) {
  auto q = c.read_frame();
  if (!q || q->type != 'Q') return;
  outcome.query = std::string(frontend::Query::decode(q->bytes())->sql);
  std::string out;
  write_row_description(out, {{"greeting"}, {"missing"}});
  write_data_row(out, {std::string_view("hello"), std::nullopt});
  write_command_complete(out, "SELECT 1");
  write_ready_for_query(out, 'I');
  c.send(out);
}

ServerOutcome serve_one(Listener& l, Method method) {
  ServerOutcome outcome;
  int fd = l.accept_one();
  if (fd < 0) return outcome;
  WireConn c(fd);
  auto startup = c.read_startup();
  // sslmode=prefer opens with SSLRequest: refuse with 'N', then the StartupMessage follows.
  while (startup && (startup->first == kSslRequestCode || startup->first == kGssEncRequestCode)) {
    ++outcome.encryption_requests;
    std::string refusal;
    write_encryption_refused(refusal);
    c.send(refusal);
    startup = c.read_startup();
  }
  if (!startup) return outcome;
  std::string body = startup->second;
  StartupFrame sf{startup->first, test::bytes_of(body), body.size() + 8};
  auto s = frontend::Startup::decode(sf);
  if (!s.ok()) return outcome;
  outcome.user = std::string(s->get("user"));
  std::string out;
  if (!authenticate(c, method, outcome.user)) {
    write_error(out, {.severity = "FATAL", .sqlstate = "28P01",
                      .message = "password authentication failed for user \"" + outcome.user + "\""});
    c.send(out);
    return outcome;
  }
  outcome.authenticated = true;
  write_auth_ok(out);
  write_parameter_status(out, "server_version", "15.0");
  write_parameter_status(out, "client_encoding", "UTF8");
  write_parameter_status(out, "standard_conforming_strings", "on");
  write_backend_key_data(out, 1234, 5678);
  write_ready_for_query(out, 'I');
  c.send(out);
  answer_one_query(c, outcome);
  return outcome;
}

struct ClientResult {
  bool connected = false;
  std::string error;
  std::string value;
};

ClientResult run_client(uint16_t port, std::string_view password, std::string_view sslmode = "disable") {
  std::string conninfo = "host=127.0.0.1 port=" + std::to_string(port) +
                         " user=alice dbname=db gssencmode=disable connect_timeout=10 sslmode=" +
                         std::string(sslmode) + " password=" + std::string(password);
  ClientResult r;
  PGconn* conn = PQconnectdb(conninfo.c_str());
  r.connected = PQstatus(conn) == CONNECTION_OK;
  r.error = PQerrorMessage(conn);
  if (r.connected) {
    PGresult* res = PQexec(conn, "select 'hello'");
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQgetisnull(res, 0, 1)) {
      r.value = PQgetvalue(res, 0, 0);
    }
    PQclear(res);
  }
  PQfinish(conn);
  return r;
}

class LibpqClient : public ::testing::TestWithParam<Method> {};

TEST_P(LibpqClient, RightPasswordLogsInAndReadsOurRows) {
  Listener l;
  auto server = std::async(std::launch::async, [&] { return serve_one(l, GetParam()); });
  ClientResult client = run_client(l.port(), kPassword);
  ServerOutcome outcome = server.get();
  EXPECT_TRUE(client.connected) << client.error;
  EXPECT_TRUE(outcome.authenticated);
  EXPECT_EQ(outcome.user, "alice");
  EXPECT_EQ(outcome.query, "select 'hello'");
  EXPECT_EQ(client.value, "hello");
}

TEST_P(LibpqClient, WrongPasswordGets28P01) {
  Listener l;
  auto server = std::async(std::launch::async, [&] { return serve_one(l, GetParam()); });
  ClientResult client = run_client(l.port(), "guess");
  ServerOutcome outcome = server.get();
  EXPECT_FALSE(client.connected);
  EXPECT_FALSE(outcome.authenticated);
  EXPECT_NE(client.error.find("password authentication failed for user \"alice\""), std::string::npos)
      << client.error;
}

TEST_P(LibpqClient, SslRequestRefusedThenPlainLogin) {
  Listener l;
  auto server = std::async(std::launch::async, [&] { return serve_one(l, GetParam()); });
  ClientResult client = run_client(l.port(), kPassword, "prefer");
  ServerOutcome outcome = server.get();
  EXPECT_TRUE(client.connected) << client.error;
  EXPECT_EQ(outcome.encryption_requests, 1);
  EXPECT_EQ(client.value, "hello");
}

INSTANTIATE_TEST_SUITE_P(Methods, LibpqClient, ::testing::Values(Method::scram, Method::md5),
                         [](const auto& info) { return info.param == Method::scram ? "scram" : "md5"; });

}  // namespace
}  // namespace pgs::protocol
