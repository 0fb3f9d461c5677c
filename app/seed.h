// `flopods-api seed --users N`: realistic demo data made inside Postgres (generate_series), so tens
// of thousands of rows take one round trip per table. Seeded users are user<i>@flopods.dev; their
// tokens are derived from a secret (auth.h derived_token), so re-running prints the same tokens and
// only adds the users that are missing.
#pragma once

#include <string>

#include "app/pg.h"

namespace pgs::app {

struct SeedOptions {
  int users = 50;
  std::string secret = "flopods-dev-seed";  // only for demo data: anyone with it can rebuild the tokens
  int print_tokens = 3;                     // how many "token for <email>: <token>" lines to print
};

// Returns the number of users created now (0 if the data set was already there).
Outcome<int, DbError> seed(PgConn& conn, const SeedOptions& options);

}  // namespace pgs::app
