// Real client libraries through the proxy: psycopg 3 (python3-psycopg) with 50 threads.
#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace pgs::it {
namespace {

using ClientsTest = ProxyTest;

RunResult run_psycopg(Proxy& p, const std::string& prepare_threshold) {
  // Debian's python3-psycopg is installed for /usr/bin/python3 (not a pyenv python on PATH).
  return run_program({"/usr/bin/python3", std::string(PGS_CLIENTS_DIR) + "/psycopg_threads.py",
                      "--dsn", p.conninfo(), "--threads", "50", "--iterations", "40",
                      "--prepare-threshold", prepare_threshold, "--table",
                      "it_psycopg_" + prepare_threshold},
                     {{"PGSSLMODE", "disable"}}, Millis(90000));
}

// Unnamed statements only (prepare_threshold=None): works with plain transaction pooling.
TEST_F(ClientsTest, PsycopgFiftyThreadsUnnamedStatements) {
  ProxyOptions o;
  o.pool_size = 10;
  Proxy& p = start_proxy(o);
  RunResult r = run_psycopg(p, "none");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("errors=0"), std::string::npos) << r.describe();
}

// prepare_threshold=0: every statement becomes a named prepared statement on the server. Through a
// transaction pool of 10 that needs per-client prepared-statement tracking (issue 3).
TEST_F(ClientsTest, PsycopgFiftyThreadsPreparedStatements) {
  ProxyOptions o;
  o.pool_size = 10;
  Proxy& p = start_proxy(o);
  RunResult r = run_psycopg(p, "0");
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("errors=0"), std::string::npos) << r.describe();
}

}  // namespace
}  // namespace pgs::it
