// The TLS of the proxy's Redis connections from [cache] redis_tls, redis_tls_ca_file and
// redis_tls_server_name (conf/config.h). Thread-safe; the context is made once per distinct setting and
// shared by every connection (an SSL_CTX serves concurrent sessions).
#pragma once

#include <string>

#include "cache/redis/conn_options.h"
#include "conf/config.h"

namespace pgs::cache::redis {

// Disabled (no context, no error) for "disable". Otherwise a client context: verify-ca and verify-full
// check the chain against redis_tls_ca_file (the system's CAs when unset), require only when a CA file is
// set; verify-full also checks the name (redis_tls_server_name, else redis_host). When the CA file cannot
// be loaded: no context and `error` set (connections then fail, never fall back to plaintext).
TransportTls transport_tls(const conf::CacheConfig& config);

}  // namespace pgs::cache::redis
