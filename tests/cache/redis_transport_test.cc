// The proxy's own Redis transport (cache/redis/redis_transport.h, issue 13 item 4): RedisConn and
// BlockingRedis over TLS with an ACL login against a private TLS-only redis-server, a certificate that
// does not verify, and a hostile server (a scripted socket) that answers in single bytes, with garbage or
// unasked. Every wait has a deadline.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <thread>

#include "cache/redis/blocking_redis.h"
#include "cache/redis/redis_conn.h"
#include "cache/redis/redis_store.h"
#include "redis_env.h"
#include "tests/support/certs.h"
#include "tests/support/net.h"

namespace pgs::cache {
namespace {

using namespace std::chrono_literals;
using testing::TestLoop;

const test::TwoAuthorities& pki() { return test::two_authorities(); }

redis::ConnOptions tls_options(uint16_t port, const std::string& ca, const std::string& name) {
  redis::ConnOptions o = testing::private_options(port);
  o.timeout = 500ms;
  o.connect_timeout = 5000ms;  // a loaded machine: a handshake is not a race here
  o.stuck_after = 5000ms;
  o.user = "pgs_conn";
  o.password = "good";
  std::string error;
  o.tls.context = tls::TlsContext::load_client(ca, true, "ca", error);
  EXPECT_NE(o.tls.context, nullptr) << error;
  o.tls.peer = tls::TlsPeer{name, true};
  return o;
}

class RedisTlsTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(pki().error(), "");
    server_.emplace(test::RedisServerOptions{pki().main.cert, pki().main.key, pki().main.ca,
                                             {{"admin", "admin-secret"}, {"pgs_conn", "good"}}});
    ASSERT_TRUE(server_->running()) << server_->log_tail();
  }
  std::optional<test::PrivateRedis> server_;
  TestLoop loop_;
};

TEST_F(RedisTlsTransportTest, StoreOverTlsWithAnAclLogin) {
  redis::RedisStore store(loop_.get(), tls_options(server_->port(), pki().main.ca, "localhost"));
  store.start();
  ASSERT_TRUE(loop_.run_until([&] { return store.connected(); }, 5s)) << store.conn().last_error();
  ASSERT_TRUE(store.set("k", std::string(200000, 'x'), 10s));  // several TLS records
  ASSERT_TRUE(loop_.run_until([&] { return store.stats().stores == 1; }, 5s));
  std::optional<std::string> got;
  ASSERT_TRUE(store.get("k", [&](GetStatus, std::string v) { got = std::move(v); }));
  ASSERT_TRUE(loop_.run_until([&] { return got.has_value(); }, 5s));
  EXPECT_EQ(*got, std::string(200000, 'x'));
  EXPECT_EQ(store.conn_stats().tls_failures, 0u) << store.conn().last_error();
  EXPECT_EQ(server_->cli({"GET", "k"}).out.size(), 200001u) << "stored in the TLS Redis";
}

TEST_F(RedisTlsTransportTest, ACertificateThatDoesNotVerifyNeverConnects) {
  for (auto [ca, name, why] : {std::tuple{pki().other.ca, "localhost", "certificate"},
                               std::tuple{pki().main.ca, "redis.example.com", "hostname mismatch"}}) {
    SCOPED_TRACE(why);
    redis::RedisStore store(loop_.get(), tls_options(server_->port(), ca, name));
    store.start();
    ASSERT_TRUE(loop_.run_until([&] { return store.conn_stats().tls_failures >= 2; }, 5s)) << "retried";
    EXPECT_FALSE(store.connected());
    EXPECT_EQ(store.conn_stats().auth_failures, 0u) << "AUTH is never sent";
    EXPECT_NE(store.conn().last_error().find(why), std::string::npos) << store.conn().last_error();
    EXPECT_FALSE(store.get("k", [](GetStatus, std::string) {}));
  }
}

TEST_F(RedisTlsTransportTest, BlockingClientOverTls) {
  redis::BlockingRedis good(tls_options(server_->port(), pki().main.ca, "127.0.0.1"));
  ASSERT_TRUE(good.connect()) << good.last_error();
  std::string_view set[] = {"SET", "b", "v"};
  auto r = good.command(set);
  ASSERT_TRUE(r.has_value()) << good.last_error();
  EXPECT_EQ((*r)->type, REDIS_REPLY_STATUS);
  std::string_view get[] = {"GET", "b"};
  r = good.command(get);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(std::string((*r)->str, (*r)->len), "v");

  redis::ConnOptions wrong_password = tls_options(server_->port(), pki().main.ca, "localhost");
  wrong_password.password = "bad";
  redis::BlockingRedis refused(wrong_password);
  EXPECT_FALSE(refused.connect());
  EXPECT_NE(refused.last_error().find("WRONGPASS"), std::string::npos) << refused.last_error();

  redis::BlockingRedis unverified(tls_options(server_->port(), pki().other.ca, "localhost"));
  EXPECT_FALSE(unverified.connect());
  EXPECT_NE(unverified.last_error().find("certificate"), std::string::npos) << unverified.last_error();
}

// A scripted server: accepts connections and, for each, runs `script(fd)` on its own thread.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::function<void(int)> script) : script_(std::move(script)) {
    fd_ = test::listen_loopback(port_);
    EXPECT_GE(fd_, 0);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 20) != 1) continue;
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) continue;
        ++accepted_;
        script_(c);
        ::close(c);
      }
    });
  }
  ~ScriptedServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }

  // Reads until `n` bytes arrived (or 5 s passed).
  static std::string read_request(int fd, size_t n) {
    std::string got;
    char buf[512];
    while (got.size() < n) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 5000) != 1) break;
      ssize_t k = ::recv(fd, buf, sizeof buf, 0);
      if (k <= 0) break;
      got.append(buf, static_cast<size_t>(k));
    }
    return got;
  }

 private:
  std::function<void(int)> script_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// Generous deadlines: these requests must fail for what the server sends, not for a timeout.
redis::ConnOptions plain_options(uint16_t port) {
  redis::ConnOptions o = testing::private_options(port);
  o.timeout = 2000ms;
  o.connect_timeout = 2000ms;
  o.stuck_after = 2000ms;
  return o;
}

// Sends `command` on `conn` and runs the loop until its callback ran: the reply as text, or "error".
std::string roundtrip(TestLoop& loop, redis::RedisConn& conn, std::span<const std::string_view> command) {
  std::optional<std::string> out;
  bool sent = conn.command(command, [&](const redisReply* r, redis::ReplyError e) {
    out = e != redis::ReplyError::none ? "error" : r->type == REDIS_REPLY_ARRAY ? "array" : std::string(r->str, r->len);
  });
  if (!sent) return "refused";
  loop.run_until([&] { return out.has_value(); }, 5s);
  return out.value_or("no answer");
}

TEST(RedisHostileServerTest, AReplyInSingleBytesIsPutTogether) {
  const std::string reply = "*2\r\n$5\r\nhello\r\n$0\r\n\r\n";
  ScriptedServer server([&](int fd) {
    ScriptedServer::read_request(fd, 14);  // "*1\r\n$4\r\nPING\r\n"
    for (char ch : reply) ::send(fd, &ch, 1, MSG_NOSIGNAL);
    ScriptedServer::read_request(fd, 1);  // until the client leaves
  });
  TestLoop loop;
  redis::RedisConn conn(loop.get(), plain_options(server.port()));
  conn.start();
  ASSERT_TRUE(loop.run_until([&] { return conn.connected(); }, 5s));
  std::string_view ping[] = {"PING"};
  EXPECT_EQ(roundtrip(loop, conn, ping), "array");
  EXPECT_EQ(conn.stats().disconnects, 0u);
}

TEST(RedisHostileServerTest, GarbageOrAnUnaskedReplyDropsTheConnection) {
  for (std::string garbage : {"?what\r\n", "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n+x\r\n"}) {
    SCOPED_TRACE(garbage);
    ScriptedServer server([&](int fd) {
      ScriptedServer::read_request(fd, 14);
      ::send(fd, garbage.data(), garbage.size(), MSG_NOSIGNAL);
      ScriptedServer::read_request(fd, 1);
    });
    TestLoop loop;
    redis::RedisConn conn(loop.get(), plain_options(server.port()));
    conn.start();
    ASSERT_TRUE(loop.run_until([&] { return conn.connected(); }, 5s));
    std::string_view ping[] = {"PING"};
    EXPECT_EQ(roundtrip(loop, conn, ping), "error") << "the request fails, nothing crashes";
    EXPECT_EQ(conn.stats().failed, 1u);
    EXPECT_TRUE(loop.run_until([&] { return conn.stats().disconnects == 1 && server.accepted() >= 2; }, 5s))
        << "dropped and reconnected";
  }
  ScriptedServer unasked([](int fd) {
    ::send(fd, "+OK\r\n", 5, MSG_NOSIGNAL);
    ScriptedServer::read_request(fd, 1);
  });
  TestLoop loop;
  redis::RedisConn conn(loop.get(), plain_options(unasked.port()));
  conn.start();
  EXPECT_TRUE(loop.run_until([&] { return conn.stats().disconnects >= 1; }, 5s)) << "a reply nobody asked for";
}

}  // namespace
}  // namespace pgs::cache
