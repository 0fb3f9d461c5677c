// TLS over memory BIOs, so that libuv keeps doing all socket I/O and nothing blocks, in both roles:
// as the server to the proxy's clients (issue 13, item 1: the context built from [tls]), as the client
// to Postgres servers (item 2: a node's server_tls and CA file) and to Redis (item 4: [cache] redis_tls).
// Its own library (pgs_tls: OpenSSL and conf only), so that proxy/ and cache/redis/ both use it.
// Ciphertext read from the socket goes in with feed(); plaintext comes out of read_plain(); plaintext to
// send goes in with write_plain(); the ciphertext to put on the socket comes out of take_output().
// Thread affinity: a TlsSession belongs to its connection's loop thread; a TlsContext may be shared by
// every worker (SSL_CTX is safe for concurrent SSL_new) and lives as long as any session made from it.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "conf/config.h"

namespace pgs::tls {

class TlsContext {
 public:
  // TLS 1.2 or later, OpenSSL's default cipher list for those (no RC4, no export, no anonymous suites).
  // nullptr with `error` set when the certificate or key cannot be loaded or do not match.
  static std::shared_ptr<TlsContext> load(const conf::TlsConfig& config, std::string& error);
  // Client side, for a node's server_tls (nullptr and no error for "disable"): TLS 1.2 or later; the
  // certificates of `node.server_tls_ca_file` are the trust anchors when it is set, and then the chain
  // must verify (verify-ca, verify-full, and require or prefer with a CA file, as libpq does). The host
  // name check of verify-full is per session (TlsPeer). nullptr with `error` when the CA file cannot
  // be loaded.
  static std::shared_ptr<TlsContext> load_client(const conf::ServerEndpoint& node, std::string& error);
  // Client side, generic: with `verify`, the chain must lead to a certificate of `ca_file`, or of the
  // system's default trust store when `ca_file` is empty; without, the server is not authenticated.
  // `what` names the setting in `error`.
  static std::shared_ptr<TlsContext> load_client(const std::string& ca_file, bool verify, const std::string& what,
                                                 std::string& error);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  SSL_CTX* get() const { return ctx_; }
  // tls-server-end-point (RFC 5929): the certificate's hash with its signature's digest (SHA-256 for
  // MD5 and SHA-1), as Postgres computes it for SCRAM-SHA-256-PLUS. Empty when the signature algorithm
  // names no digest (Ed25519): channel binding is then not offered.
  const std::string& server_end_point() const { return end_point_; }

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  static std::shared_ptr<TlsContext> make(const SSL_METHOD* method, std::string& error);
  SSL_CTX* ctx_;
  std::string end_point_;
};

// The server a client-side session talks to: its host as configured (a name or an IP address), for SNI
// (names only) and, with `verify_host`, the certificate check (X509_VERIFY_PARAM_set1_host / set1_ip_asc).
struct TlsPeer {
  std::string host;
  bool verify_host = false;
};

class TlsSession {
 public:
  enum class Status : uint8_t { ok, failed };

  explicit TlsSession(std::shared_ptr<const TlsContext> context);  // server side, handshake pending
  // Client side: call start_handshake() for the ClientHello.
  TlsSession(std::shared_ptr<const TlsContext> context, const TlsPeer& peer);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Client side: writes the ClientHello (take it with take_output()).
  Status start_handshake();
  // Ciphertext from the peer.
  void feed(const uint8_t* data, size_t n);
  // Decrypts what it can into [out, out + capacity): the bytes written (0: nothing more until the next
  // feed). Drives the handshake first. `failed` on a handshake or protocol error (see error()).
  Status read_plain(uint8_t* out, size_t capacity, size_t& written);
  // Encrypts `plain` (the handshake must be done: the proxy speaks only after the client did).
  Status write_plain(std::string_view plain);
  // Ciphertext produced so far (handshake messages, records, alerts), appended to `out`.
  void take_output(std::string& out);
  bool handshake_done() const { return SSL_is_init_finished(ssl_) == 1; }
  const std::string& error() const { return error_; }
  // The peer ended the session with close_notify (read_plain then reports `failed`, with no error of
  // the protocol): a clean end.
  bool closed_by_peer() const { return closed_by_peer_; }
  const std::string& channel_binding() const { return context_->server_end_point(); }

 private:
  Status fail(const char* what, int ret);

  std::shared_ptr<const TlsContext> context_;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // owned by ssl_
  BIO* out_ = nullptr;  // owned by ssl_; replaced by take_output() once it grew past kKeepOutputBytes
  static constexpr long kKeepOutputBytes = 64 * 1024;
  std::string error_;
  bool client_ = false;
  bool closed_by_peer_ = false;
};

}  // namespace pgs::tls
