// send_cancel_request against a fake server on loopback: the outcome that decides whether the
// canceled server may serve the next client (delivered when the server closes the connection after
// the packet, not_sent without a connection, unknown when no close comes before the deadline), and the
// cancel to a TLS server connection (issue 13): SSLRequest, a verified handshake, the packet inside TLS;
// never the packet in plaintext unless server_tls is "prefer".
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <openssl/ssl.h>

#include <array>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "proxy/net/resolver.h"
#include "proxy/net/tls.h"
#include "proxy/pool/cancel.h"
#include "tests/support/certs.h"

namespace pgs::proxy {
namespace {

using std::chrono::milliseconds;

// A listening socket on 127.0.0.1, any port.
struct Listener {
  int fd = -1;
  uint16_t port = 0;
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd, 4) != 0) return;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~Listener() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads exactly 16 bytes (a CancelRequest) from `fd`; false on EOF or error.
bool read_packet(int fd, std::array<unsigned char, 16>& out) {
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::recv(fd, out.data() + got, out.size() - got, 0);
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  return true;
}

uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

CancelTarget plain_target(uint16_t port) {
  CancelTarget t;
  t.address = *numeric_address("127.0.0.1", port);
  t.host = "localhost";
  return t;
}

// Runs one request on a fresh loop until every handle is closed; the outcome reported.
std::optional<CancelOutcome> run(const CancelTarget& target, milliseconds deadline) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::optional<CancelOutcome> outcome;
  int calls = 0;
  send_cancel_request(&loop, target, 4242, 77, deadline, [&](CancelOutcome o) {
    outcome = o;
    ++calls;
  });
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0) << "a handle was left open";
  EXPECT_EQ(calls, 1);
  return outcome;
}

std::optional<CancelOutcome> run(uint16_t port, milliseconds deadline) { return run(plain_target(port), deadline); }

TEST(CancelRequest, DeliveredWhenTheServerClosesAfterThePacket) {
  Listener l;
  ASSERT_NE(l.port, 0);
  std::array<unsigned char, 16> packet{};
  bool read_ok = false;
  std::thread server([&] {
    int c = ::accept(l.fd, nullptr, nullptr);
    read_ok = read_packet(c, packet);
    ::close(c);  // what Postgres's cancel child does once it has signalled the backend
  });
  auto outcome = run(l.port, milliseconds(10000));
  server.join();
  ASSERT_TRUE(read_ok);
  EXPECT_EQ(be32(&packet[0]), 16u);
  EXPECT_EQ(be32(&packet[4]), 80877102u);  // the CancelRequest code
  EXPECT_EQ(be32(&packet[8]), 4242u);
  EXPECT_EQ(be32(&packet[12]), 77u);
  EXPECT_EQ(outcome, CancelOutcome::delivered);
}

TEST(CancelRequest, NotSentWhenNothingListens) {
  uint16_t port;
  {
    Listener l;  // a port that was free a moment ago, closed again
    port = l.port;
  }
  EXPECT_EQ(run(port, milliseconds(10000)), CancelOutcome::not_sent);
}

TEST(CancelRequest, UnknownWhenTheServerKeepsTheConnectionOpenPastTheDeadline) {
  Listener l;
  ASSERT_NE(l.port, 0);
  int accepted = -1;
  std::thread server([&] { accepted = ::accept(l.fd, nullptr, nullptr); });
  auto outcome = run(l.port, milliseconds(200));
  server.join();
  if (accepted >= 0) ::close(accepted);
  EXPECT_EQ(outcome, CancelOutcome::unknown);
}

TEST(CancelRequest, NotSentWithoutAnAddress) {
  CancelTarget t;  // AF_UNSPEC: the server connection never reached an address
  t.host = "localhost";
  EXPECT_EQ(run(t, milliseconds(1000)), CancelOutcome::not_sent);
}

// ---- over TLS ----

struct Pki {
  test::TestCertificates main{"cancel-a"};
  test::TestCertificates other{"cancel-b"};
};

const Pki& pki() {
  static Pki p;
  return p;
}

CancelTarget tls_target(uint16_t port, conf::ServerTls mode, const std::string& ca, const std::string& host) {
  conf::ServerEndpoint node;
  node.server_tls = mode;
  node.server_tls_ca_file = ca;
  std::string error;
  CancelTarget t = plain_target(port);
  t.host = host;
  t.tls = TlsContext::load_client(node, error);
  EXPECT_NE(t.tls, nullptr) << error;
  t.verify_host = mode == conf::ServerTls::verify_full;
  t.plaintext_ok = mode == conf::ServerTls::prefer;
  return t;
}

// What a Postgres that speaks TLS saw of one cancel connection.
struct Seen {
  bool ssl_request = false;
  bool handshake = false;
  std::string plain;  // bytes after the answer: the packet, decrypted when TLS was set up
};

// Accepts one connection: reads the 8-byte SSLRequest, answers `answer`; on 'S' runs the TLS handshake
// (blocking OpenSSL on the socket) and reads the 16-byte packet inside it; on 'N', reads it in plaintext.
// Then closes (TLS: close_notify first, as Postgres's backend does at exit).
Seen serve_one(int listen_fd, char answer) {
  Seen seen;
  int c = ::accept(listen_fd, nullptr, nullptr);
  if (c < 0) return seen;
  timeval tv{5, 0};
  ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::array<unsigned char, 16> buf{};
  size_t got = 0;
  while (got < 8) {
    ssize_t n = ::recv(c, buf.data() + got, 8 - got, 0);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  seen.ssl_request = got == 8 && be32(&buf[0]) == 8u && be32(&buf[4]) == 80877103u;
  if (!seen.ssl_request) {
    seen.plain.assign(reinterpret_cast<const char*>(buf.data()), got);
    ::close(c);
    return seen;
  }
  ::send(c, &answer, 1, MSG_NOSIGNAL);
  if (answer == 'S') {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate_chain_file(ctx, pki().main.cert.c_str());
    SSL_CTX_use_PrivateKey_file(ctx, pki().main.key.c_str(), SSL_FILETYPE_PEM);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, c);
    if (SSL_accept(ssl) == 1) {
      seen.handshake = true;
      char p[16];
      int n = SSL_read(ssl, p, sizeof p);
      if (n > 0) seen.plain.assign(p, static_cast<size_t>(n));
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
  } else {
    char p[16];
    ssize_t n = ::recv(c, p, sizeof p, MSG_WAITALL);
    if (n > 0) seen.plain.assign(p, static_cast<size_t>(n));
  }
  ::close(c);
  return seen;
}

std::string cancel_packet() {
  const unsigned char p[16] = {0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0x10, 0x92, 0, 0, 0, 77};
  return std::string(reinterpret_cast<const char*>(p), sizeof p);
}

class CancelOverTls : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(pki().main.error + pki().other.error, ""); }
};

TEST_F(CancelOverTls, ThePacketGoesInsideAVerifiedTlsSession) {
  for (const char* host : {"localhost", "127.0.0.1"}) {  // verify-full by the name, and by the address
    SCOPED_TRACE(host);
    Listener l;
    Seen seen;
    std::thread server([&] { seen = serve_one(l.fd, 'S'); });
    auto outcome = run(tls_target(l.port, conf::ServerTls::verify_full, pki().main.ca, host), milliseconds(10000));
    server.join();
    EXPECT_TRUE(seen.ssl_request);
    EXPECT_TRUE(seen.handshake);
    EXPECT_EQ(seen.plain, cancel_packet());
    EXPECT_EQ(outcome, CancelOutcome::delivered);  // the close_notify and the close: delivered
  }
}

TEST_F(CancelOverTls, ACertificateThatDoesNotVerifyGetsNoPacket) {
  struct Case {
    const char* what;
    std::string ca;
    const char* host;
  };
  for (const Case& c : {Case{"another authority", pki().other.ca, "localhost"},
                        Case{"another name", pki().main.ca, "db.example.com"}}) {
    SCOPED_TRACE(c.what);
    Listener l;
    Seen seen;
    std::thread server([&] { seen = serve_one(l.fd, 'S'); });
    auto outcome = run(tls_target(l.port, conf::ServerTls::verify_full, c.ca, c.host), milliseconds(10000));
    server.join();
    EXPECT_FALSE(seen.handshake);
    EXPECT_EQ(seen.plain, "");
    EXPECT_EQ(outcome, CancelOutcome::not_sent);
  }
}

TEST_F(CancelOverTls, AServerAnsweringNGetsThePacketInPlaintextOnlyUnderPrefer) {
  for (auto mode : {conf::ServerTls::require, conf::ServerTls::verify_full, conf::ServerTls::prefer}) {
    SCOPED_TRACE(std::string(conf::to_string(mode)));
    Listener l;
    Seen seen;
    std::thread server([&] { seen = serve_one(l.fd, 'N'); });
    auto outcome = run(tls_target(l.port, mode, pki().main.ca, "localhost"), milliseconds(10000));
    server.join();
    EXPECT_TRUE(seen.ssl_request);
    if (mode == conf::ServerTls::prefer) {
      EXPECT_EQ(seen.plain, cancel_packet());
      EXPECT_EQ(outcome, CancelOutcome::delivered);
    } else {
      EXPECT_EQ(seen.plain, "");
      EXPECT_EQ(outcome, CancelOutcome::not_sent);
    }
  }
}

// A server that accepts and then says nothing to the SSLRequest: the deadline ends it, and since the
// packet never left, the outcome is not_sent (the server may serve the next client).
TEST_F(CancelOverTls, NoAnswerToTheTlsRequestIsNotSentAtTheDeadline) {
  Listener l;
  int accepted = -1;
  std::thread server([&] { accepted = ::accept(l.fd, nullptr, nullptr); });
  auto outcome = run(tls_target(l.port, conf::ServerTls::require, "", "localhost"), milliseconds(300));
  server.join();
  if (accepted >= 0) ::close(accepted);
  EXPECT_EQ(outcome, CancelOutcome::not_sent);
}

}  // namespace
}  // namespace pgs::proxy
