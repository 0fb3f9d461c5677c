// flopods-api: migrate | seed | serve (see app/cli.h).
#include <cstdio>
#include <string>
#include <vector>

#include "app/cli.h"

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  auto options = pgs::app::parse_cli(args);
  if (!options) {
    std::fprintf(stderr, "flopods-api: %s\n%s", options.error().c_str(), pgs::app::usage());
    return 2;
  }
  const std::string& command = options->command;
  if (command == "help") {
    std::fputs(pgs::app::usage(), stdout);
    return 0;
  }
  if (command == "migrate") return pgs::app::run_migrate(*options);
  if (command == "seed") return pgs::app::run_seed(*options);
  return pgs::app::run_serve(*options);
}
