// The shipped dev config (conf/pgsidecar.toml), as `./dev up` runs it (issue 13, "Done when"): TLS to
// clients allowed with the certificate `./dev services` makes, so psql with sslmode=require and
// sslmode=verify-full (against the dev CA) works out of the box; TLS to the dev servers with
// verify-full; auth_query on, so a role created in Postgres after the proxy started logs in through it.
// The file is used as shipped, except for the ports (a second proxy beside the dev one), its relative
// TLS paths made absolute (it is written elsewhere) and the cache's invalidation stream (not this test's
// subject; the dev proxy leads it).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "tests/integration/harness.h"

namespace pgs::it {
namespace {

std::string shipped_config() {
  std::ifstream in(std::string(PGS_SOURCE_DIR) + "/conf/pgsidecar.toml");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class DevConfigTest : public ProxyTest {
 protected:
  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "tests the pgsidecar process";
    if (dev_ca_file().empty()) GTEST_SKIP() << "no dev CA (.dev/tls/ca.crt): run ./dev services";
    tls_dir_ = std::filesystem::path(dev_ca_file()).parent_path().string();
    ProxyOptions o;
    o.tls_toml = "client_tls = \"allow\"";  // readiness: sslmode=prefer
    const std::string tls_dir = tls_dir_;
    o.config_text = [tls_dir](uint16_t port, uint16_t metrics) {
      std::string text = shipped_config();
      text = std::regex_replace(text, std::regex("\nlisten_port = [0-9]+\n"), "\nlisten_port = " + std::to_string(port) + "\n");
      text = std::regex_replace(text, std::regex("\nmetrics_listen = \"[^\"]*\"\n"),
                                "\nmetrics_listen = \"127.0.0.1:" + std::to_string(metrics) + "\"\n");
      text = std::regex_replace(text, std::regex("\"\\.\\./\\.dev/tls/"), "\"" + tls_dir + "/");
      text = std::regex_replace(text, std::regex("\ninvalidation_stream = true\n"), "\ninvalidation_stream = false\n");
      return text;
    };
    start_proxy(o);
  }
  std::string tls_dir_;
};

TEST_F(DevConfigTest, PsqlWithSslmodeRequireAndVerifyFullWorksOutOfTheBox) {
  for (const std::string mode : {"require", "verify-full"}) {
    ConnSpec s = proxy_->spec();
    s.host = "localhost";  // the name the certificate carries (127.0.0.1 too)
    s.extra["sslmode"] = mode;
    s.extra["sslrootcert"] = dev_ca_file();
    Pg c(s);
    ASSERT_TRUE(c.ok()) << mode << ": " << c.error() << proxy_->log_tail();
    EXPECT_EQ(c.scalar("SELECT 1"), "1");
    EXPECT_TRUE(PQsslInUse(c.get())) << mode;
  }
}

TEST_F(DevConfigTest, TheServersAreReachedWithVerifyFull) {
  Pg c(proxy_->spec());
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c.scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), "t");
}

TEST_F(DevConfigTest, ARoleCreatedAfterTheProxyStartedLogsIn) {
  const std::string role = "pgs_devcfg_" + std::to_string(getpid());
  Pg su = superuser("flopods");
  su.exec("DROP ROLE IF EXISTS " + role);
  su.must("CREATE ROLE " + role + " LOGIN PASSWORD 'devcfg-pw'");
  std::string error;
  // The proxy may have looked the name up before (a negative answer is kept auth_query_negative_ttl).
  bool in = wait_until([&] {
    Pg c(proxy_->spec(role, "devcfg-pw"));
    error = c.error();
    return c.ok() && c.scalar("SELECT current_user") == role;
  }, Millis(10000), Millis(100));
  EXPECT_TRUE(in) << error << proxy_->log_tail();
  su.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '" + role + "'");
  su.exec("DROP ROLE IF EXISTS " + role);
}

}  // namespace
}  // namespace pgs::it
