#include "tests/cache/redis_env.h"

#include <unistd.h>

#include <random>

namespace pgs::cache::testing {

cache::redis::ConnOptions private_options(uint16_t port) {
  cache::redis::ConnOptions o;
  o.port = port;
  o.timeout = std::chrono::milliseconds(50);
  o.connect_timeout = std::chrono::milliseconds(300);
  o.backoff_min = std::chrono::milliseconds(20);
  o.backoff_max = std::chrono::milliseconds(200);
  o.stuck_after = std::chrono::milliseconds(300);
  return o;
}

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

}  // namespace pgs::cache::testing
