// One reader per TOML table of the config file (see conf/pgsidecar.toml). Internal to conf/.
#pragma once

#include <toml++/toml.h>

#include "conf/config.h"
#include "conf/diagnostics.h"

namespace pgs::conf::detail {

// Reads the whole document into `config`: every table, every key, every error recorded in `diag`.
// Cross-field checks are validate()'s job (conf/validate.h).
void read_document(const toml::table& root, Config& config, Diagnostics& diag);

}  // namespace pgs::conf::detail
