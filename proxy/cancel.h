// Forwards a CancelRequest to a server on a fresh connection (docs: "Canceling Requests in Progress"):
// connect, write the 16-byte packet, close. No reply is expected; failures are only logged.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>

namespace pgs::proxy {

// The random source of cancel keys, shaped like OpenSSL's RAND_bytes (1 on success). A seam for tests.
using RandomFill = int (*)(unsigned char* out, int size);

// A cancel key's secret from `fill` (RAND_bytes by default). False when the source failed: `secret`
// is then left 0 and no key may be handed out (a predictable key lets anyone cancel the client's
// queries), so the login must fail.
[[nodiscard]] bool random_cancel_secret(int32_t& secret, RandomFill fill = nullptr);

// Self-owned: deletes itself when its handle is closed.
void send_cancel_request(uv_loop_t* loop, const std::string& host, uint16_t port, int32_t pid, int32_t secret);

}  // namespace pgs::proxy
