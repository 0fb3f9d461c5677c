// Forwards a CancelRequest to a server on a fresh connection (docs: "Canceling Requests in Progress"):
// connect, write the 16-byte packet, then wait for the server to close the connection. To a server whose
// connection runs over TLS the cancel goes over TLS too, as libpq 17's cancel does (the secret key is
// never sent in the clear where the queries are not): SSLRequest, the handshake verified as that
// connection's was, then the packet. Postgres's
// child for that connection signals the backend (SIGINT, processCancelRequest) and only then exits,
// so the close is the moment the cancel has been delivered. The signal's handler runs before the
// backend reads anything more from its client; a cancel that finds the backend between commands
// (DoingCommandRead) is ignored by ProcessInterrupts. Hence a server whose forwarded cancels are all
// `delivered` or `not_sent` can serve the next client safely, and one with an `unknown` cancel cannot.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace pgs::tls {
class TlsContext;
}  // namespace pgs::tls

namespace pgs::proxy {

using tls::TlsContext;

// The random source of cancel keys, shaped like OpenSSL's RAND_bytes (1 on success). A seam for tests.
using RandomFill = int (*)(unsigned char* out, int size);

// A cancel key's secret from `fill` (RAND_bytes by default). False when the source failed: `secret`
// is then left 0 and no key may be handed out (a predictable key lets anyone cancel the client's
// queries), so the login must fail.
[[nodiscard]] bool random_cancel_secret(int32_t& secret, RandomFill fill = nullptr);

enum class CancelOutcome : uint8_t {
  delivered,  // the server closed the cancel connection after reading the packet
  not_sent,   // no connection (no address, refused), or TLS failed first: the server never saw the packet
  unknown,    // written, but no close before the deadline (or a write/read error): may still land
};

using CancelDone = std::function<void(CancelOutcome)>;

// Where a cancel goes: the address the server connection reached (not its host name again, which may
// name another server after a failover), and that connection's encryption.
struct CancelTarget {
  sockaddr_storage address{};              // with its port; AF_UNSPEC: none (the cancel is not sent)
  std::string host;                        // the node's host as configured: SNI and verify-full's name
  std::shared_ptr<const TlsContext> tls;   // nullptr: plaintext (the connection has no TLS)
  bool verify_host = false;                // server_tls = "verify-full"
  bool plaintext_ok = false;               // server_tls = "prefer": a server answering N gets it in plaintext
};

// Self-owned: deletes itself when its handles are closed. `done` (may be empty) runs exactly once, on
// `loop`'s thread; it may run before this call returns (no address, connect refused at once), so
// the caller records what `done` undoes first. `deadline` bounds the whole exchange, TLS included.
void send_cancel_request(uv_loop_t* loop, const CancelTarget& target, int32_t pid, int32_t secret,
                         std::chrono::milliseconds deadline, CancelDone done);

}  // namespace pgs::proxy
