// Child processes for tests: spawn with redirected output, run-to-completion with a deadline,
// signals. POSIX only (posix_spawn, fork + exec, waitpid); never blocks without a deadline.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/wait.h"

namespace pgs::test {

using EnvVars = std::vector<std::pair<std::string, std::string>>;

// Result of run_program: exit_code is the exit status, or 128 + signal when killed by a signal.
struct RunResult {
  int exit_code = -1;
  bool timed_out = false;  // the deadline passed; the child was SIGKILLed
  std::string out;
  std::string err;
  std::string describe() const;  // "exit 1\n--- stdout\n...\n--- stderr\n..." for assertion messages
};

// Runs argv[0] (PATH lookup) with the current environment plus `env` (overriding), stdin from
// `input` (closed after writing), stdout/stderr captured. SIGKILL after `timeout`.
RunResult run_program(const std::vector<std::string>& argv, const EnvVars& env, Millis timeout,
                      const std::string& input = "");

// A long-running child whose stdout+stderr go to `log_path`. It is SIGKILLed if the test process
// dies first (PR_SET_PDEATHSIG; tied to the spawning thread, so spawn from the test's thread).
// stdin is a pipe kept open (write_stdin) so interactive programs (psql) can be driven;
// close_stdin() sends EOF.
class Child {
 public:
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  ~Child();  // SIGKILL + reap if still running

  // Throws std::runtime_error when the program cannot be spawned.
  static Child spawn(const std::vector<std::string>& argv, const EnvVars& env,
                     const std::string& log_path);

  pid_t pid() const { return pid_; }
  bool running();                        // reaps the child if it has exited
  std::optional<int> exit_code() const;  // set once reaped: exit status or 128 + signal
  bool exited_by_signal() const { return by_signal_; }
  void signal(int sig);
  // Waits until the child exits; false when the deadline passes first.
  bool wait_exit(Millis deadline);
  // SIGTERM, then SIGKILL when it has not exited after `grace`.
  void stop(Millis grace);
  bool write_stdin(const std::string& data);
  void close_stdin();

 private:
  void reset();
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  std::optional<int> exit_code_;
  bool by_signal_ = false;
};

// Whole file, or "" when it cannot be read; the last `max_bytes` only when non-zero.
std::string read_file_tail(const std::string& path, size_t max_bytes = 0);

// SIGSTOP to `pid`, then a wait (with a deadline) until every thread of it is stopped: kill() returns
// before the signal takes effect, and a thread still running may read what the test sends next.
bool stop_process_and_wait(pid_t pid, Millis deadline);

// A new empty directory /tmp/<prefix>XXXXXX (mkdtemp); throws when it cannot be made.
std::string make_temp_dir(const std::string& prefix);

// Raises this process's RLIMIT_NOFILE soft limit to min(want, hard).
void raise_nofile_limit(rlim_t want);

}  // namespace pgs::test
