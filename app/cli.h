// Command line of flopods-api (the dev script calls exactly these):
//   flopods-api migrate --db CONNINFO
//   flopods-api seed --users N --db CONNINFO [--secret S] [--print-tokens K]
//   flopods-api serve --listen HOST:PORT --db CONNINFO --redis HOST:PORT --readyz URL --threads N --pool N
//                     [--handler-threads N] [--pool-wait-ms MS] [--prepared] [--redis-prefix P]
//                     [--rate-anon N] [--rate-user N] [--access-log -|none|PATH] [--body-limit BYTES]
//                     [--read-timeout-ms MS] [--idle-timeout-ms MS] [--redis-cluster IP:PORT,...]
//                     [--redis-user NAME] [--redis-password-file PATH] [--redis-tls MODE]
//                     [--redis-tls-ca PEM] [--redis-tls-server-name NAME]
// --db defaults to $FLOPODS_DB, else "host=127.0.0.1 port=6432 dbname=flopods user=flopods" (libpq
// environment variables such as PGPASSWORD apply). The Redis password is $FLOPODS_REDIS_PASSWORD unless
// --redis-password-file names a file holding it.
#pragma once

#include <string>
#include <vector>

#include "app/api.h"
#include "app/db_pool.h"
#include "app/http_server.h"
#include "app/outcome.h"
#include "app/rate_limiter.h"
#include "app/seed.h"

namespace pgs::app {

struct CliOptions {
  std::string command;  // "migrate", "seed", "serve", "help"
  std::string db;
  SeedOptions seed;
  ServerOptions server;
  DbPoolOptions pool;
  RateLimitOptions redis;
  ApiOptions api;
  std::string access_log = "-";
};

Outcome<CliOptions, std::string> parse_cli(const std::vector<std::string>& args);
const char* usage();

// The sub-commands; each returns the process exit code.
int run_migrate(const CliOptions& o);
int run_seed(const CliOptions& o);
int run_serve(const CliOptions& o);

}  // namespace pgs::app
