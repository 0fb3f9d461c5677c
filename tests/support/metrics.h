// Reading the proxy's HTTP endpoints from tests: a minimal HTTP GET over loopback (test side only;
// the server uses Beast) and lookups of samples in the Prometheus text exposition of /metrics.
#pragma once

#include <cstdint>
#include <string>

#include "tests/support/wait.h"

namespace pgs::test {

struct HttpReply {
  int status = 0;  // 0: no reply (connect failed, timeout, garbage)
  std::string headers;
  std::string body;
};

// GET http://127.0.0.1:port/path with Connection: close; reads until EOF or `timeout`.
HttpReply http_get(uint16_t port, const std::string& path, Millis timeout = Millis(10000));

// The body of GET /metrics on `port`; "" when it cannot be read (no listener, no 200 within 5 s).
std::string scrape_metrics(uint16_t port);

// The value of the series `name{labels}` (labels verbatim, e.g. `reason="listen"`; "" for a series
// without labels) at the start of a line of `page`; -1 when absent.
double metric_value(const std::string& page, const std::string& name, const std::string& labels);

// The sum of every sample of `name` with labels (`name{...} value` lines) whose label text contains
// `label_filter` ("" = all); -1 when there is no such sample.
double metric_sum(const std::string& page, const std::string& name, const std::string& label_filter = "");

}  // namespace pgs::test
