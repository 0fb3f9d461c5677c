// The client role of the proxy's TLS (proxy/net/tls.h; issue 13, item 2), without sockets: a client
// TlsSession (the proxy to a server) and a server TlsSession (standing in for Postgres) hand their
// records to each other in memory. Certificates are made once per run with the openssl command.
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "proxy/net/tls.h"
#include "tests/support/process.h"

namespace pgs::proxy {
namespace {

struct Pki {
  std::string dir, ca, other_ca, cert, key, error;
  ~Pki() {
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
};

// A CA and a server certificate (SAN DNS:localhost, IP:127.0.0.1) it signed, and an unrelated CA.
const Pki& pki() {
  static Pki p = [] {
    Pki out;
    out.dir = "/tmp/pgs-tls-client-" + std::to_string(getpid());
    out.ca = out.dir + "/ca.crt";
    out.other_ca = out.dir + "/other.crt";
    out.cert = out.dir + "/server.crt";
    out.key = out.dir + "/server.key";
    std::string script =
        "set -e; mkdir -p '" + out.dir + "'; cd '" + out.dir + "'\n"
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.crt\n"
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout other.key -out other.crt\n"
        "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr\n"
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf\n"
        "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf "
        "-out server.crt\n";
    test::RunResult r = test::run_program({"bash", "-c", script}, {}, test::Millis(30000));
    if (r.exit_code != 0) out.error = r.describe();
    return out;
  }();
  return p;
}

std::shared_ptr<const TlsContext> server_context() {
  conf::TlsConfig c;
  c.client_tls = conf::ClientTls::allow;
  c.cert_file = pki().cert;
  c.key_file = pki().key;
  std::string error;
  auto ctx = TlsContext::load(c, error);
  EXPECT_NE(ctx, nullptr) << error;
  return ctx;
}

std::shared_ptr<const TlsContext> client_context(conf::ServerTls mode, const std::string& ca) {
  conf::ServerEndpoint node;
  node.server_tls = mode;
  node.server_tls_ca_file = ca;
  std::string error;
  auto ctx = TlsContext::load_client(node, error);
  EXPECT_NE(ctx, nullptr) << error;
  return ctx;
}

// Runs a handshake between the two in memory, then sends "hello" from the client. "" when the server
// read it; else the client's (or the server's) error.
std::string handshake(conf::ServerTls mode, const std::string& ca, const std::string& host) {
  TlsSession server(server_context());
  TlsSession client(client_context(mode, ca), TlsPeer{host, mode == conf::ServerTls::verify_full});
  if (client.start_handshake() != TlsSession::Status::ok) return "start: " + client.error();
  uint8_t buf[16384];
  std::string got;
  for (int round = 0; round < 10; ++round) {
    std::string wire;
    client.take_output(wire);
    server.feed(reinterpret_cast<const uint8_t*>(wire.data()), wire.size());
    size_t n = 0;
    if (server.read_plain(buf, sizeof buf, n) != TlsSession::Status::ok) {
      wire.clear();
      server.take_output(wire);  // the alert
      client.feed(reinterpret_cast<const uint8_t*>(wire.data()), wire.size());
      (void)client.read_plain(buf, sizeof buf, n);
      return "server: " + server.error() + " / client: " + client.error();
    }
    got.append(reinterpret_cast<const char*>(buf), n);
    if (got == "hello") return "";
    wire.clear();
    server.take_output(wire);
    client.feed(reinterpret_cast<const uint8_t*>(wire.data()), wire.size());
    if (client.read_plain(buf, sizeof buf, n) != TlsSession::Status::ok) return client.error();
    if (client.handshake_done() && got.empty() && client.write_plain("hello") != TlsSession::Status::ok) {
      return client.error();
    }
  }
  return "no progress";
}

class TlsClientTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(pki().error, ""); }
};

TEST_F(TlsClientTest, VerifyFullAcceptsTheNamesAndAddressesOfTheCertificate) {
  EXPECT_EQ(handshake(conf::ServerTls::verify_full, pki().ca, "localhost"), "");
  EXPECT_EQ(handshake(conf::ServerTls::verify_full, pki().ca, "127.0.0.1"), "");
}

TEST_F(TlsClientTest, VerifyFullRefusesAHostTheCertificateDoesNotName) {
  std::string e = handshake(conf::ServerTls::verify_full, pki().ca, "db.example.com");
  EXPECT_NE(e.find("hostname mismatch"), std::string::npos) << e;
  e = handshake(conf::ServerTls::verify_full, pki().ca, "10.1.2.3");
  EXPECT_NE(e.find("IP address mismatch"), std::string::npos) << e;
}

TEST_F(TlsClientTest, VerifyCaChecksTheChainOnly) {
  EXPECT_EQ(handshake(conf::ServerTls::verify_ca, pki().ca, "db.example.com"), "");
  std::string e = handshake(conf::ServerTls::verify_ca, pki().other_ca, "localhost");
  EXPECT_NE(e.find("certificate verify failed"), std::string::npos) << e;
  EXPECT_NE(e.find("server certificate:"), std::string::npos) << e;
}

TEST_F(TlsClientTest, RequireWithoutCaEncryptsWithoutAuthenticating) {
  EXPECT_EQ(handshake(conf::ServerTls::require, "", "db.example.com"), "");
  // With a CA file, require checks the chain (as libpq does when a root certificate is there).
  EXPECT_NE(handshake(conf::ServerTls::require, pki().other_ca, "localhost"), "");
}

TEST_F(TlsClientTest, ContextLoading) {
  conf::ServerEndpoint node;
  std::string error;
  EXPECT_EQ(TlsContext::load_client(node, error), nullptr);  // disable: no context, no error
  EXPECT_EQ(error, "");
  node.name = "primary";
  node.server_tls = conf::ServerTls::verify_full;
  node.server_tls_ca_file = pki().dir + "/missing.crt";
  EXPECT_EQ(TlsContext::load_client(node, error), nullptr);
  EXPECT_NE(error.find("primary.server_tls_ca_file " + node.server_tls_ca_file), std::string::npos) << error;
}

}  // namespace
}  // namespace pgs::proxy
