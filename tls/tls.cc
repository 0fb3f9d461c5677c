#include "tls/tls.h"

#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <algorithm>

namespace pgs::tls {
namespace {

std::string openssl_error(const char* what) {
  std::string out = what;
  unsigned long code = ERR_get_error();
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    out += ": ";
    out += buf;
  }
  ERR_clear_error();
  return out;
}

}  // namespace

// What both roles share: TLS 1.2 or later, no compression, no renegotiation, and no session cache
// (connections are not resumed across sidecar restarts anyway; nothing to bound).
std::shared_ptr<TlsContext> TlsContext::make(const SSL_METHOD* method, std::string& error) {
  SSL_CTX* ctx = SSL_CTX_new(method);
  if (ctx == nullptr) {
    error = openssl_error("SSL_CTX_new");
    return nullptr;
  }
  auto context = std::shared_ptr<TlsContext>(new TlsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  return context;
}

std::shared_ptr<TlsContext> TlsContext::load(const conf::TlsConfig& config, std::string& error) {
  auto context = make(TLS_server_method(), error);
  if (context == nullptr) return nullptr;
  SSL_CTX* ctx = context->ctx_;
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(ctx, config.cert_file.c_str()) != 1) {
    error = openssl_error(("tls.cert_file " + config.cert_file).c_str());
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, config.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = openssl_error(("tls.key_file " + config.key_file).c_str());
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    error = openssl_error("tls.key_file does not match tls.cert_file");
    return nullptr;
  }
  if (X509* cert = SSL_CTX_get0_certificate(ctx)) {
    int md_nid = NID_undef, pk_nid = NID_undef;
    if (OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md_nid, &pk_nid) == 1 && md_nid != NID_undef) {
      const EVP_MD* md = md_nid == NID_md5 || md_nid == NID_sha1 ? EVP_sha256() : EVP_get_digestbynid(md_nid);
      unsigned char hash[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      if (md != nullptr && X509_digest(cert, md, hash, &len) == 1) {
        context->end_point_.assign(reinterpret_cast<const char*>(hash), len);
      }
    }
  }
  return context;
}

std::shared_ptr<TlsContext> TlsContext::load_client(const conf::ServerEndpoint& node, std::string& error) {
  if (node.server_tls == conf::ServerTls::disable) return nullptr;
  // As libpq: the chain is checked whenever a CA file is set.
  return load_client(node.server_tls_ca_file, !node.server_tls_ca_file.empty(), node.name + ".server_tls_ca_file",
                     error);
}

std::shared_ptr<TlsContext> TlsContext::load_client(const std::string& ca_file, bool verify, const std::string& what,
                                                    std::string& error) {
  auto context = make(TLS_client_method(), error);
  if (context == nullptr) return nullptr;
  SSL_CTX* ctx = context->ctx_;
  if (verify) {
    bool loaded = ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx) == 1
                                  : SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) == 1;
    if (!loaded) {
      error = openssl_error((what + " " + (ca_file.empty() ? "(the system's trusted CAs)" : ca_file)).c_str());
      return nullptr;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    // prefer / require without a CA file: encrypted, the server not authenticated (libpq's behaviour).
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  return context;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

TlsSession::TlsSession(std::shared_ptr<const TlsContext> context) : context_(std::move(context)) {
  ssl_ = SSL_new(context_->get());
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  if (ssl_ == nullptr || in_ == nullptr || out_ == nullptr) {
    error_ = openssl_error("SSL_new");
    if (ssl_ != nullptr) SSL_free(ssl_);
    ssl_ = nullptr;
    return;
  }
  BIO_set_mem_eof_return(in_, -1);  // an empty input BIO means "more to come", not end of stream
  SSL_set_bio(ssl_, in_, out_);
  SSL_set_accept_state(ssl_);
}

TlsSession::TlsSession(std::shared_ptr<const TlsContext> context, const TlsPeer& peer)
    : TlsSession(std::move(context)) {
  client_ = true;
  if (ssl_ == nullptr) return;
  SSL_set_connect_state(ssl_);
  in6_addr addr{};
  bool is_ip = inet_pton(AF_INET, peer.host.c_str(), &addr) == 1 || inet_pton(AF_INET6, peer.host.c_str(), &addr) == 1;
  // SNI names a host, never an address (RFC 6066 section 3).
  if (!is_ip && !peer.host.empty()) SSL_set_tlsext_host_name(ssl_, peer.host.c_str());
  if (!peer.verify_host) return;
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, peer.host.c_str())
                 : X509_VERIFY_PARAM_set1_host(param, peer.host.c_str(), peer.host.size());
  if (ok != 1) {
    error_ = openssl_error("cannot check the server certificate against its host");
    SSL_free(ssl_);  // frees both BIOs
    ssl_ = nullptr;
    in_ = out_ = nullptr;
  }
}

TlsSession::Status TlsSession::start_handshake() {
  if (ssl_ == nullptr) return Status::failed;
  int n = SSL_do_handshake(ssl_);
  if (n == 1) return Status::ok;
  int code = SSL_get_error(ssl_, n);
  if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) return Status::ok;
  return fail("TLS handshake", n);
}

TlsSession::~TlsSession() {
  if (ssl_ != nullptr) {
    SSL_free(ssl_);  // frees both BIOs
  } else {
    BIO_free(in_);
    BIO_free(out_);
  }
}

void TlsSession::feed(const uint8_t* data, size_t n) {
  if (ssl_ != nullptr && n > 0) BIO_write(in_, data, static_cast<int>(n));
}

TlsSession::Status TlsSession::fail(const char* what, int ret) {
  int code = SSL_get_error(ssl_, ret);
  if (code == SSL_ERROR_ZERO_RETURN) {
    closed_by_peer_ = true;
    error_ = client_ ? "the server closed the TLS session" : "the client closed the TLS session";
  } else {
    error_ = openssl_error(what);
    // A certificate that did not verify: say why ("unable to get local issuer certificate", "hostname
    // mismatch", "IP address mismatch", "certificate has expired").
    if (long v = SSL_get_verify_result(ssl_); client_ && v != X509_V_OK) {
      error_ += std::string(" (server certificate: ") + X509_verify_cert_error_string(v) + ")";
    }
  }
  return Status::failed;
}

TlsSession::Status TlsSession::read_plain(uint8_t* out, size_t capacity, size_t& written) {
  written = 0;
  if (ssl_ == nullptr) return Status::failed;
  while (written < capacity) {
    int n = SSL_read(ssl_, out + written, static_cast<int>(std::min<size_t>(capacity - written, 1 << 30)));
    if (n > 0) {
      written += static_cast<size_t>(n);
      continue;
    }
    int code = SSL_get_error(ssl_, n);
    if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) return Status::ok;
    return fail(handshake_done() ? "TLS read" : "TLS handshake", n);
  }
  return Status::ok;
}

TlsSession::Status TlsSession::write_plain(std::string_view plain) {
  if (ssl_ == nullptr) return Status::failed;
  while (!plain.empty()) {
    int n = SSL_write(ssl_, plain.data(), static_cast<int>(std::min<size_t>(plain.size(), 1 << 30)));
    if (n <= 0) return fail("TLS write", n);  // memory BIOs never ask to wait
    plain.remove_prefix(static_cast<size_t>(n));
  }
  return Status::ok;
}

void TlsSession::take_output(std::string& out) {
  if (out_ == nullptr) return;
  const size_t pending = BIO_ctrl_pending(out_);
  if (pending == 0) return;
  // BIO_read, not BIO_get_mem_data + BIO_reset: a reset memsets the whole capacity, on every flush of
  // every TLS connection. Reading leaves the BIO empty for the next ciphertext.
  const size_t at = out.size();
  out.resize(at + pending);
  const int n = BIO_read(out_, out.data() + at, static_cast<int>(pending));
  out.resize(at + static_cast<size_t>(std::max(n, 0)));
  // A memory BIO keeps the capacity its largest write needed: after a large message the next
  // ciphertext goes to a new BIO, so the connection's memory falls back, as its outbox does.
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(out_, &mem);
  if (mem != nullptr && mem->max > kKeepOutputBytes && BIO_ctrl_pending(out_) == 0) {
    if (BIO* fresh = BIO_new(BIO_s_mem())) {
      SSL_set0_wbio(ssl_, fresh);  // frees the grown one
      out_ = fresh;
    }
  }
}

}  // namespace pgs::tls
