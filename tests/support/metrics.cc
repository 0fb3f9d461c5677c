#include "tests/support/metrics.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include "tests/support/net.h"

namespace pgs::test {

HttpReply http_get(uint16_t port, const std::string& path, Millis timeout) {
  HttpReply r;
  auto deadline = Clock::now() + timeout;
  int fd = connect_loopback(port);
  if (fd < 0) return r;
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return r;
  }
  std::string all;
  char buf[16384];
  while (true) {
    int left = ms_left(deadline);
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    all.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  size_t end = all.find("\r\n\r\n");
  if (all.rfind("HTTP/1.", 0) != 0 || end == std::string::npos || all.size() < 12) return r;
  r.status = std::atoi(all.substr(9, 3).c_str());
  r.headers = all.substr(0, end);
  r.body = all.substr(end + 4);
  return r;
}

std::string scrape_metrics(uint16_t port) {
  if (port == 0) return "";
  HttpReply r = http_get(port, "/metrics", Millis(5000));
  return r.status == 200 ? r.body : "";
}

double metric_value(const std::string& page, const std::string& name, const std::string& labels) {
  std::string series = labels.empty() ? name + " " : name + "{" + labels + "} ";
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series, 0) == 0) return std::strtod(line.c_str() + series.size(), nullptr);
  }
  return -1;
}

double metric_sum(const std::string& page, const std::string& name, const std::string& label_filter) {
  const std::string prefix = name + "{";
  std::istringstream in(page);
  std::string line;
  double sum = -1;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    size_t close = line.find("} ", prefix.size());
    if (close == std::string::npos) continue;
    if (line.substr(prefix.size(), close - prefix.size()).find(label_filter) == std::string::npos) continue;
    sum = (sum < 0 ? 0 : sum) + std::strtod(line.c_str() + close + 2, nullptr);
  }
  return sum;
}

}  // namespace pgs::test
