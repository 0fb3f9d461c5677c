// A minimal blocking HTTP/1.1 GET for health probes (the proxy's /readyz). Only "http://host:port/path".
#pragma once

#include <chrono>
#include <string>

#include "app/outcome.h"

namespace pgs::app {

struct ProbeResult {
  int status = 0;
  std::string body;  // at most 4 KiB of it
};

// The whole exchange (resolve, connect, write, read) must finish within `timeout`.
Outcome<ProbeResult, std::string> http_get(const std::string& url, std::chrono::milliseconds timeout);

}  // namespace pgs::app
