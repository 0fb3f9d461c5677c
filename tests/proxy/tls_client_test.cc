// The client role of the proxy's TLS (proxy/net/tls.h; issue 13, item 2), without sockets: a client
// TlsSession (the proxy to a server) and a server TlsSession (standing in for Postgres) hand their
// records to each other in memory. Certificates are made once per run with the openssl command.
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "proxy/net/tls.h"
#include "tests/support/certs.h"

namespace pgs::proxy {
namespace {

// A CA and a server certificate (SAN DNS:localhost, IP:127.0.0.1) it signed, and an unrelated CA.
struct Pki {
  test::TestCertificates main{"client-a"};
  test::TestCertificates other{"client-b"};
  std::string ca = main.ca, other_ca = other.ca, cert = main.cert, key = main.key, dir = main.dir;
  std::string error = main.error + other.error;
};

const Pki& pki() {
  static Pki p;
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
