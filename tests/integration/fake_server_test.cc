// The proxy's server side, message by message, against a scripted server (tests/support/fake_server.h)
// instead of Postgres: what the proxy sends a server for a client's request, how it matches the replies,
// and what it does when a server misbehaves in ways a real one does only by accident (a FATAL while idle
// in the pool, a close in the middle of a reply, a ParameterStatus inside a result). A pool of one server
// makes a leaked or wrongly reused connection visible.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <csignal>
#include <future>
#include <memory>
#include <string>

#include "tests/integration/harness.h"
#include "tests/support/fake_server.h"
#include "tests/support/net.h"

namespace pgs::it {
namespace {

constexpr Millis kStep{5000};  // deadline of one step of a conversation

class FakeServerTest : public ProxyTest {
 protected:
  // A proxy whose primary is fake_, one worker, a pool of one, and a client logged in through it.
  // The proxy's start-up login opened the one server connection (for the welcome parameters): server_,
  // idle in the pool.
  void begin() {
    ProxyOptions o;
    o.workers = 1;
    o.pool_size = 1;
    // Every idle server is checked before it is handed out: a test cannot wait the default second.
    o.pool_toml = "server_check_delay = \"0\"\n";
    o.primary_port = fake_.port();
    proxy_ = &start_proxy(o);
    server_ = fake_.accept(kStep);
    ASSERT_TRUE(server_) << "the proxy did not log in to the fake server";
    client_ = std::make_unique<Pg>(proxy_->spec());
    ASSERT_TRUE(client_->ok()) << client_->error();
  }

  // The conversation ends before the proxy is stopped: a server left waiting for an answer (the
  // proxy's session probe, say) would hold the proxy's shutdown for its whole timeout.
  void TearDown() override {
    client_.reset();
    server_.reset();
    ProxyTest::TearDown();
  }

  FakeServer fake_;
  Proxy* proxy_ = nullptr;
  std::unique_ptr<FakeBackend> server_;
  std::unique_ptr<Pg> client_;

  // The client's next statement as the server sees it: the Query text, after answering what the
  // proxy sends on its own, as Postgres would: a SET that brings the server to the client's settings,
  // and the session-state probe (this server has no catalog for the proxy to read, so a statement that
  // names a relation or calls a function may have run code the proxy cannot see: default-deny).
  static std::string next_query(FakeBackend& server) {
    while (auto m = server.read(kStep)) {
      if (m->type != 'Q') return std::string("unexpected message ") + m->type;
      std::string sql = m->body.substr(0, m->body.size() - 1);
      if (sql.rfind("SET ", 0) == 0 || sql.rfind("RESET ", 0) == 0) {
        server.send(FakeBackend::command_complete("SET") + FakeBackend::ready('I'));
      } else if (sql.find("pg_listening_channels()") != std::string::npos) {
        // Nothing listens, no advisory lock, no temp table or held cursor, no prepared statement, the
        // login role, no session setting.
        server.send(FakeBackend::row_description({"l", "a", "t", "c", "p", "r", "s"}) +
                    FakeBackend::data_row({"0", "0", "0", "0", std::nullopt, "0", std::nullopt}) +
                    FakeBackend::command_complete("SELECT 1") + FakeBackend::ready('I'));
      } else {
        return sql;
      }
    }
    return "no message";
  }
};

TEST_F(FakeServerTest, QueryIsForwardedAsSentAndTheServerIsReusedAfterReadyForQuery) {
  PGS_IT_REQUIRE_PROXY();
  ASSERT_NO_FATAL_FAILURE(begin());
  Pg& c = *client_;
  FakeBackend* server = server_.get();
  for (int i = 0; i < 3; ++i) {
    auto reply = std::async(std::launch::async, [&] { return c.scalar("SELECT 42"); });
    EXPECT_EQ(next_query(*server), "SELECT 42");
    server->send(FakeBackend::select_one("answer", "42"));
    ASSERT_EQ(reply.wait_for(kStep), std::future_status::ready);
    EXPECT_EQ(reply.get(), "42");
  }
  EXPECT_EQ(fake_.pool_connections(), 1) << "each transaction should reuse the one server";
}

// Whether the proxy reads the FATAL before the client's query or not (both may be ready in the same loop
// turn: it was flaky under load), the query must not be given to the dead server: server_check_delay = 0
// peeks at every idle server before it is handed out.
TEST_F(FakeServerTest, AnIdleServerThatSendsFatalIsReplacedWithoutAnErrorToAnyone) {
  PGS_IT_REQUIRE_PROXY();
  ASSERT_NO_FATAL_FAILURE(begin());
  Pg& c = *client_;
  FakeBackend* server = server_.get();
  // What Postgres sends to every backend at a fast shutdown or pg_terminate_backend().
  server->send(FakeBackend::error("FATAL", "57P01", "terminating connection due to administrator command"));
  server->close();
  auto reply = std::async(std::launch::async, [&] { return c.exec("SELECT 42"); });
  auto fresh = fake_.accept(kStep);
  ASSERT_TRUE(fresh) << "no new server connection after the idle one died\n" << proxy_->log_tail();
  EXPECT_EQ(next_query(*fresh), "SELECT 42");
  fresh->send(FakeBackend::select_one("answer", "42"));
  ASSERT_EQ(reply.wait_for(kStep), std::future_status::ready);
  PgResult r = reply.get();
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(0, 0), "42");
  // Dropped at the hand-over check, or earlier by its own read callback: either way no client saw it.
  EXPECT_GE(metric_value(scrape_metrics(*proxy_), "pgsidecar_servers_failed_check_total", ""), 0);
}

// The race of the test above, made deterministic: the proxy is stopped (SIGSTOP, waited for) while a
// client's Query and then the idle server's FATAL and close reach its sockets (waited for too), so that
// on SIGCONT one epoll_wait returns both, the client's first. The hand-over check (server_check_delay =
// 0 here) must see the FATAL waiting in the server's socket and give the query to a new server instead.
// Without the check it fails every time; with a bare kill(SIGSTOP) it failed 2 times in 12, when the
// proxy still ran as the query arrived.
TEST_F(FakeServerTest, AQueryReadBeforeTheIdleServersFatalIsNotGivenToThatServer) {
  PGS_IT_REQUIRE_PROXY();
  ASSERT_NO_FATAL_FAILURE(begin());
  RawConn raw(proxy_->host(), proxy_->port());
  LoginOutcome in = login(raw, kUser, kPassword, kDatabase);
  ASSERT_TRUE(in.ok) << in.describe();
  struct Resume {
    pid_t pid;
    ~Resume() { ::kill(pid, SIGCONT); }
  } resume{proxy_->pid()};
  ASSERT_TRUE(stop_process_and_wait(proxy_->pid(), kStep)) << "the proxy did not stop";
  ASSERT_TRUE(raw.send(query_message("SELECT 42")));
  const uint16_t proxy_server_port = server_->peer_port();
  ASSERT_NE(proxy_server_port, 0);
  server_->send(FakeBackend::error("FATAL", "57P01", "terminating connection due to administrator command"));
  server_->close();
  // Both have reached the proxy's sockets before it resumes (loopback delivery may lag behind send()
  // in a softirq thread): the query unread in the client's, the FATAL and the close in the server's.
  sockaddr_in raw_address{};
  socklen_t raw_address_size = sizeof raw_address;
  ASSERT_EQ(getsockname(raw.fd(), reinterpret_cast<sockaddr*>(&raw_address), &raw_address_size), 0);
  ASSERT_TRUE(wait_until([&] {
    auto client_side = tcp_socket_queue(proxy_->port(), ntohs(raw_address.sin_port));
    auto server_side = tcp_socket_queue(proxy_server_port, fake_.port());
    return client_side && client_side->unread > 0 && server_side && server_side->state == kTcpCloseWait &&
           server_side->unread > 0;
  }, kStep, Millis(1))) << "the query or the FATAL never reached the proxy's sockets";
  ASSERT_EQ(::kill(proxy_->pid(), SIGCONT), 0);
  auto fresh = fake_.accept(kStep);
  ASSERT_TRUE(fresh) << "no new server connection: the query went to the dead server\n" << proxy_->log_tail();
  EXPECT_EQ(next_query(*fresh), "SELECT 42");
  fresh->send(FakeBackend::select_one("answer", "42"));
  QueryOutcome out = read_until_ready(raw, kStep);
  EXPECT_FALSE(out.error.has_value()) << out.error->describe();
  EXPECT_EQ(out.status, 'I');
  // Worker metrics are published about once a second.
  EXPECT_TRUE(wait_until(
      [&] { return metric_value(scrape_metrics(*proxy_), "pgsidecar_servers_failed_check_total", "") >= 1; },
      kStep, Millis(50)));
}

TEST_F(FakeServerTest, AServerLostInTheMiddleOfAReplyIsAnErrorNotAHang) {
  PGS_IT_REQUIRE_PROXY();
  ASSERT_NO_FATAL_FAILURE(begin());
  Pg& c = *client_;
  FakeBackend* server = server_.get();
  auto reply = std::async(std::launch::async, [&] { return c.exec_within("SELECT 42", kStep); });
  EXPECT_EQ(next_query(*server), "SELECT 42");
  server->send(FakeBackend::row_description({"answer"}));  // half a reply, then the connection ends
  server->close();
  ASSERT_EQ(reply.wait_for(kStep + kStep), std::future_status::ready);
  std::optional<PgResult> r = reply.get();
  ASSERT_TRUE(r.has_value()) << "the client got no answer: it hangs";
  // FATAL 08006 from the proxy, then the close; libpq keeps the message (its SQLSTATE field may be lost
  // when it builds the result after the close).
  EXPECT_EQ(r->status(), PGRES_FATAL_ERROR);
  EXPECT_NE(r->error().find("server connection lost"), std::string::npos) << r->error();
  // The pool is not left without a server: the next client gets a new one.
  Pg next(proxy_->spec());
  ASSERT_TRUE(next.ok()) << next.error();
  auto second = std::async(std::launch::async, [&] { return next.exec("SELECT 1"); });
  auto fresh = fake_.accept(kStep);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(next_query(*fresh), "SELECT 1");
  fresh->send(FakeBackend::select_one("x", "1"));
  ASSERT_EQ(second.wait_for(kStep), std::future_status::ready);
  EXPECT_TRUE(second.get().ok());
}

// After an ErrorResponse in an extended-protocol batch, Postgres answers nothing more until the Sync.
// The proxy must match that ReadyForQuery to the batch, not wait for the skipped replies, and keep the
// server for the next transaction.
TEST_F(FakeServerTest, AnErrorInABatchSkipsToItsSyncAndTheServerStaysInUse) {
  PGS_IT_REQUIRE_PROXY();
  ASSERT_NO_FATAL_FAILURE(begin());
  Pg& c = *client_;
  FakeBackend* server = server_.get();
  auto reply = std::async(std::launch::async, [&] { return c.exec_params("SELECT * FROM missing WHERE a = $1", {"x"}); });
  std::vector<Msg> batch = server->read_until('S', kStep);
  ASSERT_FALSE(batch.empty()) << "no Sync reached the server";
  EXPECT_EQ(batch.front().type, 'P');
  server->send(FakeBackend::error("ERROR", "42P01", "relation \"missing\" does not exist") + FakeBackend::ready('I'));
  ASSERT_EQ(reply.wait_for(kStep), std::future_status::ready);
  EXPECT_EQ(reply.get().sqlstate(), "42P01");
  auto again = std::async(std::launch::async, [&] { return c.scalar("SELECT 7"); });
  EXPECT_EQ(next_query(*server), "SELECT 7");
  server->send(FakeBackend::select_one("x", "7"));
  ASSERT_EQ(again.wait_for(kStep), std::future_status::ready);
  EXPECT_EQ(again.get(), "7");
  EXPECT_EQ(fake_.pool_connections(), 1);
}

// A ParameterStatus in the middle of a result (a SET inside a function, say) reaches the client, which
// then reports the new value.
TEST_F(FakeServerTest, AParameterStatusInsideAResultReachesTheClient) {
  PGS_IT_REQUIRE_PROXY();
  ASSERT_NO_FATAL_FAILURE(begin());
  Pg& c = *client_;
  FakeBackend* server = server_.get();
  auto reply = std::async(std::launch::async, [&] { return c.scalar("SELECT set_zone()"); });
  EXPECT_EQ(next_query(*server), "SELECT set_zone()");
  server->send(FakeBackend::row_description({"set_zone"}) + FakeBackend::data_row({std::string("ok")}) +
               FakeBackend::parameter_status("TimeZone", "Europe/Paris") + FakeBackend::command_complete("SELECT 1") +
               FakeBackend::ready('I'));
  ASSERT_EQ(reply.wait_for(kStep), std::future_status::ready);
  EXPECT_EQ(reply.get(), "ok");
  const char* zone = PQparameterStatus(c.get(), "TimeZone");
  EXPECT_STREQ(zone != nullptr ? zone : "(none)", "Europe/Paris");
}

// A client that sends cancel after cancel while one is in flight (Postgres has not closed its cancel
// connection yet) opens one cancel connection, not one per request: a storm cannot flood the server.
// The one that waited is sent once the first is resolved, since the query still runs.
TEST_F(FakeServerTest, CancelsToOneServerAreForwardedOneAtATime) {
  PGS_IT_REQUIRE_PROXY();
  ASSERT_NO_FATAL_FAILURE(begin());
  Pg& c = *client_;
  FakeBackend* server = server_.get();
  ASSERT_EQ(PQsendQuery(c.get(), "SELECT pg_sleep(60)"), 1);
  EXPECT_EQ(next_query(*server), "SELECT pg_sleep(60)");  // running: the server does not answer yet
  fake_.hold_cancels(true);
  PGcancel* cancel = PQgetCancel(c.get());
  char err[256];
  for (int i = 0; i < 20; ++i) ASSERT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
  PQfreeCancel(cancel);
  ASSERT_TRUE(wait_until([&] { return fake_.cancel_requests() >= 1; }, kStep));
  EXPECT_FALSE(wait_until([&] { return fake_.cancel_requests() > 1; }, Millis(1000)))
      << fake_.cancel_requests() << " cancel connections in flight to one server at once";
  fake_.hold_cancels(false);  // the first is resolved: the one that waited goes now
  EXPECT_TRUE(wait_until([&] { return fake_.cancel_requests() == 2; }, kStep)) << fake_.cancel_requests();
  server->send(FakeBackend::error("ERROR", "57014", "canceling statement due to user request") + FakeBackend::ready('I'));
  PgResult r(PQgetResult(c.get()));
  EXPECT_EQ(r.sqlstate(), "57014") << r.error();
  while (PGresult* more = PQgetResult(c.get())) PQclear(more);
  EXPECT_EQ(fake_.cancel_requests(), 2);
}

// The server dies while a cancel to it is in flight and another waits behind it: the client hears the
// connection was lost, the waiting cancel is dropped (it would reach whatever backend next has that
// key), nothing crashes, and the next client gets a new server.
TEST_F(FakeServerTest, AServerLostWhileACancelWaitsDropsThatCancel) {
  PGS_IT_REQUIRE_PROXY();
  ASSERT_NO_FATAL_FAILURE(begin());
  Pg& c = *client_;
  FakeBackend* server = server_.get();
  ASSERT_EQ(PQsendQuery(c.get(), "SELECT pg_sleep(60)"), 1);
  EXPECT_EQ(next_query(*server), "SELECT pg_sleep(60)");
  fake_.hold_cancels(true);
  PGcancel* cancel = PQgetCancel(c.get());
  char err[256];
  for (int i = 0; i < 2; ++i) ASSERT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
  PQfreeCancel(cancel);
  ASSERT_TRUE(wait_until([&] { return fake_.cancel_requests() >= 1; }, kStep));
  server->close();  // the backend dies with one cancel in flight and one waiting
  PgResult r(PQgetResult(c.get()));
  EXPECT_EQ(r.status(), PGRES_FATAL_ERROR);
  EXPECT_NE(r.error().find("server connection lost"), std::string::npos) << r.error();
  while (PGresult* more = PQgetResult(c.get())) PQclear(more);
  fake_.hold_cancels(false);  // the first cancel is resolved: the waiting one must not follow
  EXPECT_FALSE(wait_until([&] { return fake_.cancel_requests() > 1; }, Millis(1000)))
      << "a cancel was sent for a server that is gone";
  Pg next(proxy_->spec());
  ASSERT_TRUE(next.ok()) << next.error();
  auto second = std::async(std::launch::async, [&] { return next.exec("SELECT 1"); });
  auto fresh = fake_.accept(kStep);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(next_query(*fresh), "SELECT 1");
  fresh->send(FakeBackend::select_one("x", "1"));
  ASSERT_EQ(second.wait_for(kStep), std::future_status::ready);
  EXPECT_TRUE(second.get().ok());
}

}  // namespace
}  // namespace pgs::it
