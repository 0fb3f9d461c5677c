#include "proxy/core/fd_limit.h"

#include <sys/resource.h>

#include <algorithm>

namespace pgs::proxy {

namespace {
constexpr uint64_t kMarginPerWorker = 16;  // listener, wakeups, Redis, cancel connections in flight
constexpr uint64_t kMarginProcess = 64;    // monitor, catalog watcher, HTTP, logs, stdio
}  // namespace

uint64_t descriptors_needed(const conf::Config& config, int workers) {
  const uint64_t nodes = 1 + config.replicas.size();
  uint64_t servers = 0;
  for (const auto& db : config.databases) {
    for (const auto& user : config.users) {
      if (user.server_password.empty() && config.proxy.auth_type != conf::AuthType::trust) continue;
      // Each worker gets at least one server of a pool (pool.h): the split rounds up.
      uint64_t per_node = static_cast<uint64_t>(std::max(config.pool_for(db, user).pool_size, workers));
      servers += per_node * nodes;
    }
  }
  return static_cast<uint64_t>(config.proxy.max_client_conn) + kCancelReserveConnections + servers +
         kMarginPerWorker * static_cast<uint64_t>(std::max(workers, 1)) + kMarginProcess;
}

std::string ensure_descriptor_limit(uint64_t needed) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return "";
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < needed) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  if (lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur >= needed) return "";
  return "open-file limit (RLIMIT_NOFILE) is " + std::to_string(lim.rlim_cur) + " (hard " +
         std::to_string(lim.rlim_max) + "), but max_client_conn and the pools' servers may need " +
         std::to_string(needed) + " descriptors: raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower "
         "max_client_conn; connections beyond the limit will fail to be accepted";
}

}  // namespace pgs::proxy
