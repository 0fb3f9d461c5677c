// whole_record_buffered (proxy/stream/stream_tls_read.h): the stream leader goes round without waiting on
// its socket only while OpenSSL holds a whole record. A client and a server session over memory BIOs
// (real OpenSSL, the test certificates), so the test decides how many of a record's bytes have arrived.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <string>

#include <gtest/gtest.h>

#include "proxy/stream/stream_tls_read.h"
#include "tests/support/certs.h"

namespace pgs::proxy {
namespace {

// Moves what `from` wrote to its write BIO into `to`'s read BIO, at most `limit` bytes.
size_t shuttle(SSL* from, SSL* to, size_t limit = SIZE_MAX) {
  char buf[16384];
  size_t moved = 0;
  while (moved < limit) {
    int n = BIO_read(SSL_get_wbio(from), buf, static_cast<int>(std::min(sizeof buf, limit - moved)));
    if (n <= 0) break;
    BIO_write(SSL_get_rbio(to), buf, n);
    moved += static_cast<size_t>(n);
  }
  return moved;
}

class TlsRecordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(certs_.error, "");
    server_ctx_ = SSL_CTX_new(TLS_server_method());
    client_ctx_ = SSL_CTX_new(TLS_client_method());
    ASSERT_EQ(SSL_CTX_use_certificate_file(server_ctx_, certs_.cert.c_str(), SSL_FILETYPE_PEM), 1);
    ASSERT_EQ(SSL_CTX_use_PrivateKey_file(server_ctx_, certs_.key.c_str(), SSL_FILETYPE_PEM), 1);
    server_ = SSL_new(server_ctx_);
    client_ = SSL_new(client_ctx_);
    SSL_set_bio(server_, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_bio(client_, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_accept_state(server_);
    SSL_set_connect_state(client_);
    for (int i = 0; i < 20 && !(SSL_is_init_finished(server_) && SSL_is_init_finished(client_)); ++i) {
      SSL_do_handshake(client_);
      shuttle(client_, server_);
      SSL_do_handshake(server_);
      shuttle(server_, client_);
    }
    ASSERT_TRUE(SSL_is_init_finished(client_) && SSL_is_init_finished(server_));
    char sink[64];
    SSL_read(client_, sink, sizeof sink);  // takes the session tickets TLS 1.3 sends after the handshake
    ERR_clear_error();
    SSL_set_read_ahead(client_, 1);  // as read_ahead() sets it on libpq's session
  }
  void TearDown() override {
    SSL_free(client_);
    SSL_free(server_);
    SSL_CTX_free(client_ctx_);
    SSL_CTX_free(server_ctx_);
  }
  // One record from the server, its ciphertext left in the server's write BIO; returns its size.
  size_t server_writes(const std::string& text) {
    EXPECT_EQ(SSL_write(server_, text.data(), static_cast<int>(text.size())), static_cast<int>(text.size()));
    return static_cast<size_t>(BIO_ctrl_pending(SSL_get_wbio(server_)));
  }
  // What one SSL_read gives the client now ("" when it has to wait).
  std::string client_reads() {
    char buf[256];
    int n = SSL_read(client_, buf, sizeof buf);
    ERR_clear_error();
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }

  test::TestCertificates certs_{"tls-record"};
  SSL_CTX* server_ctx_ = nullptr;
  SSL_CTX* client_ctx_ = nullptr;
  SSL* server_ = nullptr;
  SSL* client_ = nullptr;
};

// Part of a record is in OpenSSL's buffer: bytes are pending, but no record is whole, so the loop must
// wait on the socket (going round on it would spin until the rest came). Once the rest came, it is whole.
TEST_F(TlsRecordTest, APartOfARecordIsNotAWholeRecord) {
  const size_t size = server_writes("decoded change");
  ASSERT_GT(size, 10u);
  shuttle(server_, client_, size - 5);
  EXPECT_EQ(client_reads(), "") << "the client's read takes what arrived into OpenSSL's buffer";
  ASSERT_EQ(SSL_has_pending(client_), 1) << "OpenSSL holds the record's first part";
  EXPECT_FALSE(whole_record_buffered(client_));
  shuttle(server_, client_);
  EXPECT_TRUE(whole_record_buffered(client_));
  EXPECT_EQ(client_reads(), "decoded change") << "the check left the record for the read";
  EXPECT_FALSE(whole_record_buffered(client_));
}

// Two records arrived in one read of the socket: after the first is read, the second is whole in
// OpenSSL's buffer, where a poll() of the socket cannot see it.
TEST_F(TlsRecordTest, ASecondRecordReadAheadIsWhole) {
  server_writes("first");
  server_writes("second");
  shuttle(server_, client_);
  EXPECT_EQ(client_reads(), "first");
  EXPECT_TRUE(whole_record_buffered(client_));
  EXPECT_EQ(client_reads(), "second");
  EXPECT_FALSE(whole_record_buffered(client_));
  EXPECT_FALSE(whole_record_buffered(nullptr)) << "plaintext: never";
}

}  // namespace
}  // namespace pgs::proxy
