#include "tests/support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace pgs::test {
namespace {

// environ with `env` applied (same names replaced). The strings live in `storage`.
std::vector<char*> make_envp(const EnvVars& env, std::vector<std::string>& storage) {
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('='));
    bool overridden = false;
    for (const auto& [k, v] : env) overridden = overridden || k == name;
    if (!overridden) storage.push_back(std::move(entry));
  }
  for (const auto& [k, v] : env) storage.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : storage) envp.push_back(s.data());
  envp.push_back(nullptr);
  return envp;
}

std::vector<char*> make_argv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

int decode_status(int status, bool* by_signal) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (by_signal != nullptr) *by_signal = true;
  return 128 + WTERMSIG(status);
}

// posix_spawnp with the given fds as the child's 0, 1, 2. Throws on failure.
pid_t spawn_with_fds(const std::vector<std::string>& argv, const EnvVars& env, int in_fd,
                     int out_fd, int err_fd) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
  posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // A clean signal mask and default dispositions: the test process may block or ignore some.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<std::string> storage;
  auto envp = make_envp(env, storage);
  auto args = make_argv(argv);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &fa, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::runtime_error("spawn " + argv[0] + ": " + std::strerror(rc));
  return pid;
}

// argv[0] resolved against PATH (as execvp would), done before fork: the child may only make
// async-signal-safe calls.
std::string resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  throw std::runtime_error("spawn " + name + ": not found in PATH");
}

// fork + exec for long-running children: PR_SET_PDEATHSIG makes the child die with the test
// process, so a test killed by ctest's timeout does not leave a proxy holding ports and servers.
pid_t fork_exec_tied(const std::vector<std::string>& argv, const EnvVars& env, int in_fd,
                     int out_fd) {
  std::string program = resolve_program(argv.at(0));
  std::vector<std::string> storage;
  auto envp = make_envp(env, storage);
  auto args = make_argv(argv);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);
    dup2(in_fd, 0);
    dup2(out_fd, 1);
    dup2(out_fd, 2);
    execve(program.c_str(), args.data(), envp.data());
    _exit(127);
  }
  return pid;
}

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Pumps input into in_fd and drains out/err until both hit EOF or the deadline passes.
bool pump(int in_fd, int out_fd, int err_fd, const std::string& input, RunResult& r,
          Clock::time_point deadline) {
  size_t written = 0;
  if (input.empty()) { close(in_fd); in_fd = -1; }
  char buf[65536];
  while (out_fd >= 0 || err_fd >= 0) {
    int left = ms_left(deadline);
    if (left <= 0) return false;
    pollfd fds[3] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {in_fd, POLLOUT, 0}};
    if (poll(fds, 3, left) < 0 && errno != EINTR) return false;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        close(fds[i].fd);
        (i == 0 ? out_fd : err_fd) = -1;
      }
    }
    if (in_fd >= 0 && fds[2].revents != 0) {
      ssize_t n = write(in_fd, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if ((n < 0 && errno != EAGAIN) || written == input.size()) { close(in_fd); in_fd = -1; }
    }
  }
  if (in_fd >= 0) close(in_fd);
  return true;
}

}  // namespace

std::string RunResult::describe() const {
  std::ostringstream os;
  os << (timed_out ? "TIMED OUT, " : "") << "exit " << exit_code << "\n--- stdout\n" << out
     << "\n--- stderr\n" << err;
  return os.str();
}

RunResult run_program(const std::vector<std::string>& argv, const EnvVars& env, Millis timeout,
                      const std::string& input) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  signal(SIGPIPE, SIG_IGN);  // a child that exits before reading its stdin must not kill us
  pid_t pid = spawn_with_fds(argv, env, in[0], out[1], err[1]);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  set_nonblocking(in[1]);
  RunResult r;
  auto deadline = Clock::now() + timeout;
  if (!pump(in[1], out[0], err[0], input, r, deadline)) {
    r.timed_out = true;
    kill(pid, SIGKILL);
  }
  int status = 0;
  // Output is closed; the child is exiting (or was killed). Reap with a deadline anyway; once
  // SIGKILLed it cannot linger, so the last waitpid may block.
  if (!wait_until([&] { return waitpid(pid, &status, WNOHANG) != 0; }, time_left(deadline), Millis(5))) {
    r.timed_out = true;
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  r.exit_code = decode_status(status, nullptr);
  return r;
}

Child::Child(Child&& other) noexcept { *this = std::move(other); }

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    reset();
    pid_ = std::exchange(other.pid_, -1);
    stdin_fd_ = std::exchange(other.stdin_fd_, -1);
    exit_code_ = other.exit_code_;
    by_signal_ = other.by_signal_;
  }
  return *this;
}

Child::~Child() { reset(); }

void Child::reset() {
  if (pid_ > 0 && running()) {
    kill(pid_, SIGKILL);
    wait_exit(Millis(5000));
  }
  close_stdin();
  pid_ = -1;
}

Child Child::spawn(const std::vector<std::string>& argv, const EnvVars& env,
                   const std::string& log_path) {
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error("open " + log_path + ": " + std::strerror(errno));
  int in[2];
  if (pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  ::signal(SIGPIPE, SIG_IGN);
  Child c;
  try {
    c.pid_ = fork_exec_tied(argv, env, in[0], log_fd);
  } catch (...) {
    close(log_fd);
    close(in[0]);
    close(in[1]);
    throw;
  }
  close(log_fd);
  close(in[0]);
  c.stdin_fd_ = in[1];
  return c;
}

bool Child::running() {
  if (pid_ <= 0 || exit_code_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = decode_status(status, &by_signal_);
    return false;
  }
  return r == 0;
}

std::optional<int> Child::exit_code() const { return exit_code_; }

void Child::signal(int sig) {
  if (pid_ > 0 && !exit_code_) kill(pid_, sig);
}

bool Child::wait_exit(Millis deadline) {
  // waitpid has no timeout: poll the condition.
  return wait_until([this] { return !running(); }, deadline, Millis(5));
}

void Child::stop(Millis grace) {
  if (!running()) return;
  signal(SIGTERM);
  if (!wait_exit(grace)) {
    signal(SIGKILL);
    wait_exit(Millis(5000));
  }
}

bool Child::write_stdin(const std::string& data) {
  size_t done = 0;
  while (stdin_fd_ >= 0 && done < data.size()) {
    ssize_t n = write(stdin_fd_, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return stdin_fd_ >= 0;
}

void Child::close_stdin() {
  if (stdin_fd_ >= 0) close(stdin_fd_);
  stdin_fd_ = -1;
}

std::string read_file_tail(const std::string& path, size_t max_bytes) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (max_bytes != 0 && s.size() > max_bytes) s = "...\n" + s.substr(s.size() - max_bytes);
  return s;
}

std::string make_temp_dir(const std::string& prefix) {
  std::string pattern = "/tmp/" + prefix + "XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp " + pattern + ": " + std::strerror(errno));
  return pattern;
}

void raise_nofile_limit(rlim_t want) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rlim_t target = want;
  if (rl.rlim_max != RLIM_INFINITY && target > rl.rlim_max) target = rl.rlim_max;
  if (rl.rlim_cur < target) {
    rl.rlim_cur = target;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

bool stop_process_and_wait(pid_t pid, Millis deadline) {
  if (::kill(pid, SIGSTOP) != 0) return false;
  auto all_stopped = [pid] {
    std::error_code ec;
    int threads = 0;
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
      // /proc/<pid>/task/<tid>/stat: "tid (comm) S ...": the state follows the last ')'.
      std::ifstream f(task.path() / "stat");
      std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      const size_t paren = stat.rfind(')');
      if (paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'T') return false;
      ++threads;
    }
    return !ec && threads > 0;
  };
  return wait_until(all_stopped, deadline, Millis(1));
}

}  // namespace pgs::test
