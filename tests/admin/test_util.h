// Helpers shared by the admin suites: running promtool / the system Python on a text. (The HTTP GET
// client is tests/support/metrics.h.)
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace pgs::admin_test {

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
