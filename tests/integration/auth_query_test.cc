// No plaintext secrets (issue 13, item 3): SCRAM pass-through and auth_query, through the real pgsidecar
// process against the dev primary.
//  - auth_query: a role created in Postgres after the proxy started logs in through it (looked up as
//    pgsidecar_auth with pgsidecar.user_lookup, provisioned by scripts/postgres.sh) and its queries run on
//    pooled server connections the proxy opened with the client's own SCRAM keys; a wrong password and
//    an unknown role get the same 28P01; a changed password works after the TTL; a lookup against a
//    server that does not answer blocks nobody else and ends in 08006, not a hang.
//  - pass-through: a [[users]] entry with only a SCRAM verifier (no password) logs in and queries, also
//    with channel binding over TLS.
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "tests/integration/harness.h"
#include "tests/support/certs.h"

namespace pgs::it {
namespace {

constexpr const char* kAuthUser = "pgsidecar_auth";
constexpr const char* kAuthPassword = "pgsidecar-auth-dev";

std::string auth_toml(const std::string& ttl = "60s", const std::string& negative_ttl = "100ms",
                      const std::string& timeout = "5s") {
  return std::string("auth_user = \"") + kAuthUser + "\"\nauth_password = \"" + kAuthPassword +
         "\"\nauth_query_ttl = \"" + ttl + "\"\nauth_query_negative_ttl = \"" + negative_ttl +
         "\"\nauth_query_timeout = \"" + timeout + "\"\n";
}

// A login role of this test process, dropped at the end (its connections terminated first).
class TempRole {
 public:
  TempRole(const std::string& tag, const std::string& password)
      : name_("pgs_aq_" + tag + "_" + std::to_string(getpid())) {
    drop();
    superuser("flopods").must("CREATE ROLE " + name_ + " LOGIN PASSWORD '" + password + "'");
  }
  ~TempRole() { drop(); }
  const std::string& name() const { return name_; }
  std::string verifier() const {
    return superuser().scalar("SELECT rolpassword FROM pg_authid WHERE rolname = '" + name_ + "'");
  }

 private:
  void drop() {
    Pg su = superuser();
    su.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '" + name_ + "'");
    su.exec("DROP ROLE IF EXISTS " + name_);
  }
  std::string name_;
};

class AuthQueryTest : public ProxyTest {
 protected:
  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "tests the pgsidecar process";
    // The dev provisioning (scripts/postgres.sh provision_auth_query) made the role and the function.
    Pg probe(ConnSpec{.user = kAuthUser, .password = std::string(kAuthPassword)});
    if (!probe.ok()) GTEST_SKIP() << "auth_query is not provisioned on the dev primary: " << probe.error();
  }
  static ProxyOptions options(const std::string& auth = auth_toml()) {
    ProxyOptions o;
    o.workers = 1;  // one worker: one pool per (database, user), so server reuse is visible
    o.pool_size = 2;
    o.proxy_toml = auth;
    return o;
  }
  // The outcome of a raw login (SQLSTATE and message of a refusal).
  LoginOutcome raw_login(const std::string& user, const std::string& password) {
    RawConn c(kHost, proxy_->port());
    return login(c, user, password, kDatabase);
  }
};

TEST_F(AuthQueryTest, ARoleCreatedAfterTheProxyStartedLogsInAndItsServersArePooled) {
  start_proxy(options());
  const std::string name = "pgs_aq_new_" + std::to_string(getpid());
  LoginOutcome before = raw_login(name, "new-pw-1");  // not a role yet: remembered 100 ms as unknown
  ASSERT_TRUE(before.error.has_value()) << before.describe();
  EXPECT_EQ(before.error->sqlstate(), "28P01");
  TempRole role("new", "new-pw-1");
  ASSERT_EQ(role.name(), name);
  std::string last;
  ASSERT_TRUE(wait_until([&] { Pg p(proxy_->spec(name, "new-pw-1")); last = p.error(); return p.ok(); },
                         Millis(5000), Millis(50)))
      << last;
  Pg a(proxy_->spec(role.name(), "new-pw-1"));
  ASSERT_TRUE(a.ok()) << a.error();
  EXPECT_EQ(a.scalar("SELECT current_user"), role.name());
  const std::string pid = a.scalar("SELECT pg_backend_pid()");
  // Transaction pooling: a second client of the role gets the same (idle) server connection, which the
  // proxy opened with the keys of the first client's SCRAM login (it has no password for the role).
  Pg b(proxy_->spec(role.name(), "new-pw-1"));
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_EQ(b.scalar("SELECT pg_backend_pid()"), pid);
  EXPECT_EQ(superuser().scalar("SELECT count(*) FROM pg_stat_activity WHERE usename = '" + role.name() + "'"),
            "1");
}

// A DBA sees what auth_query does: each client's request by result, and the cached answers.
TEST_F(AuthQueryTest, LookupsAreCountedByResult) {
  start_proxy(options());
  TempRole role("counted", "counted-pw");
  auto count = [&](const std::string& result) {
    return metric_value(scrape_metrics(*proxy_), "pgsidecar_auth_query_lookups_total", "result=\"" + result + "\"");
  };
  ASSERT_EQ(count("found"), 0);
  {
    Pg first(proxy_->spec(role.name(), "counted-pw"));  // looked up on the server
    ASSERT_TRUE(first.ok()) << first.error();
  }
  {
    Pg second(proxy_->spec(role.name(), "counted-pw"));  // answered from the cache (60 s TTL)
    ASSERT_TRUE(second.ok()) << second.error();
  }
  LoginOutcome ghost = raw_login("pgs_aq_ghost_counted_" + std::to_string(getpid()), "pw");
  ASSERT_TRUE(ghost.error.has_value()) << ghost.describe();
  // Counters are published by the worker's stats tick: wait for them with a deadline.
  ASSERT_TRUE(wait_until([&] { return count("unknown") == 1; }, Millis(5000), Millis(50)));
  const std::string page = scrape_metrics(*proxy_);
  EXPECT_EQ(metric_value(page, "pgsidecar_auth_query_lookups_total", "result=\"found\""), 1);
  EXPECT_EQ(metric_value(page, "pgsidecar_auth_query_lookups_total", "result=\"cache_hit\""), 1);
  EXPECT_EQ(metric_value(page, "pgsidecar_auth_query_lookups_total", "result=\"failed\""), 0);
  EXPECT_EQ(metric_value(page, "pgsidecar_auth_query_cache_entries", ""), 2);  // the role and the ghost
}

// [primary] host a name (issue 13): the lookup's libpq connection gets the addresses the worker resolved
// (hostaddr, so libpq blocks the loop on no name lookup) and the name (host, for verify-full's check
// against the dev certificate's DNS:localhost, which the harness's default server_tls asks for).
TEST_F(AuthQueryTest, TheLookupReachesAPrimaryConfiguredByName) {
  ProxyOptions o = options();
  o.node_host = "localhost";
  start_proxy(o);
  TempRole role("byname", "byname-pw");
  Pg a(proxy_->spec(role.name(), "byname-pw"));
  ASSERT_TRUE(a.ok()) << a.error() << proxy_->log_tail();
  EXPECT_EQ(a.scalar("SELECT current_user"), role.name());
  EXPECT_EQ(proxy_->log_tail().find("auth_query lookup failed"), std::string::npos) << proxy_->log_tail();
}

// auth_query is reloadable: turned on by SIGHUP, a role unknown before logs in.
TEST_F(AuthQueryTest, TurnedOnByAReload) {
  ProxyOptions o = options("");
  start_proxy(o);
  TempRole role("reload", "reload-pw");
  LoginOutcome off = raw_login(role.name(), "reload-pw");
  ASSERT_TRUE(off.error.has_value()) << off.describe();
  EXPECT_EQ(off.error->sqlstate(), "28P01");
  o.proxy_toml = auth_toml();
  proxy_->rewrite_config(o);
  proxy_->sighup();
  std::string last;
  EXPECT_TRUE(wait_until(
      [&] {
        Pg p(proxy_->spec(role.name(), "reload-pw"));
        last = p.error();
        return p.ok() && p.scalar("SELECT current_user") == role.name();
      },
      Millis(10000), Millis(100)))
      << last;
}

// Reads go to the replica: its pool logs in with the same keys (a physical replica holds the same
// pg_authid, so the same verifier).
TEST_F(AuthQueryTest, ALookedUpRoleReadsOnTheReplicaThroughPassThrough) {
  ProxyOptions o = options();
  o.with_replica = true;
  start_proxy(o);
  TempRole role("replica", "replica-pw");
  Pg a(proxy_->spec(role.name(), "replica-pw"));
  ASSERT_TRUE(a.ok()) << a.error();
  std::string last;
  EXPECT_TRUE(wait_until(
      [&] {
        auto r = a.exec("SELECT pg_is_in_recovery(), current_user");
        last = r.ok() ? r.value(0, 0) + " " + r.value(0, 1) : r.error();
        return r.ok() && r.value(0, 0) == "t" && r.value(0, 1) == role.name();
      },
      Millis(15000), Millis(100)))
      << last;
}

TEST_F(AuthQueryTest, AWrongPasswordAndAnUnknownRoleGetTheSame28P01) {
  start_proxy(options());
  TempRole role("wrong", "right-pw");
  LoginOutcome wrong = raw_login(role.name(), "wrong-pw");
  ASSERT_TRUE(wrong.error.has_value()) << wrong.describe();
  EXPECT_EQ(wrong.error->sqlstate(), "28P01");
  EXPECT_EQ(wrong.error->message(), "password authentication failed for user \"" + role.name() + "\"");
  const std::string ghost = "pgs_aq_ghost_" + std::to_string(getpid());
  LoginOutcome unknown = raw_login(ghost, "any-pw");
  ASSERT_TRUE(unknown.error.has_value()) << unknown.describe();
  EXPECT_EQ(unknown.error->sqlstate(), "28P01");
  EXPECT_EQ(unknown.error->message(), "password authentication failed for user \"" + ghost + "\"");
  EXPECT_EQ(unknown.auth_code, wrong.auth_code);  // both asked for SASL
  // Hostile names: as long as a role name may be (longer ones are refused at startup, 28000, for every
  // user alike), not UTF-8, unicode; the same answer, no lookup error.
  for (const std::string& name : {std::string(63, 'x'), std::string("bad\xff\xfe"), std::string("r\xc3\xb4le")}) {
    LoginOutcome o = raw_login(name, "pw");
    ASSERT_TRUE(o.error.has_value()) << o.describe();
    EXPECT_EQ(o.error->sqlstate(), "28P01") << o.error->message();
  }
  // And the right password still works.
  Pg ok(proxy_->spec(role.name(), "right-pw"));
  EXPECT_TRUE(ok.ok()) << ok.error();
}

TEST_F(AuthQueryTest, AChangedPasswordWorksAfterTheTtl) {
  start_proxy(options(auth_toml("500ms", "100ms")));
  TempRole role("change", "pw-before");
  {
    Pg before(proxy_->spec(role.name(), "pw-before"));
    ASSERT_TRUE(before.ok()) << before.error();
    EXPECT_EQ(before.scalar("SELECT 1"), "1");
  }
  superuser().must("ALTER ROLE " + role.name() + " PASSWORD 'pw-after'");
  std::string last;
  EXPECT_TRUE(wait_until([&] { Pg p(proxy_->spec(role.name(), "pw-after")); last = p.error(); return p.ok(); },
                         Millis(10000), Millis(100)))
      << last;
  // New server logins too: the server connections of before were made with the old keys.
  superuser().exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '" + role.name() + "'");
  EXPECT_TRUE(wait_until(
      [&] {
        Pg p(proxy_->spec(role.name(), "pw-after"));
        auto r = p.exec("SELECT current_user");
        last = r.ok() ? "" : r.error();
        return r.ok() && r.value(0, 0) == role.name();
      },
      Millis(10000), Millis(100)))
      << last;
  Pg old(proxy_->spec(role.name(), "pw-before"));
  EXPECT_FALSE(old.ok());
}

// A [[users]] entry with only the role's SCRAM verifier (copied from pg_authid) and no server password:
// the proxy logs in to the server with the client's keys. auth_query is off here.
TEST_F(AuthQueryTest, AVerifierOnlyUserLogsInThroughPassThrough) {
  TempRole role("verifier", "verifier-pw");
  ProxyOptions o;
  o.workers = 1;
  o.users.push_back({role.name(), role.verifier(), "", false});
  start_proxy(o);
  Pg a(proxy_->spec(role.name(), "verifier-pw"));
  ASSERT_TRUE(a.ok()) << a.error();
  EXPECT_EQ(a.scalar("SELECT current_user"), role.name());
  EXPECT_EQ(a.scalar("SELECT count(*) FROM pg_class WHERE relname = 'pg_class'"), "1");
  Pg wrong(proxy_->spec(role.name(), "not-it"));
  EXPECT_FALSE(wrong.ok());
}

// The server's verifier is not the one in the config (another salt): the server login fails and says so.
TEST_F(AuthQueryTest, AServerWithAnotherVerifierIsReportedAsSuch) {
  TempRole role("differs", "same-pw");
  const std::string configured = role.verifier();
  superuser().must("ALTER ROLE " + role.name() + " PASSWORD 'same-pw'");  // a new salt
  ProxyOptions o;
  o.workers = 1;
  o.query_wait_timeout = "3s";
  o.server_connect_timeout = "3s";
  o.users.push_back({role.name(), configured, "", false});
  start_proxy(o);
  Pg a(proxy_->spec(role.name(), "same-pw"));
  EXPECT_FALSE(a.ok() && a.exec("SELECT 1").ok());
  EXPECT_TRUE(wait_until(
      [&] { return proxy_->log_tail().find("differs from the one the proxy authenticated against") != std::string::npos; },
      Millis(5000)))
      << proxy_->log_tail();
}

// Over TLS with channel binding required: the client's proof covers its c= (the binding data), and the
// key recovered from it still logs in to the server.
TEST_F(AuthQueryTest, ChannelBindingOverTlsStillPassesThrough) {
  const std::string dir = "/tmp/pgs-aq-tls-" + std::to_string(getpid());
  RunResult made = run_program(
      {"bash", "-c",
       "set -e; mkdir -p '" + dir + "'; cd '" + dir +
           "'; openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
           "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout server.key -out server.crt"},
      {}, Millis(30000));
  ASSERT_EQ(made.exit_code, 0) << made.describe();
  ProxyOptions o = options();
  o.tls_toml = "client_tls = \"allow\"\ncert_file = \"" + dir + "/server.crt\"\nkey_file = \"" + dir + "/server.key\"\n";
  start_proxy(o);
  TempRole role("bind", "bind-pw");
  ConnSpec s = proxy_->spec(role.name(), "bind-pw");
  s.extra["sslmode"] = "require";
  s.extra["channel_binding"] = "require";
  Pg a(s);
  ASSERT_TRUE(a.ok()) << a.error();
  EXPECT_EQ(a.scalar("SELECT current_user"), role.name());
  std::filesystem::remove_all(dir);
}

// A listening socket that is never accepted: the kernel completes the TCP handshake, nothing answers.
class SilentServer {
 public:
  SilentServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 64) != 0) {
      throw std::runtime_error("silent server: bind/listen failed");
    }
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~SilentServer() { ::close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// The lookup's server does not answer: the worker's loop goes on serving others (the admin console
// here, on the same single worker) while the lookup waits, and the looked-up login ends with 08006
// at the lookup's deadline instead of hanging.
TEST_F(AuthQueryTest, APendingLookupBlocksNobodyAndASilentServerIs08006) {
  SilentServer silent;
  ProxyOptions o = options(auth_toml("60s", "100ms", "2s"));
  o.primary_port = silent.port();
  // A verifier, so that the harness's readiness check only pings (a login would wait for the silent server).
  o.users = {{kAdminUser, superuser().scalar("SELECT rolpassword FROM pg_authid WHERE rolname = 'pgsidecar'"), "",
              true}};
  start_proxy(o);
  RawConn pending(kHost, proxy_->port());
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(pending.send(startup_packet({{"user", "pgs_aq_someone"}, {"database", kDatabase}})));
  Pg admin(proxy_->spec(kAdminUser, kAdminPassword, kAdminDatabase));
  ASSERT_TRUE(admin.ok()) << admin.error();
  EXPECT_TRUE(admin.exec("SHOW POOLS").ok());
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(1500));  // before the deadline
  // A client that speaks before it was asked anything (a password pushed while the lookup runs) is cut off.
  RawConn eager(kHost, proxy_->port());
  ASSERT_TRUE(eager.send(startup_packet({{"user", "pgs_aq_eager"}, {"database", kDatabase}}) +
                         typed_message('p', cstr("pushed-password"))));
  auto e = eager.read_message(Millis(10000));
  ASSERT_TRUE(e.has_value());
  ASSERT_EQ(e->type, 'E');
  EXPECT_EQ(parse_error_fields(e->body).sqlstate(), "08P01");
  auto m = pending.read_message(Millis(10000));
  ASSERT_TRUE(m.has_value());
  ASSERT_EQ(m->type, 'E');
  EXPECT_EQ(parse_error_fields(m->body).sqlstate(), "08006");
}

// The lookup's own libpq connection follows the primary's server_tls like every connection the proxy
// opens: with verify-full and a CA that did not sign the server's certificate it is refused, so the
// login fails with 08006 as a failed lookup (libpq's default, sslmode=prefer, would have encrypted without
// checking the certificate; the login would then fail only later, at the server login).
TEST_F(AuthQueryTest, TheLookupVerifiesTheServerCertificateAsServerTlsSays) {
  test::TestCertificates other("aq-other-ca");
  ASSERT_TRUE(other.error.empty()) << other.error;
  TempRole role("tls", "tls-pw");
  ProxyOptions o = options();
  o.server_tls_toml = "server_tls = \"verify-full\"\nserver_tls_ca_file = \"" + other.ca + "\"\n";
  // A verifier as the first user's password: readiness only pings (no server login can succeed here).
  o.users = {{kFakeUser, kFakeVerifier, kFakePassword, false}};
  start_proxy(o);
  LoginOutcome out = raw_login(role.name(), "tls-pw");
  ASSERT_FALSE(out.ok) << "logged in though the lookup's server certificate does not verify";
  ASSERT_TRUE(out.error.has_value()) << out.describe();
  EXPECT_EQ(out.error->sqlstate(), "08006") << out.describe();
  EXPECT_NE(out.describe().find("could not look up the password"), std::string::npos)
      << "the lookup was not what failed: " << out.describe();
}

}  // namespace
}  // namespace pgs::it
