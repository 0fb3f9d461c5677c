// pgsidecar: a pooling PostgreSQL proxy. `pgsidecar --config FILE` runs it; `--check FILE` validates.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "conf/config.h"
#include "proxy/core/log.h"
#include "proxy/core/process.h"

namespace {
constexpr const char* kVersion = "pgsidecar 0.1.0";

void usage(FILE* out) {
  std::fprintf(out,
               "usage: pgsidecar [--config FILE] [--verbose]\n"
               "       pgsidecar --check FILE\n"
               "       pgsidecar --version\n"
               "Signals: SIGHUP reloads the config, SIGTERM drains, SIGINT stops at once.\n");
}
}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "conf/pgsidecar.toml";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--config" || arg == "-c") && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg == "--check" && i + 1 < argc) {
      return pgs::conf::check_config_file(argv[++i], std::cout) ? 0 : 1;
    } else if (arg == "--verbose" || arg == "-v") {
      pgs::proxy::set_log_level(pgs::proxy::LogLevel::debug);
    } else if (arg == "--version") {
      std::puts(kVersion);
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }
  pgs::proxy::Process process(config_path);
  return process.run();
}
