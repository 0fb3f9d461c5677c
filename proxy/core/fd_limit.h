// The open-file limit against what the configuration may open: every client (max_client_conn), every
// server of every pool, and a margin for listeners, Redis, the monitor and the HTTP endpoint.
#pragma once

#include <cstdint>
#include <string>

#include "conf/config.h"

namespace pgs::proxy {

// Connections accepted beyond max_client_conn only to read one startup packet: a CancelRequest is
// served (Postgres serves cancels when it is full too, and a full proxy is when they matter most),
// anything else gets 53300. Process-wide.
inline constexpr int kCancelReserveConnections = 32;

// Descriptors the configuration may hold at once (an upper bound).
uint64_t descriptors_needed(const conf::Config& config, int workers);

// At start: raises the RLIMIT_NOFILE soft limit to the hard limit when `needed` exceeds it. Returns a
// warning to log when even the hard limit is below `needed` ("" when it suffices). The proxy still
// starts then (a reload may lower max_client_conn; accept fails cleanly with EMFILE beyond the limit).
std::string ensure_descriptor_limit(uint64_t needed);

}  // namespace pgs::proxy
