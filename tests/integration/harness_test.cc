// Checks of the harness itself, against the dev primary directly (whatever PGS_IT_TARGET says):
// if these fail, the other integration suites cannot be trusted.
#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/support/raw_client.h"

namespace pgs::it {
namespace {

TEST(Process, CapturesOutputAndExitCode) {
  RunResult r = run_program({"sh", "-c", "cat; echo err >&2; exit 3"}, {}, Millis(5000), "hello");
  EXPECT_EQ(r.exit_code, 3) << r.describe();
  EXPECT_EQ(r.out, "hello");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_FALSE(r.timed_out);
}

TEST(Process, KillsAtTheDeadline) {
  auto start = std::chrono::steady_clock::now();
  RunResult r = run_program({"sleep", "30"}, {}, Millis(300));
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(Process, EnvironmentOverride) {
  RunResult r = run_program({"sh", "-c", "printf %s \"$PGS_X\""}, {{"PGS_X", "42"}}, Millis(5000));
  EXPECT_EQ(r.out, "42");
}

TEST(Process, ChildStopsOnSigterm) {
  Child c = Child::spawn({"sleep", "30"}, {}, "/dev/null");
  EXPECT_TRUE(c.running());
  c.stop(Millis(5000));
  ASSERT_TRUE(c.exit_code().has_value());
  EXPECT_EQ(*c.exit_code(), 128 + SIGTERM);
}

TEST(WaitUntil, TrueAndDeadline) {
  int n = 0;
  EXPECT_TRUE(wait_until([&] { return ++n == 3; }, Millis(2000), Millis(1)));
  EXPECT_FALSE(wait_until([] { return false; }, Millis(50), Millis(5)));
}

TEST(Config, RendersEveryParameter) {
  ProxyOptions o;
  o.pool_size = 7;
  o.auth_type = "md5";
  o.max_message_bytes = 12345;
  o.with_replica = true;
  o.users.push_back({"x\"y", "p", "sp", false});
  std::string t = render_config(o, 6000, 6001);
  for (const char* want : {"listen_port = 6000", "pool_size = 7", "auth_type = \"md5\"",
                           "max_message_bytes = 12345", "port = 15433", "name = \"x\\\"y\"",
                           "server_password = \"sp\"", "metrics_listen = \"127.0.0.1:6001\"",
                           "admin = true"}) {
    EXPECT_NE(t.find(want), std::string::npos) << want << " missing in\n" << t;
  }
}

TEST(ConnSpec, QuotesValues) {
  ConnSpec s;
  s.password = "a b'c";
  EXPECT_NE(s.str().find("password='a b\\'c'"), std::string::npos) << s.str();
  EXPECT_NE(s.str().find("sslmode='disable'"), std::string::npos);
}

class DirectPrimary : public ::testing::Test {
 protected:
  void SetUp() override { require_dev_services(); }
};

TEST_F(DirectPrimary, LibpqConnects) {
  Pg pg(ConnSpec{});
  ASSERT_TRUE(pg.ok()) << pg.error();
  EXPECT_EQ(pg.scalar("SELECT current_user"), "flopods");
}

TEST_F(DirectPrimary, RawScramLogin) {
  RawConn c(kHost, kPrimaryPort);
  LoginOutcome l = login(c, kUser, kPassword, kDatabase);
  ASSERT_TRUE(l.ok) << l.describe();
  EXPECT_EQ(l.auth_code, 10);
  EXPECT_EQ(l.parameters["server_encoding"], "UTF8");
  QueryOutcome q = simple_query(c, "SELECT 1; SELECT 2");
  EXPECT_EQ(q.status, 'I');
  EXPECT_FALSE(q.error);
}

TEST_F(DirectPrimary, RawWrongPasswordIs28P01) {
  RawConn c(kHost, kPrimaryPort);
  LoginOutcome l = login(c, kUser, "wrong", kDatabase);
  ASSERT_TRUE(l.error) << l.describe();
  EXPECT_EQ(l.error->sqlstate(), "28P01");
}

TEST_F(DirectPrimary, RawErrorResponseFields) {
  RawConn c(kHost, kPrimaryPort);
  ASSERT_TRUE(login(c, kUser, kPassword, kDatabase).ok);
  QueryOutcome q = simple_query(c, "SELECT 1/0");
  ASSERT_TRUE(q.error);
  EXPECT_EQ(q.error->sqlstate(), "22012");
  EXPECT_EQ(q.error->get('S'), "ERROR");
  EXPECT_EQ(q.status, 'I');
}

TEST_F(DirectPrimary, PsqlRuns) {
  RunResult r = run_psql(ConnSpec{}.str(), "SELECT 40 + 2;\n", {"-At"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "42\n");
}

TEST_F(DirectPrimary, CountsAProcessServerConnections) {
  Child psql = Child::spawn({"psql", "-X", "-d", ConnSpec{}.str()}, {}, "/dev/null");
  EXPECT_TRUE(wait_until([&] { return tcp_connections(psql.pid(), kPrimaryPort) == 1; },
                         Millis(5000)));
  EXPECT_EQ(tcp_connections(psql.pid(), kReplicaPort), 0);
  std::vector<uint16_t> ports = tcp_local_ports(psql.pid(), kPrimaryPort);
  ASSERT_EQ(ports.size(), 1u);
  Pg su = superuser();
  EXPECT_EQ(su.scalar("SELECT usename FROM pg_stat_activity WHERE client_port = " +
                      std::to_string(ports[0])),
            "flopods");
  psql.close_stdin();
  EXPECT_TRUE(psql.wait_exit(Millis(5000)));
}

}  // namespace
}  // namespace pgs::it
