// Reading a logical replication stream that libpq receives over TLS (StreamInvalidator's slots).
//
// libpq asks OpenSSL for one record per read, OpenSSL reads each record with two recv() calls (its header,
// then its body), and the walsender sends every decoded change as a record of its own: about 12 system
// calls per pgbench transaction, plus a poll() per record in the slot's read loop (2026-12-08: 65 µs of
// the leader's CPU per tpcb-like transaction, against 17 with read ahead). With read ahead, one recv()
// takes all the socket holds; the records beyond the first stay in OpenSSL's buffer, where poll() on
// the socket cannot see them: whole_record_buffered() does, and the loop asks it before it waits on the
// socket. Safe for a connection on which nothing else waits once it streams (PQputCopyData and PQflush
// non-blocking, PQgetCopyData asked with async = 1): libpq's own waits would not see that buffer.
#pragma once

#include <libpq-fe.h>

struct ssl_st;

namespace pgs::proxy {

// Turns read ahead on for `conn`'s TLS session and returns it; nullptr in plaintext.
ssl_st* read_ahead(PGconn* conn);

// OpenSSL holds a whole record that libpq has not taken yet. Not merely bytes: a record's first part
// waits for the socket, and a loop that went round on it would spin until the rest arrived. SSL_peek
// decrypts the next record if it is whole (reading the socket without blocking if it is not) and leaves
// it for libpq's SSL_read. False for nullptr.
bool whole_record_buffered(ssl_st* tls);

}  // namespace pgs::proxy
