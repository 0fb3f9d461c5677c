// TLS to clients (issue 13, item 1): a CA and a server certificate for localhost/127.0.0.1 are made
// per test run with the openssl command; the proxy answers SSLRequest 'S' and speaks TLS over libuv.
// Real clients: psql and libpq with sslmode=require and verify-full, psycopg2 and psycopg 3 with
// verify-full (a 20 MB parameter both ways), pgbench; a cancel from a TLS client; "require" refuses
// plaintext with 28000 but serves the (plaintext) CancelRequest; bytes sent after an SSLRequest and
// before the handshake are refused (CVE-2021-23222); "disable" answers 'N'.
#include <unistd.h>

#include <fstream>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/support/certs.h"
#include "tests/support/raw_client.h"

namespace pgs::it {
namespace {

using Clock = std::chrono::steady_clock;

// A CA and a server certificate (SAN localhost, 127.0.0.1), made once per process.
using Certificates = test::TestCertificates;

const Certificates& certificates() {
  static Certificates c("a");
  return c;
}

class TlsTest : public ProxyTest {
 protected:
  void SetUp() override {
    ProxyTest::SetUp();
    if (is_direct()) GTEST_SKIP() << "tests the pgsidecar process";
    ASSERT_EQ(certificates().error, "");
  }
  static ProxyOptions tls_options(const std::string& mode, const Certificates& c = certificates()) {
    ProxyOptions o;
    o.tls_toml = "client_tls = \"" + mode + "\"\ncert_file = \"" + c.cert + "\"\nkey_file = \"" + c.key + "\"\n";
    return o;
  }
  Proxy& start_tls(const std::string& mode) { return start_proxy(tls_options(mode)); }
  // libpq connection string through the proxy with `sslmode` (verify-full checks "localhost").
  static std::string conninfo(const Proxy& p, const std::string& sslmode, const std::string& ca = certificates().ca) {
    return "host=localhost port=" + std::to_string(p.port()) + " user=" + kUser + " password=" + kPassword +
           " dbname=" + kDatabase + " sslmode=" + sslmode + " sslrootcert=" + ca + " connect_timeout=10";
  }
};

TEST_F(TlsTest, PsqlAndLibpqWithRequireAndVerifyFull) {
  Proxy& p = start_tls("allow");
  for (const char* mode : {"require", "verify-ca", "verify-full"}) {
    SCOPED_TRACE(mode);
    RunResult r = run_psql(conninfo(p, mode), "\\conninfo\nSELECT 'over tls';\n");
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.out.find("SSL connection (protocol: TLSv1."), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find("over tls"), std::string::npos) << r.describe();
  }
  Pg libpq(conninfo(p, "verify-full"));
  ASSERT_TRUE(libpq.ok()) << libpq.error();
  EXPECT_EQ(PQsslInUse(libpq.get()), 1);
  EXPECT_EQ(libpq.scalar("SELECT md5(string_agg(repeat('x', 1000) || g, '')) FROM generate_series(1, 20000) g"),
            Pg(ConnSpec{}).scalar("SELECT md5(string_agg(repeat('x', 1000) || g, '')) FROM generate_series(1, 20000) g"))
      << "a 20 MB result over TLS";
  // "allow": a client that does not ask stays in plaintext.
  Pg plain(conninfo(p, "disable"));
  ASSERT_TRUE(plain.ok()) << plain.error();
  EXPECT_EQ(PQsslInUse(plain.get()), 0);
  EXPECT_EQ(plain.scalar("SELECT 'plain'"), "plain");
}

// Over TLS the proxy offers SCRAM-SHA-256-PLUS: libpq with channel_binding=require logs in (bound to
// the proxy's certificate); without TLS there is nothing to bind to and libpq refuses to go on.
TEST_F(TlsTest, ScramChannelBindingOverTls) {
  Proxy& p = start_tls("allow");
  Pg bound(conninfo(p, "verify-full") + " channel_binding=require");
  ASSERT_TRUE(bound.ok()) << bound.error();
  EXPECT_EQ(bound.scalar("SELECT 'bound'"), "bound");
  Pg plain(conninfo(p, "disable") + " channel_binding=require");
  EXPECT_FALSE(plain.ok());
  Pg unbound(conninfo(p, "require") + " channel_binding=disable");
  ASSERT_TRUE(unbound.ok()) << unbound.error();
}

TEST_F(TlsTest, PsycopgVerifyFullWithATwentyMegabyteParameter) {
  Proxy& p = start_tls("allow");
  std::string py =
      "import hashlib, sys, psycopg2, psycopg\n"
      "dsn = sys.argv[1]\n"
      "blob = b'z' * (20 * 1024 * 1024)\n"
      "c = psycopg2.connect(dsn)\n"
      "cur = c.cursor(); cur.execute('SELECT length(%s::bytea), md5(%s::bytea)', (blob, blob))\n"
      "n, h = cur.fetchone(); assert n == len(blob) and h == hashlib.md5(blob).hexdigest(), (n, h)\n"
      "with psycopg.connect(dsn) as c3:\n"
      "    assert c3.info.pgconn.ssl_in_use\n"
      "    assert c3.execute('SELECT %s::int + 1', (41,)).fetchone()[0] == 42\n"
      "print('psycopg ok')\n";
  RunResult r = run_program({"/usr/bin/python3", "-c", py, conninfo(p, "verify-full")}, {}, Millis(60000));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("psycopg ok"), std::string::npos) << r.describe();
}

// node-postgres with the CA and hostname checked (rejectUnauthorized).
TEST_F(TlsTest, NodePostgresVerifiesTheCertificate) {
  const std::string clients = PGS_CLIENTS_DIR;
  if (access((clients + "/node_modules/pg/package.json").c_str(), R_OK) != 0) {
    GTEST_SKIP() << "tests/clients/node_modules is missing: run ./dev test (npm ci there)";
  }
  Proxy& p = start_tls("require");
  std::string js =
      "const { Client } = require('pg'); const fs = require('fs');\n"
      "(async () => {\n"
      "  const c = new Client({ host: 'localhost', port: +process.argv[1], user: process.argv[2],\n"
      "    password: process.argv[3], database: process.argv[4],\n"
      "    ssl: { ca: fs.readFileSync(process.argv[5]), rejectUnauthorized: true } });\n"
      "  await c.connect();\n"
      "  const r = await c.query('SELECT $1::text AS v', ['node over tls']);\n"
      "  console.log(r.rows[0].v); await c.end();\n"
      "})().catch(e => { console.error(e.message); process.exit(1); });\n";
  RunResult r = run_program({"node", "-e", js, std::to_string(p.port()), kUser, kPassword, kDatabase, certificates().ca},
                            {{"NODE_PATH", clients + "/node_modules"}}, Millis(30000));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("node over tls"), std::string::npos) << r.describe();
}

TEST_F(TlsTest, PgbenchPreparedOverTls) {
  Proxy& p = start_tls("require");
  const std::string script = p.dir() + "/tls.sql";  // no pgbench tables needed
  std::ofstream(script) << "\\set n random(1, 1000)\nSELECT :n::int + 1, repeat('t', 2000);\n";
  RunResult r = run_program({"pgbench", "-n", "-c", "4", "-j", "2", "-t", "200", "-M", "prepared", "-f", script,
                             "-d", conninfo(p, "require")},
                            {}, Millis(60000));
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("number of failed transactions: 0"), std::string::npos) << r.describe();
}

// "require": plaintext logins get 28000; a TLS client's cancel (libpq sends it in plaintext) works.
TEST_F(TlsTest, RequireRefusesPlaintextButServesCancels) {
  Proxy& p = start_tls("require");
  Pg plain(conninfo(p, "disable"));
  EXPECT_FALSE(plain.ok());
  EXPECT_NE(plain.error().find("TLS is required"), std::string::npos) << plain.error();
  Pg tls(conninfo(p, "require"));
  ASSERT_TRUE(tls.ok()) << tls.error();
  ASSERT_EQ(PQsendQuery(tls.get(), "SELECT pg_sleep(30) /* it-tls-cancel */"), 1);
  ASSERT_TRUE(wait_query_running("it-tls-cancel", Millis(5000)));
  auto t0 = Clock::now();
  PGcancel* cancel = PQgetCancel(tls.get());
  char err[256] = {0};
  EXPECT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
  PQfreeCancel(cancel);
  PgResult r(PQgetResult(tls.get()));
  PQclear(PQgetResult(tls.get()));
  EXPECT_EQ(r.sqlstate(), "57014") << r.error();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(tls.scalar("SELECT 'after the cancel'"), "after the cancel");
}

// Bytes after the SSLRequest, before the handshake, would be read as if they came over TLS.
TEST_F(TlsTest, DataAfterTheSslRequestIsRefused) {
  Proxy& p = start_tls("allow");
  RawConn c(p.host(), p.port());
  std::string ssl_request = be32(8) + be32(80877103);
  ASSERT_TRUE(c.send(ssl_request + startup_packet({{"user", kUser}, {"database", kDatabase}})));
  auto m = c.read_message(Millis(5000));
  ASSERT_TRUE(m.has_value()) << "no answer";
  ASSERT_EQ(m->type, 'E');
  EXPECT_EQ(parse_error_fields(m->body).sqlstate(), "08P01");
  EXPECT_NE(parse_error_fields(m->body).message().find("unencrypted data after SSL request"), std::string::npos);
}

// "disable" (the default): SSLRequest gets 'N'; sslmode=prefer carries on in plaintext, require fails.
TEST_F(TlsTest, DisabledAnswersN) {
  Proxy& p = start_proxy();
  Pg prefer(conninfo(p, "prefer"));
  ASSERT_TRUE(prefer.ok()) << prefer.error();
  EXPECT_EQ(PQsslInUse(prefer.get()), 0);
  Pg require(conninfo(p, "require"));
  EXPECT_FALSE(require.ok());
  EXPECT_NE(require.error().find("does not support SSL"), std::string::npos) << require.error();
}

// SIGHUP reads [tls] again: a new certificate (another CA here) serves new connections, a running TLS
// session carries on, client_tls may change; a certificate that cannot be loaded refuses the reload.
TEST_F(TlsTest, ReloadSwapsTheCertificateAndTheMode) {
  Proxy& p = start_tls("allow");
  Pg running(conninfo(p, "verify-full"));
  ASSERT_TRUE(running.ok()) << running.error();
  static const Certificates second("b");
  ASSERT_EQ(second.error, "");
  p.rewrite_config(tls_options("require", second));
  p.sighup();
  ASSERT_TRUE(wait_until([&] { return Pg(conninfo(p, "verify-full", second.ca)).ok(); }, Millis(5000)))
      << Pg(conninfo(p, "verify-full", second.ca)).error();
  EXPECT_FALSE(Pg(conninfo(p, "verify-full")).ok()) << "the old CA still verifies the new certificate";
  Pg plain(conninfo(p, "disable"));
  EXPECT_NE(plain.error().find("TLS is required"), std::string::npos) << plain.error();
  EXPECT_EQ(running.scalar("SELECT 'still on the old session'"), "still on the old session");
  ProxyOptions broken = tls_options("require", second);
  broken.tls_toml = "client_tls = \"require\"\ncert_file = \"/nonexistent.crt\"\nkey_file = \"" + second.key + "\"\n";
  p.rewrite_config(broken);
  p.sighup();
  EXPECT_TRUE(wait_until([&] { return p.log_tail().find("reload failed") != std::string::npos; }, Millis(5000)));
  EXPECT_TRUE(Pg(conninfo(p, "verify-full", second.ca)).ok()) << "the running TLS configuration was kept";
}

// A certificate that cannot be loaded stops the start with a message naming the key.
TEST_F(TlsTest, UnreadableCertificateIsAStartError) {
  ProxyOptions o;
  o.tls_toml = "client_tls = \"allow\"\ncert_file = \"/nonexistent/server.crt\"\nkey_file = \"" +
               certificates().key + "\"\n";
  EXPECT_THROW(start_proxy(o), std::runtime_error);
}

}  // namespace
}  // namespace pgs::it
