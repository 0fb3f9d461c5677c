// TLS from the proxy to a server (issue 13, item 2), as libpq's sslmode: an SSLRequest before the
// StartupMessage; 'S' starts a TLS 1.2+ handshake as the client (SNI = the node's host name; verify-full
// checks the certificate names the host as configured, a name or an address), 'N' carries on in plaintext
// only for "prefer", and so does a failed handshake under "prefer": once, on a new connection to the same
// address, with no SSLRequest (libpq's sslmode=prefer; a certificate that does not verify included, as
// libpq's). Docs "SSL Session Encryption". The login goes on in handle_login_message (server_conn.cc)
// once the session is up.
#include "proxy/core/log.h"
#include "proxy/core/worker.h"
#include "proxy/net/tls.h"
#include "proxy/pool/pool.h"
#include "proxy/server/server_conn.h"
#include "protocol/server_login.h"
#include "protocol/writer.h"

namespace pgs::proxy {

void ServerConn::begin_login() {
  const PoolTarget& t = pool_.target();
  if (t.tls_mode == conf::ServerTls::disable || plaintext_retry_) {
    send_startup();
    return;
  }
  if (tls_context_ == nullptr) {  // the snapshot's contexts and the pool's target disagree (a reload)
    fail("no TLS context for server_tls = \"" + std::string(conf::to_string(t.tls_mode)) + "\"");
    return;
  }
  tls_phase_ = TlsPhase::answer;
  protocol::write_ssl_request(outbox());
  flush();
}

void ServerConn::send_startup() {
  const PoolTarget& t = pool_.target();
  protocol::write_startup(outbox(), {{"user", t.user}, {"database", t.server_dbname}});
  flush();
}

bool ServerConn::on_ssl_answer() {
  const PoolTarget& t = pool_.target();
  const std::string mode(conf::to_string(t.tls_mode));
  switch (protocol::read_ssl_answer(rbuf_.data())) {
    case protocol::SslAnswer::need_more:
      return false;
    case protocol::SslAnswer::tls:
      rbuf_.consume(1);
      tls_phase_ = TlsPhase::handshake;
      if (!start_tls_client(tls_context_, TlsPeer{t.host, t.tls_mode == conf::ServerTls::verify_full})) {
        fail("cannot start TLS with the server: " + std::string(tls_error()));
      }
      return false;
    case protocol::SslAnswer::plaintext:
      if (t.tls_mode != conf::ServerTls::prefer) {
        fail("server " + t.name + " does not accept TLS (it answered N), and server_tls = \"" + mode + "\"");
        return false;
      }
      rbuf_.consume(1);
      tls_phase_ = TlsPhase::none;
      LOG_DEBUG("server " + std::to_string(id_) + ": no TLS offered, carrying on in plaintext (server_tls = \"prefer\")");
      send_startup();
      return true;
    case protocol::SslAnswer::error:
      fail("server " + t.name + " answered the TLS request with an error (server_tls = \"" + mode + "\")");
      return false;
    case protocol::SslAnswer::invalid:
      fail("invalid answer from server " + t.name + " to the TLS request (or bytes after it, before the handshake)");
      return false;
  }
  return false;
}

bool ServerConn::retry_without_tls(const std::string& why) {
  const PoolTarget& t = pool_.target();
  if (t.tls_mode != conf::ServerTls::prefer || plaintext_retry_ || tls_phase_ != TlsPhase::handshake ||
      state_ != State::login || closing()) {
    return false;
  }
  LOG_WARN("server " + t.name + " (" + address_text(peer_) + "): " + why +
           "; retrying once without TLS (server_tls = \"prefer\")");
  plaintext_retry_ = true;
  tls_phase_ = TlsPhase::none;
  --next_address_;  // the same address again (on_reopened connects to it)
  set_state(State::connecting);
  reopen();
  return true;
}

void ServerConn::on_tls_ready() {
  if (state_ != State::login || tls_phase_ != TlsPhase::handshake) return;
  tls_phase_ = TlsPhase::none;
  // A cancel for this connection's queries goes over TLS too, verified as this session was.
  const PoolTarget& t = pool_.target();
  cancel_target_.tls = tls_context_;
  cancel_target_.verify_host = t.tls_mode == conf::ServerTls::verify_full;
  cancel_target_.plaintext_ok = t.tls_mode == conf::ServerTls::prefer;
  send_startup();
}

}  // namespace pgs::proxy
