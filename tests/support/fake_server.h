// A scripted stand-in for Postgres on loopback, so that the proxy's server side (ServerConn, Pool) can be
// tested message by message without a real server, including what no real server does on demand (a
// FATAL while idle, a close in the middle of a reply, a ParameterStatus inside a result).
//
// Every connection is logged in by the server's own thread: the startup packet is read and answered
// with AuthenticationOk, a few ParameterStatus, BackendKeyData and ReadyForQuery 'I'. Then:
//  - a connection whose startup names an application_name (libpq's: the proxy's catalog watcher and
//    health monitor) is served in the background: every Query gets ERROR XX000 and ReadyForQuery;
//  - every other one (the proxy's pool connections) is queued for the test, which takes it with
//    accept() and from then on reads each message the proxy sent and writes the replies it chooses.
// Every read has a deadline.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/raw_client.h"
#include "tests/support/wait.h"

namespace pgs::test {

// One connection from the proxy, logged in; the test's side of it.
class FakeBackend {
 public:
  FakeBackend(int fd, std::map<std::string, std::string> startup, int32_t pid);
  FakeBackend(const FakeBackend&) = delete;
  FakeBackend& operator=(const FakeBackend&) = delete;
  ~FakeBackend();

  const std::map<std::string, std::string>& startup() const { return startup_; }
  int32_t pid() const { return pid_; }
  // The next message the proxy sent (type and body); nullopt on EOF or at the deadline.
  std::optional<Msg> read(Millis deadline);
  // Messages until (and with) the first of type `last` (a Sync, say); empty if it did not come.
  std::vector<Msg> read_until(char last, Millis deadline);
  bool eof() const { return eof_; }  // the proxy closed it (seen by a read)
  bool send(const std::string& bytes);
  // True when the proxy closed the connection within `deadline` (any unread message is skipped).
  bool closed_by_peer(Millis deadline);
  void close();
  // The proxy's end of this connection: its local port (getpeername; 0 once closed).
  uint16_t peer_port() const;

  // ---- backend messages ----
  static std::string ready(char status = 'I');
  static std::string command_complete(const std::string& tag);
  static std::string row_description(const std::vector<std::string>& columns);  // text columns
  static std::string data_row(const std::vector<std::optional<std::string>>& values);
  static std::string error(const std::string& severity, const std::string& sqlstate, const std::string& message);
  static std::string parameter_status(const std::string& name, const std::string& value);
  static std::string parse_complete() { return typed_message('1', ""); }
  // A one-column, one-row SELECT reply up to ReadyForQuery.
  static std::string select_one(const std::string& column, const std::string& value, char status = 'I');

 private:
  bool fill(size_t n, Millis deadline);
  int fd_;
  std::map<std::string, std::string> startup_;
  int32_t pid_;
  std::string buf_;   // read, not yet returned
  bool eof_ = false;
};

// A scripted authentication (server TLS and login hardening tests): step 0 is called with "" and returns
// what the server says after the startup packet (an AuthenticationRequest); each later step is called
// with the body of the proxy's next message (a PasswordMessage, SASLInitialResponse or SASLResponse) and
// returns the next reply. After the last step the server sends the rest of the welcome (ParameterStatus,
// BackendKeyData, ReadyForQuery): the last step's reply should end with AuthenticationOk.
using LoginStep = std::function<std::string(const std::string& proxy_message_body)>;

class FakeServer {
 public:
  FakeServer();  // listens on 127.0.0.1, a free port
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;
  ~FakeServer();

  uint16_t port() const { return port_; }
  // The next pool connection (logged in already), within `deadline`; nullptr if none came.
  std::unique_ptr<FakeBackend> accept(Millis deadline);
  // Pool connections logged in so far (taken or not).
  int pool_connections() const { return pool_connections_.load(); }
  // CancelRequests received. Each cancel connection is closed at once (as Postgres closes it once the
  // backend is signalled), or, while held, kept open until hold_cancels(false): a cancel in flight.
  int cancel_requests() const;
  void hold_cancels(bool hold);

  // How an SSLRequest is answered (default 'N'; the fake speaks no TLS). Counted: those of pool
  // connections that went on to their startup packet (libpq's are not).
  void set_ssl_answer(char answer);
  int ssl_requests() const;
  // Pool connections from now on log in through `steps` instead of a plain AuthenticationOk (libpq's
  // background connections do not). Empty: the plain login again.
  void set_login_script(std::vector<LoginStep> steps);
  // Scripted logins the proxy closed before the script ended (it refused the server), and every
  // message body the proxy sent in scripted logins (a cleartext password, SCRAM messages).
  int scripted_logins_abandoned() const;
  std::vector<std::string> scripted_messages() const;

  // ---- authentication requests, for scripts ----
  static std::string auth_request(int32_t code, const std::string& data = {});

 private:
  // Runs the login script on a new pool connection: true when it ran to its end (then the welcome is due).
  bool run_login_script(int fd, const std::vector<LoginStep>& steps);
  void run();
  void serve_in_background(std::unique_ptr<FakeBackend> conn);

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> pool_connections_{0};
  std::atomic<int32_t> next_pid_{10000};
  std::thread acceptor_;
  std::vector<std::thread> background_;
  mutable std::mutex mu_;
  bool hold_cancels_ = false;
  int cancel_requests_ = 0;
  std::vector<int> held_cancels_;
  char ssl_answer_ = 'N';
  int ssl_requests_ = 0;
  std::vector<LoginStep> login_script_;
  int scripted_abandoned_ = 0;
  std::vector<std::string> scripted_messages_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<FakeBackend>> ready_;
};

}  // namespace pgs::test
