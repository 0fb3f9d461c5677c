// Process-level harness for the flopods-api tests: the real binary on a free loopback port, a real
// HTTP client (Beast), real Postgres (FLOPODS_TEST_DB, default the dev primary) and Redis
// (FLOPODS_TEST_REDIS, default the dev Redis). Processes, waits, libpq and the dev addresses are
// tests/support (pgs_test_support). Every wait has a deadline; nothing sleeps blindly.
#pragma once

#include <sys/types.h>

#include <boost/json.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/net.h"
#include "tests/support/pg.h"
#include "tests/support/process.h"

namespace pgs::app::test {

std::string db_conninfo();
std::string redis_address();  // "host:port"
std::string api_binary();

// Polls `cond` every 20 ms until it holds or `timeout` passes (pgs::test::wait_until).
bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds timeout);

using ::pgs::test::free_port;

// A child process (pgs::test::Child) with stdout and stderr captured to a temp file.
class Process {
 public:
  Process(const std::string& program, const std::vector<std::string>& args, const std::string& name);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  bool running() { return child_.running(); }
  // SIGTERM, then SIGKILL if it has not exited within `grace`. Returns the exit code (0: a clean
  // exit; 128 + signal when killed), -1 when unknown.
  int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  std::string output() const;  // stdout + stderr so far
  pid_t pid() const { return child_.pid(); }

 private:
  std::string out_path_;
  ::pgs::test::Child child_;
};

// Runs a program to completion (with a deadline); returns its exit code, -1 on timeout.
int run_to_end(const std::string& program, const std::vector<std::string>& args, std::string* output,
               std::chrono::milliseconds timeout);

// flopods-api serve on 127.0.0.1:<free port>, ready once it printed its "listening on" line.
class ApiServer {
 public:
  explicit ApiServer(std::vector<std::string> extra_args, std::string db = db_conninfo(),
                     std::string redis = redis_address());
  unsigned short port() const { return port_; }
  Process& process() { return *proc_; }

 private:
  std::unique_ptr<Process> proc_;
  unsigned short port_ = 0;
};

struct HttpResult {
  int status = 0;  // 0: the exchange failed (see error)
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  boost::json::value json;  // null unless the body parsed as JSON
  std::string error;
  std::string header(const std::string& name) const;
};

// One request on a fresh connection (with a 10 s deadline).
HttpResult http(unsigned short port, const std::string& method, const std::string& target,
                const std::string& token = "", const std::string& body = "",
                const std::map<std::string, std::string>& headers = {});

// Direct SQL for set-up and checks (not through the app).
class Db {
 public:
  Db();
  // Runs a statement with text parameters; fails the test on error. Returns rows as strings.
  std::vector<std::vector<std::string>> q(const std::string& sql, const std::vector<std::string>& params = {});
  std::string one(const std::string& sql, const std::vector<std::string>& params = {});
  // Polls until the query returns a row: a write made by another client (the app) may reach a
  // replica a little later when FLOPODS_TEST_DB goes through the proxy. "" after the deadline.
  std::string one_eventually(const std::string& sql, const std::vector<std::string>& params = {});

 private:
  std::optional<::pgs::test::Pg> pg_;
};

// A user with a fresh random token (only its hash is stored).
struct TestUser {
  std::string id, email, token;
};
TestUser make_user(Db& db, const std::string& tag);

}  // namespace pgs::app::test
