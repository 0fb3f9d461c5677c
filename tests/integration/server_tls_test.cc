// TLS from the proxy to the servers and the hardening of its server login (issue 13, item 2).
// Against the dev primary (./dev services makes a CA and runs the nodes with ssl = on, and a role,
// pgs_tls_only, that pg_hba lets in over TLS only): verify-full logs that role in and pg_stat_ssl shows
// the pool's connection encrypted; "disable" cannot log it in; a CA of another authority is refused with
// a clear error and no server connection left. Against the fake server (tests/support/fake_server.h):
// "require" refuses a server answering N, "prefer" carries on in plaintext; a cleartext password
// request is refused unless server_allow_cleartext; an AuthenticationOk in place of the SCRAM
// server-final is refused.
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/integration/tls_gate.h"
#include "tests/support/certs.h"
#include "tests/support/fake_server.h"

namespace pgs::it {
namespace {

constexpr const char* kTlsOnlyUser = "pgs_tls_only";
constexpr const char* kTlsOnlyPassword = "pgs-tls-only-dev";
// The fake server's user (kFakeUser, harness.h): its verifier as the client password, kFakePassword as
// the server password.

// The node keys; "disable" is the default and written as nothing (so that a binary from before
// server_tls runs the login-hardening tests too: they failed there, as they should).
std::string node_tls(const std::string& mode, const std::string& ca, const std::string& more = {}) {
  std::string out = mode == "disable" ? std::string() : "server_tls = \"" + mode + "\"\n";
  if (!ca.empty()) out += "server_tls_ca_file = \"" + ca + "\"\n";
  return out + more;
}

class ServerTlsTest : public ProxyTest {
 protected:
  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "tests the pgsidecar process";
  }

  // A proxy to the dev primary for pgs_tls_only (and flopods, for readiness).
  Proxy& start_dev(const std::string& tls) {
    ProxyOptions o;
    o.workers = 1;
    o.server_tls_toml = tls;
    o.users.push_back({kTlsOnlyUser, kTlsOnlyPassword, "", false});
    return start_proxy(o);
  }

  Proxy& start_fake(FakeServer& fake, const std::string& tls) {
    ProxyOptions o;
    o.workers = 1;
    o.pool_size = 1;
    o.primary_port = fake.port();
    o.server_tls_toml = tls;
    o.users = {{kFakeUser, kFakeVerifier, kFakePassword, false}};
    return start_proxy(o);
  }

  static ConnSpec fake_client(const Proxy& p) { return p.spec(kFakeUser, kFakePassword); }

  // The server connections the proxy holds, all states (its /metrics; no sample: none).
  static double server_connections(const Proxy& p) {
    return std::max(0.0, metric_sum(scrape_metrics(p), "pgsidecar_server_connections"));
  }
  static double connect_failures(const Proxy& p) {
    return metric_value(scrape_metrics(p), "pgsidecar_server_connect_failures_total", "");
  }
};

std::string require_dev_ca() { return dev_ca_file(); }

TEST_F(ServerTlsTest, TlsOnlyRoleLogsInWithVerifyFullAndItsConnectionIsEncrypted) {
  std::string ca = require_dev_ca();
  if (ca.empty()) GTEST_SKIP() << "no dev CA (.dev/tls/ca.crt): run ./dev services";
  Proxy& p = start_dev(node_tls("verify-full", ca));
  Pg c(p.spec(kTlsOnlyUser, kTlsOnlyPassword));
  ASSERT_TRUE(c.ok()) << c.error() << p.log_tail();
  // pg_backend_pid() through the proxy is the server backend of the pool's connection.
  auto r = c.exec("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_EQ(r.rows(), 1);
  EXPECT_EQ(r.value(0, 0), "t");
  EXPECT_TRUE(r.value(0, 1) == "TLSv1.3" || r.value(0, 1) == "TLSv1.2") << r.value(0, 1);
  // And the ordinary user's pool too.
  Pg f(p.spec());
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ(f.scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), "t");
}

// The proxy's own libpq connections (here the health monitor's, to both nodes, and the catalog
// reader's) take the node's server_tls too. Other proxies on these nodes (other checkouts) run without
// TLS, so an encrypted pgsidecar-monitor session is this proxy's.
TEST_F(ServerTlsTest, TheMonitorsLibpqConnectionsUseTlsToo) {
  std::string ca = require_dev_ca();
  if (ca.empty()) GTEST_SKIP() << "no dev CA (.dev/tls/ca.crt): run ./dev services";
  ProxyOptions o;
  o.workers = 1;
  o.with_replica = true;
  o.server_tls_toml = node_tls("verify-full", ca);
  o.extra_toml = "[routing]\n" + monitor_toml() + "health_check_interval = \"100ms\"\n";
  start_proxy(o);
  const std::string sql =
      "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
      "WHERE a.application_name = 'pgsidecar-monitor' AND s.ssl AND s.version LIKE 'TLSv1.%'";
  for (uint16_t port : {kPrimaryPort, kReplicaPort}) {
    SCOPED_TRACE(port);
    Pg su(superuser_spec(port));
    ASSERT_TRUE(su.ok()) << su.error();
    EXPECT_TRUE(wait_until([&] { return su.scalar(sql) != "0"; }, Millis(10000)));
  }
}

// ... and so they refuse a node whose certificate does not verify (libpq's default, sslmode=prefer
// without a root certificate, would have logged them in).
TEST_F(ServerTlsTest, TheMonitorRefusesANodeWhoseCertificateDoesNotVerify) {
  if (require_dev_ca().empty()) GTEST_SKIP() << "no dev CA (.dev/tls/ca.crt): run ./dev services";
  test::TestCertificates another("monitor-ca");
  ASSERT_EQ(another.error, "");
  ProxyOptions o;
  o.workers = 1;
  o.with_replica = true;
  o.server_tls_toml = node_tls("verify-full", another.ca);
  o.extra_toml = "[routing]\n" + monitor_toml() + "health_check_interval = \"100ms\"\n";
  // A verifier as the first user's password: readiness only pings (no server login can succeed here).
  o.users = {{kTlsOnlyUser, kFakeVerifier, kTlsOnlyPassword, false}, {kAdminUser, kAdminPassword, "", true}};
  Proxy& p = start_proxy(o);
  Pg admin(p.spec(kAdminUser, kAdminPassword, kAdminDatabase));
  ASSERT_TRUE(admin.ok()) << admin.error();
  std::string states;
  EXPECT_TRUE(wait_until(
      [&] {
        auto r = admin.exec("SHOW REPLICAS");
        states.clear();
        for (int i = 0; r.ok() && i < r.rows(); ++i) states += r.value(i, 0) + "=" + r.value(i, 4) + " ";
        return states == "primary=unreachable replica1=unreachable ";
      },
      Millis(10000)))
      << states;
}

TEST_F(ServerTlsTest, TlsOnlyRoleCannotLogInWithServerTlsDisable) {
  if (require_dev_ca().empty()) GTEST_SKIP() << "no dev CA (.dev/tls/ca.crt): run ./dev services";
  Proxy& p = start_dev(node_tls("disable", ""));
  Pg c(p.spec(kTlsOnlyUser, kTlsOnlyPassword));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().find("could not log in to the server"), std::string::npos) << c.error();
  EXPECT_NE(c.error().find("no encryption"), std::string::npos) << c.error();  // pg_hba's reject line
  Pg f(p.spec());
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ(f.scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), "f");
}

TEST_F(ServerTlsTest, ACertificateOfAnotherAuthorityIsRefusedAndNoConnectionIsLeft) {
  if (require_dev_ca().empty()) GTEST_SKIP() << "no dev CA (.dev/tls/ca.crt): run ./dev services";
  test::TestCertificates another("another-ca");  // an authority the dev server's certificate is not from
  ASSERT_EQ(another.error, "");
  ProxyOptions o;
  o.workers = 1;
  // A verifier as the client password: readiness only pings (no server login can succeed here).
  o.users = {{kTlsOnlyUser, kFakeVerifier, kTlsOnlyPassword, false}};
  o.server_tls_toml = node_tls("verify-full", another.ca);
  Proxy& p = start_proxy(o);
  Pg c(p.spec(kTlsOnlyUser, kFakePassword));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().find("certificate verify failed"), std::string::npos) << c.error();
  EXPECT_TRUE(wait_until([&] { return server_connections(p) == 0; }, Millis(5000))) << scrape_metrics(p);
  // Counted (the workers publish their counts once a second).
  EXPECT_TRUE(wait_until([&] { return connect_failures(p) >= 1; }, Millis(5000))) << scrape_metrics(p);
}

TEST_F(ServerTlsTest, RequireRefusesAServerWithoutTls) {
  FakeServer fake;
  Proxy& p = start_fake(fake, node_tls("require", ""));
  Pg c(fake_client(p));
  ASSERT_FALSE(c.ok());
  // The proxy asked (its SSLRequest was answered N) and gave up before the startup packet.
  EXPECT_NE(c.error().find("does not accept TLS (it answered N)"), std::string::npos) << c.error();
  EXPECT_EQ(fake.pool_connections(), 0);
  EXPECT_TRUE(wait_until([&] { return server_connections(p) == 0; }, Millis(5000))) << scrape_metrics(p);
}

// A server that says 'S' and then does not speak TLS (the fake reads the ClientHello as a startup packet
// and hangs up): the handshake fails, the waiting client gets 08006 at once (not at a timeout), and no
// server connection is left behind.
TEST_F(ServerTlsTest, AServerThatDropsTheHandshakeFailsTheLoginCleanly) {
  FakeServer fake;
  fake.set_ssl_answer('S');
  Proxy& p = start_fake(fake, node_tls("require", ""));
  const auto started = std::chrono::steady_clock::now();
  Pg c(fake_client(p));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().find("could not log in to the server"), std::string::npos) << c.error();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5)) << "failed only at a timeout";
  EXPECT_EQ(fake.pool_connections(), 0);
  EXPECT_TRUE(wait_until([&] { return server_connections(p) == 0; }, Millis(5000))) << scrape_metrics(p);
  EXPECT_TRUE(wait_until([&] { return connect_failures(p) >= 1; }, Millis(5000))) << scrape_metrics(p);
}

TEST_F(ServerTlsTest, PreferCarriesOnInPlaintextWithAServerWithoutTls) {
  FakeServer fake;
  Proxy& p = start_fake(fake, node_tls("prefer", ""));
  Pg c(fake_client(p));
  ASSERT_TRUE(c.ok()) << c.error() << p.log_tail();
  EXPECT_GE(fake.ssl_requests(), 1);  // the pool's connection asked, then logged in in plaintext
  EXPECT_EQ(fake.pool_connections(), 1);
}

// A handshake that fails under "prefer" is retried once in plaintext, as libpq's sslmode=prefer does: the
// fake says 'S' and then speaks no TLS; the proxy's second connection sends its StartupMessage at once
// (no SSLRequest) and logs in. Under "require" the same server fails the login (the test above).
TEST_F(ServerTlsTest, PreferRetriesOnceInPlaintextAfterAFailedHandshake) {
  FakeServer fake;
  fake.set_ssl_answer('S');
  Proxy& p = start_fake(fake, node_tls("prefer", ""));
  Pg c(fake_client(p));
  ASSERT_TRUE(c.ok()) << c.error() << p.log_tail();
  EXPECT_EQ(fake.pool_connections(), 1);
  EXPECT_EQ(fake.ssl_requests(), 0);  // the retry asked no more
  EXPECT_NE(p.log_tail().find("retrying once without TLS (server_tls = \"prefer\")"), std::string::npos)
      << p.log_tail();
}

// The same against the dev primary: a certificate that does not verify (a CA of another authority) fails
// the handshake; "prefer" logs in in plaintext on the second connection (pg_hba lets flopods in without
// TLS), "verify-ca" does not retry at all.
TEST_F(ServerTlsTest, PreferFallsBackToPlaintextWhenTheCertificateDoesNotVerifyAndVerifyCaDoesNot) {
  if (require_dev_ca().empty()) GTEST_SKIP() << "no dev CA (.dev/tls/ca.crt): run ./dev services";
  test::TestCertificates another("prefer-ca");
  ASSERT_EQ(another.error, "");
  {
    Proxy& p = start_dev(node_tls("prefer", another.ca));
    Pg f(p.spec());
    ASSERT_TRUE(f.ok()) << f.error() << p.log_tail();
    EXPECT_EQ(f.scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), "f");
    EXPECT_NE(p.log_tail().find("certificate verify failed"), std::string::npos) << p.log_tail();
    EXPECT_NE(p.log_tail().find("retrying once without TLS"), std::string::npos) << p.log_tail();
    // pgs_tls_only is refused in plaintext by pg_hba: the fallback gives it no way around that.
    Pg t(p.spec(kTlsOnlyUser, kTlsOnlyPassword));
    EXPECT_FALSE(t.ok());
    EXPECT_NE(t.error().find("no encryption"), std::string::npos) << t.error();
    proxy_.reset();
  }
  ProxyOptions o;
  o.workers = 1;
  o.users = {{kTlsOnlyUser, kFakeVerifier, kTlsOnlyPassword, false}};  // readiness only pings
  o.server_tls_toml = node_tls("verify-ca", another.ca);
  Proxy& p = start_proxy(o);
  Pg c(p.spec(kTlsOnlyUser, kFakePassword));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().find("certificate verify failed"), std::string::npos) << c.error();
  EXPECT_EQ(p.log_tail().find("retrying once without TLS"), std::string::npos) << p.log_tail();
}

// The CancelRequest to a server whose connection runs over TLS goes over TLS too (SSLRequest, the
// handshake verified as the node's server_tls says, then the packet), as libpq 17's cancel does. The
// primary sits behind a gate that lets through only connections opening with an SSLRequest, as a network
// requiring TLS does: the old plaintext cancel was dropped there and the pg_sleep ran on.
TEST_F(ServerTlsTest, ACancelToATlsServerGoesOverTls) {
  std::string ca = require_dev_ca();
  if (ca.empty()) GTEST_SKIP() << "no dev CA (.dev/tls/ca.crt): run ./dev services";
  TlsOnlyGate gate(kPrimaryPort);
  ASSERT_NE(gate.port(), 0);
  ProxyOptions o;
  o.workers = 1;
  o.pool_size = 1;
  o.primary_port = gate.port();
  o.server_tls_toml = node_tls("verify-full", ca);
  Proxy& p = start_proxy(o);
  Pg a(p.spec());
  ASSERT_TRUE(a.ok()) << a.error() << p.log_tail();
  const std::string marker = "it-tls-cancel-" + std::to_string(getpid());
  ASSERT_EQ(PQsendQuery(a.get(), ("SELECT pg_sleep(20) /* " + marker + " */").c_str()), 1);
  ASSERT_TRUE(wait_query_running(marker, Millis(5000), kPrimaryPort)) << "the query never started";
  const auto t0 = std::chrono::steady_clock::now();
  PGcancel* cancel = PQgetCancel(a.get());
  char err[256];
  EXPECT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
  PQfreeCancel(cancel);
  PgResult r(PQgetResult(a.get()));
  const auto took = std::chrono::steady_clock::now() - t0;
  PQclear(PQgetResult(a.get()));
  EXPECT_EQ(r.sqlstate(), "57014") << r.error() << p.log_tail();
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_EQ(gate.refused_cancels(), 0);
  EXPECT_EQ(a.scalar("SELECT 'after the cancel'"), "after the cancel");  // the server was kept
}

TEST_F(ServerTlsTest, ACleartextPasswordRequestIsRefusedUnlessAllowed) {
  for (bool allowed : {false, true}) {
    SCOPED_TRACE(allowed ? "allowed" : "refused");
    FakeServer fake;
    fake.set_login_script({[](const std::string&) { return FakeServer::auth_request(3); },
                           [](const std::string&) { return FakeServer::auth_request(0); }});
    Proxy& p = start_fake(fake, node_tls("disable", "", allowed ? "server_allow_cleartext = true\n" : ""));
    Pg c(fake_client(p));
    if (allowed) {
      ASSERT_TRUE(c.ok()) << c.error();
      ASSERT_EQ(fake.scripted_messages().size(), 1u);
      EXPECT_EQ(fake.scripted_messages()[0], std::string(kFakePassword) + '\0');
    } else {
      ASSERT_FALSE(c.ok());
      EXPECT_NE(c.error().find("cleartext"), std::string::npos) << c.error();
      EXPECT_TRUE(fake.scripted_messages().empty());  // the password never went out
      EXPECT_TRUE(wait_until([&] { return fake.scripted_logins_abandoned() >= 1; }, Millis(5000)));
    }
    proxy_.reset();
  }
}

TEST_F(ServerTlsTest, AnAuthenticationOkInPlaceOfTheScramFinalIsRefused) {
  FakeServer fake;
  fake.set_login_script({
      [](const std::string&) {
        return FakeServer::auth_request(10, std::string("SCRAM-SHA-256") + '\0' + '\0');
      },
      [](const std::string& initial) {  // SASLInitialResponse: mechanism, length, "n,,n=,r=<nonce>"
        std::string first = initial.substr(initial.find('\0') + 5);
        std::string nonce = first.substr(first.find("r=") + 2);
        return FakeServer::auth_request(11, "r=" + nonce + "fake,s=c2FsdHNhbHRzYWx0,i=4096");
      },
      [](const std::string&) { return FakeServer::auth_request(0); },  // no SASLFinal: proves nothing
  });
  Proxy& p = start_fake(fake, node_tls("disable", ""));
  Pg c(fake_client(p));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().find("before its SCRAM signature was verified"), std::string::npos) << c.error();
  EXPECT_EQ(fake.scripted_messages().size(), 2u);  // the initial response and the client-final
  EXPECT_TRUE(wait_until([&] { return server_connections(p) == 0; }, Millis(5000))) << scrape_metrics(p);
}

// The CA file is read at start (one that cannot be loaded stops the start, naming the key) and at every
// reload (one that cannot be loaded refuses the reload; the running configuration is kept, and a CA
// that verifies nothing any more takes effect for new server connections).
TEST_F(ServerTlsTest, TheCaFileIsReadAtStartAndAtReload) {
  std::string ca = require_dev_ca();
  if (ca.empty()) GTEST_SKIP() << "no dev CA (.dev/tls/ca.crt): run ./dev services";
  {
    ProxyOptions bad;
    bad.server_tls_toml = node_tls("verify-full", "/nonexistent/ca.crt");
    try {
      start_proxy(bad);
      ADD_FAILURE() << "started with a CA file that does not exist";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("cannot start TLS: primary.server_tls_ca_file /nonexistent/ca.crt"),
                std::string::npos)
          << e.what();
    }
  }
  ProxyOptions o;
  o.workers = 1;
  o.pool_size = 1;
  o.server_tls_toml = node_tls("verify-full", ca);
  o.users.push_back({kTlsOnlyUser, kTlsOnlyPassword, "", false});
  Proxy& p = start_proxy(o);
  ProxyOptions missing = o;
  missing.server_tls_toml = node_tls("verify-full", "/nonexistent/ca.crt");
  p.rewrite_config(missing);
  p.sighup();
  EXPECT_TRUE(wait_until([&] { return p.log_tail().find("reload failed") != std::string::npos; }, Millis(5000)));
  EXPECT_NE(p.log_tail().find("/nonexistent/ca.crt"), std::string::npos) << p.log_tail();
  Pg kept(p.spec(kTlsOnlyUser, kTlsOnlyPassword));
  EXPECT_TRUE(kept.ok()) << "the running configuration was kept: " << kept.error();
  kept.close();
  // Another authority's CA takes effect for new server connections: a user added by the same reload has
  // no pool yet, so its login opens one, and that is refused.
  test::TestCertificates another("reload-ca");
  ASSERT_EQ(another.error, "");
  ProxyOptions other = o;
  other.server_tls_toml = node_tls("verify-full", another.ca);
  other.users.push_back({kSuperUser, kSuperPassword, "", false});
  p.rewrite_config(other);
  p.sighup();
  EXPECT_TRUE(wait_until([&] { return p.log_tail().find("configuration reloaded") != std::string::npos; },
                         Millis(5000)));
  Pg fresh(p.spec(kSuperUser, kSuperPassword, kDatabase));
  EXPECT_FALSE(fresh.ok());
  EXPECT_NE(fresh.error().find("certificate verify failed"), std::string::npos) << fresh.error();
}

}  // namespace
}  // namespace pgs::it
