// psql and logins through the proxy: SCRAM, md5 and trust client auth, \d, multi-statement
// queries, an error inside a transaction then ROLLBACK, and the login errors 28P01 / 3D000.
#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/support/raw_client.h"

namespace pgs::it {
namespace {

using PsqlTest = ProxyTest;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string unique_table(const char* prefix) {
  return std::string(prefix) + "_" + std::to_string(getpid());
}

TEST_F(PsqlTest, ScramSessionWithDescribeMultiStatementAndRollback) {
  Proxy& p = start_proxy();
  std::string t = unique_table("it_psql");
  std::string script =
      "\\set VERBOSITY verbose\n"
      "DROP TABLE IF EXISTS " + t + ";\n"
      "CREATE TABLE " + t + " (id int PRIMARY KEY, v text);\n"
      "\\d\n"
      "\\d " + t + "\n"
      "SELECT 'one' AS first \\; SELECT 'two' AS second;\n"
      // One Query message, one implicit transaction: the duplicate key undoes the first insert.
      "INSERT INTO " + t + " VALUES (1, 'a') \\; INSERT INTO " + t + " VALUES (1, 'dup');\n"
      "SELECT 'rows=' || count(*) FROM " + t + ";\n"
      "BEGIN;\n"
      "INSERT INTO " + t + " VALUES (2, 'b');\n"
      "SELECT 1/0;\n"
      "SELECT 'not run';\n"
      "ROLLBACK;\n"
      "SELECT 'after rollback rows=' || count(*) FROM " + t + ";\n"
      "DROP TABLE " + t + ";\n"
      "SELECT 'still usable';\n";
  RunResult r = run_psql(p.conninfo(), script, {"-At"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(contains(r.out, "|" + t + "|table|flopods"));  // \d
  EXPECT_TRUE(contains(r.out, "id|integer"));                  // \d table
  EXPECT_TRUE(contains(r.out, "one\ntwo\n"));
  EXPECT_TRUE(contains(r.err, "23505"));
  EXPECT_TRUE(contains(r.out, "rows=0\n"));
  EXPECT_TRUE(contains(r.err, "22012"));
  EXPECT_TRUE(contains(r.err, "25P02"));  // in failed transaction block
  EXPECT_FALSE(contains(r.out, "not run"));
  EXPECT_TRUE(contains(r.out, "after rollback rows=0\n"));
  EXPECT_TRUE(contains(r.out, "still usable\n"));
}

TEST_F(PsqlTest, ScramIsWhatTheProxyAsks) {
  Proxy& p = start_proxy();
  RawConn c(p.host(), p.port());
  LoginOutcome l = login(c, kUser, kPassword, kDatabase);
  ASSERT_TRUE(l.ok) << l.describe();
  EXPECT_EQ(l.auth_code, 10);  // AuthenticationSASL
  for (const char* name : {"server_version", "client_encoding", "DateStyle", "TimeZone",
                           "integer_datetimes", "standard_conforming_strings"}) {
    EXPECT_TRUE(l.parameters.count(name)) << "no ParameterStatus " << name;
  }
  QueryOutcome q = simple_query(c, "SELECT current_user");
  EXPECT_EQ(q.status, 'I');
  EXPECT_FALSE(q.error);
}

TEST_F(PsqlTest, WrongPasswordIs28P01) {
  Proxy& p = start_proxy();
  {
    RawConn c(p.host(), p.port());
    LoginOutcome l = login(c, kUser, "not-the-password", kDatabase);
    ASSERT_TRUE(l.error) << l.describe();
    EXPECT_EQ(l.error->sqlstate(), "28P01") << l.error->describe();
    EXPECT_EQ(l.error->get('S'), "FATAL");
  }
  RunResult r = run_psql(p.conninfo(kUser, "not-the-password"), "SELECT 1;\n");
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_TRUE(contains(r.err, "password")) << r.describe();
  EXPECT_EQ(run_psql(p.conninfo(), "SELECT 1;\n").exit_code, 0);
}

TEST_F(PsqlTest, UnknownUserIsRefused) {
  Proxy& p = start_proxy();
  RawConn c(p.host(), p.port());
  LoginOutcome l = login(c, "no_such_user_it", "x", kDatabase);
  ASSERT_TRUE(l.error) << l.describe();
  // Postgres answers 28P01 here so as not to reveal which users exist; 28000 is also acceptable.
  EXPECT_TRUE(l.error->sqlstate() == "28P01" || l.error->sqlstate() == "28000")
      << l.error->describe();
}

TEST_F(PsqlTest, UnknownDatabaseIs3D000) {
  Proxy& p = start_proxy();
  {
    RawConn c(p.host(), p.port());
    LoginOutcome l = login(c, kUser, kPassword, "no_such_db_it");
    ASSERT_TRUE(l.error) << l.describe();
    EXPECT_EQ(l.error->sqlstate(), "3D000") << l.error->describe();
  }
  RunResult r = run_psql(p.conninfo(kUser, kPassword, "no_such_db_it"), "SELECT 1;\n");
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_EQ(run_psql(p.conninfo(), "SELECT 1;\n").exit_code, 0);
}

TEST_F(PsqlTest, TrustAuth) {
  PGS_IT_REQUIRE_PROXY();  // the dev primary itself requires SCRAM
  ProxyOptions o;
  o.auth_type = "trust";
  Proxy& p = start_proxy(o);
  RawConn c(p.host(), p.port());
  LoginOutcome l = login(c, kUser, "", kDatabase);
  ASSERT_TRUE(l.ok) << l.describe();
  EXPECT_EQ(l.auth_code, 0);  // AuthenticationOk straight away
  ConnSpec s = p.spec();
  s.password.reset();
  RunResult r = run_psql(s.str(), "SELECT current_user;\n", {"-At", "-w"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "flopods\n");
}

TEST_F(PsqlTest, Md5Auth) {
  PGS_IT_REQUIRE_PROXY();  // the dev primary stores SCRAM verifiers only
  ProxyOptions o;
  o.auth_type = "md5";
  Proxy& p = start_proxy(o);
  {
    RawConn c(p.host(), p.port());
    LoginOutcome l = login(c, kUser, kPassword, kDatabase);
    ASSERT_TRUE(l.ok) << l.describe();
    EXPECT_EQ(l.auth_code, 5);  // AuthenticationMD5Password
  }
  {
    RawConn c(p.host(), p.port());
    LoginOutcome l = login(c, kUser, "wrong", kDatabase);
    ASSERT_TRUE(l.error) << l.describe();
    EXPECT_EQ(l.error->sqlstate(), "28P01");
  }
  {
    // An unknown name is asked for md5 too (before, SCRAM: the method told it apart), then 28P01.
    RawConn c(p.host(), p.port());
    LoginOutcome l = login(c, "pgs_psql_nobody", "whatever", kDatabase);
    ASSERT_TRUE(l.error) << l.describe();
    EXPECT_EQ(l.auth_code, 5);
    EXPECT_EQ(l.error->sqlstate(), "28P01");
    EXPECT_EQ(l.error->message(), "password authentication failed for user \"pgs_psql_nobody\"");
  }
  RunResult r = run_psql(p.conninfo(), "SELECT 'md5 ok';\n", {"-At"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(r.out, "md5 ok\n");
}

}  // namespace
}  // namespace pgs::it
