// The local dev environment (`./dev up`, docs/DESIGN.md "Names and ports"): addresses, roles and
// passwords of the shared primary, replica and Redis. The one place tests spell them.
#pragma once

#include <cstdint>

namespace pgs::test {

inline constexpr const char* kHost = "127.0.0.1";
inline constexpr uint16_t kPrimaryPort = 15432;
inline constexpr uint16_t kReplicaPort = 15433;
inline constexpr uint16_t kRedisPort = 16379;

inline constexpr const char* kDatabase = "flopods";
inline constexpr const char* kUser = "flopods";
inline constexpr const char* kPassword = "flopods-dev";
inline constexpr const char* kSuperUser = "postgres";
inline constexpr const char* kSuperPassword = "postgres-dev";
// The proxy's admin console user; also the role the health monitor logs in as ([routing] monitor_user).
inline constexpr const char* kAdminUser = "pgsidecar";
inline constexpr const char* kAdminPassword = "pgsidecar-dev";
inline constexpr const char* kAdminDatabase = "pgsidecar";  // the admin console's database name
// The streaming-replication role (pg_basebackup of the primary).
inline constexpr const char* kReplicationUser = "replicator";
inline constexpr const char* kReplicationPassword = "replicator-dev";

// Postgres 15 server programs (pg_ctl, pg_basebackup), not on PATH on Debian.
inline constexpr const char* kPgBinDir = "/usr/lib/postgresql/15/bin/";

}  // namespace pgs::test
