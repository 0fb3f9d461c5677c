// Forwards a CancelRequest to a server on a fresh connection (docs: "Canceling Requests in Progress"):
// connect, write the 16-byte packet, close. No reply is expected; failures are only logged.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>

namespace pgs::proxy {

// Self-owned: deletes itself when its handle is closed.
void send_cancel_request(uv_loop_t* loop, const std::string& host, uint16_t port, int32_t pid, int32_t secret);

}  // namespace pgs::proxy
