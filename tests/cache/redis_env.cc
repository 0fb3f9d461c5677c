#include "redis_env.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>

namespace pgs::cache::testing {

std::string unique_prefix() {
  std::random_device rd;
  return "pgsc-test-" + std::to_string(getpid()) + "-" + std::to_string(rd()) + ":";
}

TestLoop::TestLoop() { uv_loop_init(&loop_); }

TestLoop::~TestLoop() {
  // Owners were destroyed before the loop: let libuv finish their close callbacks.
  for (int i = 0; i < 100 && uv_loop_close(&loop_) == UV_EBUSY; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
}

bool TestLoop::run_until(const std::function<bool()>& pred, std::chrono::milliseconds within) {
  auto deadline = std::chrono::steady_clock::now() + within;
  uv_timer_t tick;
  uv_timer_init(&loop_, &tick);
  uv_timer_start(&tick, [](uv_timer_t*) {}, 5, 5);  // wakes uv_run at least every 5 ms
  bool ok = pred();
  while (!ok && std::chrono::steady_clock::now() < deadline) {
    uv_run(&loop_, UV_RUN_ONCE);
    ok = pred();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(&loop_, UV_RUN_NOWAIT);
  return ok;
}

void TestLoop::drain() { uv_run(&loop_, UV_RUN_NOWAIT); }

SyncRedis::SyncRedis(const char* host, uint16_t port) {
  timeval tv{2, 0};
  ctx_ = redisConnectWithTimeout(host, port, tv);
  if (ctx_ != nullptr && ctx_->err == 0) redisSetTimeout(ctx_, tv);
}

SyncRedis::~SyncRedis() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

std::string SyncRedis::run(std::initializer_list<std::string> args) {
  if (!ok()) return "(error) not connected";
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (r == nullptr) return "(error) io";
  std::string out;
  if (r->type == REDIS_REPLY_INTEGER) {
    out = std::to_string(r->integer);
  } else if (r->type == REDIS_REPLY_ERROR) {
    out = "(error) " + std::string(r->str, r->len);
  } else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
    out.assign(r->str, r->len);
  }
  freeReplyObject(r);
  return out;
}

void SyncRedis::delete_prefix(const std::string& prefix) {
  if (!ok()) return;
  std::string cursor = "0";
  do {
    auto* r = static_cast<redisReply*>(
        redisCommand(ctx_, "SCAN %s MATCH %b COUNT 1000", cursor.c_str(), (prefix + "*").data(), prefix.size() + 1));
    if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      if (r) freeReplyObject(r);
      return;
    }
    cursor.assign(r->element[0]->str, r->element[0]->len);
    for (size_t i = 0; i < r->element[1]->elements; ++i) {
      redisReply* k = r->element[1]->element[i];
      freeReplyObject(redisCommand(ctx_, "DEL %b", k->str, k->len));
    }
    freeReplyObject(r);
  } while (cursor != "0");
}

bool wait_for_redis(uint16_t port, std::chrono::milliseconds within) {
  auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    SyncRedis r("127.0.0.1", port);
    if (r.ok() && r.run({"PING"}) == "PONG") return true;
    // Connection refused returns at once: poll with a short blocking wait on nothing else.
    timeval tv{0, 20000};
    select(0, nullptr, nullptr, nullptr, &tv);
  }
  return false;
}

namespace {

uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

PrivateRedis::PrivateRedis() : port_(free_port()) { start(); }

PrivateRedis::~PrivateRedis() {
  if (pid_ > 0) {
    kill(pid_, SIGCONT);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

bool PrivateRedis::start() {
  if (pid_ > 0) return true;
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed test
    std::string port = std::to_string(port_);
    execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning", "--logfile", "/dev/null",
           static_cast<char*>(nullptr));
    _exit(127);
  }
  pid_ = pid;
  stopped_ = false;
  return wait_for_redis(port_, std::chrono::milliseconds(10000));
}

void PrivateRedis::stop_process() {
  if (pid_ > 0) kill(pid_, SIGSTOP);
  stopped_ = true;
}

void PrivateRedis::continue_process() {
  if (pid_ > 0) kill(pid_, SIGCONT);
  stopped_ = false;
}

void PrivateRedis::kill_server() {
  if (pid_ <= 0) return;
  kill(pid_, SIGCONT);
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

}  // namespace pgs::cache::testing
