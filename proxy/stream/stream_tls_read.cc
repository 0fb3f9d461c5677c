#include "proxy/stream/stream_tls_read.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace pgs::proxy {

ssl_st* read_ahead(PGconn* conn) {
  SSL* tls = PQsslInUse(conn) ? static_cast<SSL*>(PQsslStruct(conn, "OpenSSL")) : nullptr;
  if (tls != nullptr) SSL_set_read_ahead(tls, 1);
  return tls;
}

bool whole_record_buffered(ssl_st* tls) {
  if (tls == nullptr) return false;
  if (SSL_pending(tls) > 0) return true;
  if (SSL_has_pending(tls) != 1) return false;
  char first = 0;
  if (SSL_peek(tls, &first, 1) > 0) return true;
  ERR_clear_error();  // a record still arriving (or an error libpq's next read reports)
  return false;
}

}  // namespace pgs::proxy
