// Helpers shared by the admin suites: a minimal HTTP/1.0 GET client (test side only; the server
// uses Beast), and running promtool / the system Python on a text.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace pgs::admin_test {

struct HttpReply {
  int status = 0;  // 0: no reply (connect failed, timeout, garbage)
  std::string headers;
  std::string body;
};

// GET http://127.0.0.1:port/path with Connection: close; reads until EOF or `timeout`.
inline HttpReply http_get(uint16_t port, const std::string& path,
                          std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
  HttpReply r;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return r;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return r;
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return r;
  }
  std::string all;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[16384];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
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

struct CommandResult {
  int status = -1;
  std::string output;  // stdout + stderr
};

// Runs `command < file-with-input` through the shell.
inline CommandResult run_with_stdin(const std::string& command, const std::string& input) {
  char path[] = "/tmp/pgs_admin_inXXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return {};
  (void)!::write(fd, input.data(), input.size());
  ::close(fd);
  CommandResult r;
  if (std::FILE* p = popen((command + " < " + path + " 2>&1").c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
    int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  std::remove(path);
  return r;
}

// Python check: parses stdin with prometheus_client and prints "<family> <value>" for a sample name.
inline std::string python_sample_script(const std::string& sample_name) {
  return "import sys\n"
         "from prometheus_client.parser import text_string_to_metric_families\n"
         "total = 0.0\n"
         "found = False\n"
         "for f in text_string_to_metric_families(sys.stdin.read()):\n"
         "    for s in f.samples:\n"
         "        if s.name == '" + sample_name + "':\n"
         "            total += s.value\n"
         "            found = True\n"
         "assert found, 'no sample " + sample_name + "'\n"
         "print(int(total))\n";
}

inline CommandResult python_sum(const std::string& python, const std::string& sample_name, const std::string& text) {
  char path[] = "/tmp/pgs_admin_pyXXXXXX.py";
  int fd = mkstemps(path, 3);
  if (fd < 0) return {};
  std::string script = python_sample_script(sample_name);
  (void)!::write(fd, script.data(), script.size());
  ::close(fd);
  CommandResult r = run_with_stdin(python + " " + path, text);
  std::remove(path);
  return r;
}

}  // namespace pgs::admin_test
