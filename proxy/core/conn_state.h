// The states of client and server connections, written once: each list generates its enum, its count
// and the names SHOW CLIENTS / SHOW SERVERS print. A pool keeps one ConnList per state (pool.h), so a
// state is also the list a connection is in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace pgs::proxy {

// X(enumerator): a client's life. startup, auth and closing belong to no pool; login_wait and idle are
// in the list of the client's login pool, waiting and active in the list of the pool it runs on.
#define PGS_CLIENT_STATES(X)                                                                          \
  X(startup)    /* waiting for the startup packet (an SSLRequest is answered first) */                \
  X(auth)       /* password exchange in progress */                                                    \
  X(login_wait) /* authenticated; waiting for the pool to learn the server's parameters */            \
  X(idle)       /* logged in, no server bound */                                                       \
  X(waiting)    /* queued for a server */                                                              \
  X(active)     /* bound to a server */                                                                \
  X(closing)

// X(enumerator): a server connection's life, every state a list of its pool.
#define PGS_SERVER_STATES(X)                                                                          \
  X(connecting)     /* TCP connect in progress */                                                      \
  X(login)          /* startup and authentication */                                                   \
  X(idle)           /* in the pool, free to hand out (LIFO: the warmest is taken first) */            \
  X(active)         /* bound to a client */                                                            \
  X(resetting)      /* DISCARD ALL before it is free again (session mode, a pinned client's end) */   \
  X(being_canceled) /* at a release point, held until the cancels sent to it are resolved */          \
  X(closing)        /* Terminate sent or failed: gone at its close callback */

enum class ClientState : uint8_t {
#define PGS_X(e) e,
  PGS_CLIENT_STATES(PGS_X)
#undef PGS_X
};
enum class ServerState : uint8_t {
#define PGS_X(e) e,
  PGS_SERVER_STATES(PGS_X)
#undef PGS_X
};

inline constexpr size_t kClientStateCount = 0
#define PGS_X(e) +1
    PGS_CLIENT_STATES(PGS_X)
#undef PGS_X
    ;
inline constexpr size_t kServerStateCount = 0
#define PGS_X(e) +1
    PGS_SERVER_STATES(PGS_X)
#undef PGS_X
    ;

inline std::string_view state_name(ClientState s) {
  static constexpr std::string_view kNames[] = {
#define PGS_X(e) #e,
      PGS_CLIENT_STATES(PGS_X)
#undef PGS_X
  };
  return kNames[static_cast<size_t>(s)];
}

inline std::string_view state_name(ServerState s) {
  static constexpr std::string_view kNames[] = {
#define PGS_X(e) #e,
      PGS_SERVER_STATES(PGS_X)
#undef PGS_X
  };
  return kNames[static_cast<size_t>(s)];
}

}  // namespace pgs::proxy
