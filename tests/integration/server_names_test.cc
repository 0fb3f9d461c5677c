// Servers by host name (issue 13: RDS endpoints are DNS names). The proxy resolves [primary] and
// [[replicas]] host on its workers' loops (proxy/net/resolver.h) and connects to the addresses found;
// TLS verify-full checks the certificate against the configured name; the proxy's libpq connections
// (health monitor, catalog, auth_query) get the name too. A name that does not resolve fails the login
// at once with 08006 and a log line that says so, and leaves no server connection behind.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace pgs::it {
namespace {

class ServerNamesTest : public ProxyTest {
 protected:
  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "tests the pgsidecar process";
  }
  static double server_connections(const Proxy& p) {
    return std::max(0.0, metric_sum(scrape_metrics(p), "pgsidecar_server_connections"));
  }
};

// The proxy started by the next start_proxy() runs in a mount namespace of its own where /etc/hosts is
// `hosts` and, if given, /etc/resolv.conf is `resolv` (the machine's files stay as they are): a name with
// the addresses a test needs, a DNS server of the test's. ok is false when such a namespace cannot be
// made here (then the test skips). Restores PGSIDECAR_BIN when destroyed.
class HostsFile {
 public:
  explicit HostsFile(const std::string& hosts, const std::string& resolv = {})
      : real_(proxy_binary()), dir_(make_temp_dir("pgs-hosts")) {
    const char* old = std::getenv("PGSIDECAR_BIN");
    had_old_ = old != nullptr;
    if (had_old_) old_ = old;
    const std::string file = dir_ + "/hosts", conf = dir_ + "/resolv.conf", wrapper = dir_ + "/pgsidecar";
    std::ofstream(file) << hosts;
    std::string mounts = "mount --bind " + file + " /etc/hosts";
    if (!resolv.empty()) {
      std::ofstream(conf) << resolv;
      mounts += " && mount --bind " + conf + " /etc/resolv.conf";
    }
    // unshare execs sh, which execs the proxy: the pid the harness holds is the proxy's.
    std::ofstream(wrapper) << "#!/bin/sh\nexec unshare -m sh -c '" << mounts << " && exec \"$@\"' sh " << real_
                           << " \"$@\"\n";
    ::chmod(wrapper.c_str(), 0755);
    RunResult probe = run_program({"unshare", "-m", "sh", "-c", mounts}, {}, Millis(5000));
    ok = probe.exit_code == 0;
    why = probe.describe();
    if (ok) ::setenv("PGSIDECAR_BIN", wrapper.c_str(), 1);
  }
  ~HostsFile() {
    if (had_old_) {
      ::setenv("PGSIDECAR_BIN", old_.c_str(), 1);
    } else {
      ::unsetenv("PGSIDECAR_BIN");
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  bool ok = false;
  std::string why;

 private:
  std::string real_, dir_, old_;
  bool had_old_ = false;
};

// A one-server proxy whose primary is `host`, which no login reaches: the client's password is a verifier,
// so readiness only pings.
ProxyOptions unreachable_primary(const std::string& host, const std::string& connect_timeout) {
  ProxyOptions o;
  o.workers = 1;
  o.pool_size = 1;
  o.node_host = host;
  o.server_tls_toml = "";
  o.server_connect_timeout = connect_timeout;
  o.users = {{kUser, kFakeVerifier, "", false}, {kAdminUser, kAdminPassword, "", true}};
  return o;
}

std::string verify_full_by_name() {
  std::string ca = dev_ca_file();
  return ca.empty() ? std::string() : "server_tls = \"verify-full\"\nserver_tls_ca_file = \"" + ca + "\"\n";
}

// host = "localhost" for the primary and the replica, verify-full against the dev certificate (SAN
// DNS:localhost): writes reach the primary, reads are still routed to the replica, both over TLS; the
// health monitor (libpq, host=localhost) sees the replica, or reads would never go there.
TEST_F(ServerNamesTest, PrimaryAndReplicaByNameWorkEndToEndWithVerifyFull) {
  const std::string tls = verify_full_by_name();
  if (tls.empty()) GTEST_SKIP() << "no dev CA (.dev/tls/ca.crt): run ./dev services";
  ProxyOptions o;
  o.workers = 1;
  o.with_replica = true;
  o.node_host = "localhost";
  o.server_tls_toml = tls;
  o.extra_toml = "[routing]\n" + monitor_toml() + "health_check_interval = \"100ms\"\n";
  Proxy& p = start_proxy(o);
  Pg c(p.spec());
  ASSERT_TRUE(c.ok()) << c.error() << p.log_tail();
  // A transaction goes to the primary.
  auto primary = c.exec("BEGIN READ WRITE");
  ASSERT_TRUE(primary.ok()) << primary.error();
  EXPECT_EQ(c.scalar("SELECT pg_is_in_recovery()"), "f");
  EXPECT_EQ(c.scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), "t");
  ASSERT_TRUE(c.exec("COMMIT").ok());
  // Reads reach the replica once the monitor has seen it healthy.
  EXPECT_TRUE(wait_until([&] { return c.scalar("SELECT pg_is_in_recovery()") == "t"; }, Millis(15000)))
      << "reads never reached the replica" << p.log_tail();
  EXPECT_EQ(c.scalar("SELECT ssl::text || ' ' || pg_is_in_recovery()::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()"),
            "true true");
  // The name was resolved, not refused, by every part of the proxy: nothing in the log says otherwise.
  EXPECT_EQ(p.log_tail().find("cannot resolve"), std::string::npos) << p.log_tail();
}

// A name with several addresses: they are tried in order. Here ::1 comes first (getaddrinfo puts IPv6
// loopback before IPv4) and refuses (the dev primary listens on 127.0.0.1 only), so the server
// connection goes on to 127.0.0.1 at once, within one login.
TEST_F(ServerNamesTest, TheAddressesOfANameAreTriedInOrder) {
  HostsFile hosts("127.0.0.1 localhost\n::1 multi.pgs.test\n127.0.0.1 multi.pgs.test\n");
  if (!hosts.ok) GTEST_SKIP() << "no mount namespace for a private /etc/hosts here: " << hosts.why;
  ProxyOptions o;
  o.workers = 1;
  o.pool_size = 1;
  o.node_host = "multi.pgs.test";
  o.server_tls_toml = "";
  Proxy& p = start_proxy(o);
  Pg c(p.spec());
  ASSERT_TRUE(c.ok()) << c.error() << p.log_tail();
  EXPECT_EQ(c.scalar("SELECT inet_server_addr()::text"), "127.0.0.1/32");
  EXPECT_EQ(p.log_tail().find("server login failed"), std::string::npos) << p.log_tail();
}

// A name that does not resolve (.invalid never does, RFC 2606) is a failed server login: the waiting
// client gets 08006 with the reason at once (not at server_connect_timeout), the log says which host, and
// no server connection is left. A second attempt fails the same way (failures are not kept: looked up
// again), and the client's connection to the proxy is still usable for the admin console.
TEST_F(ServerNamesTest, ANameThatDoesNotResolveFailsTheLoginAtOnceAndLeavesNoServer) {
  Proxy& p = start_proxy(unreachable_primary("no-such-host.invalid", "20s"));
  for (int attempt = 0; attempt < 2; ++attempt) {
    SCOPED_TRACE(attempt);
    const auto t0 = std::chrono::steady_clock::now();
    Pg c(p.spec(kUser, kFakePassword));
    ASSERT_FALSE(c.ok());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << "failed only at a timeout";
    EXPECT_NE(c.error().find("could not log in to the server"), std::string::npos) << c.error();
    EXPECT_NE(c.error().find("cannot resolve the host \"no-such-host.invalid\""), std::string::npos) << c.error();
  }
  EXPECT_NE(p.log_tail().find("server login failed: cannot resolve the host \"no-such-host.invalid\" of server primary"),
            std::string::npos)
      << p.log_tail();
  EXPECT_TRUE(wait_until([&] { return server_connections(p) == 0; }, Millis(5000))) << scrape_metrics(p);
  Pg admin(p.spec(kAdminUser, kAdminPassword, kAdminDatabase));
  ASSERT_TRUE(admin.ok()) << admin.error();
  auto pools = admin.exec("SHOW POOLS");
  ASSERT_TRUE(pools.ok()) << pools.error();
  for (int i = 0; i < pools.rows(); ++i) {
    for (int col = 0; col < pools.columns(); ++col) {
      const std::string name = PQfname(pools.get(), col);
      if (name == "sv_active" || name == "sv_idle" || name == "sv_login" || name == "sv_used") {
        EXPECT_EQ(pools.value(i, col), "0") << name;
      }
    }
  }
}

// A DNS server that never answers (a UDP socket of the test's that reads nothing): the lookup of the
// primary's name hangs in getaddrinfo (5 s, resolv.conf), but the worker's loop does not wait for it.
// server_connect_timeout (1 s) fails the login with 08006 saying it was resolving; the lookup that ends
// later is dropped, nothing is left, and the admin console answered meanwhile.
TEST_F(ServerNamesTest, ALookupThatHangsIsBoundedByServerConnectTimeout) {
  const int dns = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(53);
  a.sin_addr.s_addr = htonl(0x7f000009);  // 127.0.0.9
  if (dns < 0 || ::bind(dns, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (dns >= 0) ::close(dns);
    GTEST_SKIP() << "cannot bind a silent DNS server on 127.0.0.9:53";
  }
  HostsFile hosts("127.0.0.1 localhost\n", "nameserver 127.0.0.9\noptions timeout:5 attempts:1\n");
  if (!hosts.ok) {
    ::close(dns);
    GTEST_SKIP() << "no mount namespace for a private /etc/hosts here: " << hosts.why;
  }
  Proxy& p = start_proxy(unreachable_primary("slow.pgs.test", "1s"));
  const auto t0 = std::chrono::steady_clock::now();
  Pg admin(p.spec(kAdminUser, kAdminPassword, kAdminDatabase));
  ASSERT_TRUE(admin.ok()) << admin.error();
  Pg c(p.spec(kUser, kFakePassword));
  ASSERT_FALSE(c.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(4000)) << "waited for the lookup";
  EXPECT_NE(c.error().find("server_connect_timeout (resolving the host \"slow.pgs.test\")"), std::string::npos)
      << c.error();
  EXPECT_TRUE(admin.exec("SHOW POOLS").ok());  // the loop was never blocked
  EXPECT_TRUE(wait_until([&] { return server_connections(p) == 0; }, Millis(5000))) << scrape_metrics(p);
  // The lookup ends (getaddrinfo gives up after 5 s) with nobody waiting: dropped, the proxy lives on.
  EXPECT_TRUE(wait_until([&] { return admin.exec("SHOW POOLS").ok() && kill(p.pid(), 0) == 0 &&
                                      std::chrono::steady_clock::now() - t0 > std::chrono::seconds(6); },
                         Millis(10000)));
  ::close(dns);
}

}  // namespace
}  // namespace pgs::it
