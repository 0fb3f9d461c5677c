#include "cache/redis/redis_tls.h"

#include <map>
#include <mutex>
#include <tuple>

namespace pgs::cache::redis {

TransportTls transport_tls(const conf::CacheConfig& config) {
  TransportTls out;
  if (config.redis_tls == conf::RedisTls::disable) return out;
  const bool verify = config.redis_tls != conf::RedisTls::require || !config.redis_tls_ca_file.empty();
  out.peer.host = config.redis_tls_server_name.empty() ? config.redis_host : config.redis_tls_server_name;
  out.peer.verify_host = config.redis_tls == conf::RedisTls::verify_full;
  // One context per (CA file, verify) for the process: every worker's connections share it.
  static std::mutex mutex;
  static std::map<std::tuple<std::string, bool>, std::shared_ptr<const tls::TlsContext>> made;
  std::lock_guard<std::mutex> lock(mutex);
  auto& context = made[{config.redis_tls_ca_file, verify}];
  if (context == nullptr) {
    context = tls::TlsContext::load_client(config.redis_tls_ca_file, verify, "cache.redis_tls_ca_file", out.error);
  }
  out.context = context;
  if (context == nullptr && out.error.empty()) out.error = "cache.redis_tls: no TLS context";
  return out;
}

}  // namespace pgs::cache::redis
