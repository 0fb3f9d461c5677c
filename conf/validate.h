// Cross-field checks and derived values, after every table was read. Internal to conf/.
#pragma once

#include "conf/config.h"
#include "conf/diagnostics.h"

namespace pgs::conf::detail {

// Fills derived fields (server_dbname, server_password, replica names, metrics host/port, lowercased
// table and function names) and records every inconsistency in `diag`.
void validate(Config& config, Diagnostics& diag);

// Parts of validate() for the feature tables (conf/validate_features.cc).
void check_cache(CacheConfig& cache, Diagnostics& diag);
void check_routing(RoutingConfig& routing, Diagnostics& diag);
void check_observability(ObservabilityConfig& observability, Diagnostics& diag);

}  // namespace pgs::conf::detail
