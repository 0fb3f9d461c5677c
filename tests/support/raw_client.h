// A tiny raw-socket PostgreSQL client for bad-input tests: builds startup and typed messages byte by
// byte, logs in (trust, cleartext, md5, SCRAM-SHA-256 written here on OpenSSL, independent of
// protocol/), and reads back messages and ErrorResponse fields. Every read has a deadline.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/support/wait.h"

namespace pgs::test {

// One typed backend message: type byte and body (without the length).
struct Msg {
  char type = 0;
  std::string body;
};

// ErrorResponse / NoticeResponse fields by code: 'S' severity, 'V', 'C' SQLSTATE, 'M' message.
struct ErrorFields {
  std::map<char, std::string> fields;
  std::string sqlstate() const { return get('C'); }
  std::string message() const { return get('M'); }
  std::string get(char code) const;
  std::string describe() const;  // "FATAL 28P01 password authentication failed ..."
};
ErrorFields parse_error_fields(const std::string& body);

// ---- encoders and decoders ----
std::string be16(uint16_t v);
std::string be32(uint32_t v);
std::string cstr(std::string_view s);  // s + NUL
// The big-endian uint32 at `at` (the caller checks that 4 bytes are there).
uint32_t get_be32(const std::string& s, size_t at);
// Untyped startup-phase packet: length, code, body.
std::string startup_packet_raw(uint32_t code, const std::string& body);
// Protocol 3.0 StartupMessage with the given parameters (user, database, ...).
std::string startup_packet(const std::vector<std::pair<std::string, std::string>>& params,
                           uint32_t code = 196608);
std::string typed_message(char type, const std::string& body);
std::string query_message(const std::string& sql);
inline std::string terminate_message() { return typed_message('X', ""); }

// What came back from a connection until it closed or went quiet.
struct Drain {
  std::string bytes;
  bool closed = false;     // EOF or reset seen
  bool reset = false;      // ECONNRESET
  bool timed_out = false;  // still open at the deadline
};

class RawConn {
 public:
  RawConn(const std::string& host, uint16_t port);  // throws when the connect fails
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;
  ~RawConn();

  bool send(std::string_view bytes);  // false when the peer is gone (EPIPE/ECONNRESET)
  // One byte (SSLRequest / GSSENCRequest answer); nullopt on EOF or deadline.
  std::optional<char> read_byte(Millis deadline);
  // One typed message; nullopt on EOF, deadline, or a length < 4 (closed() tells which).
  std::optional<Msg> read_message(Millis deadline);
  // Reads until EOF or the deadline, keeping at most `keep` bytes.
  Drain drain(Millis deadline, size_t keep = 1 << 20);
  // Reads up to `max` bytes that are available within `deadline` (throttled readers).
  size_t read_some(char* buf, size_t max, Millis deadline);
  bool closed() const { return closed_; }
  void set_rcvbuf(int bytes);
  void close_with_reset();  // SO_LINGER 0: the peer sees ECONNRESET, as if the process died
  int fd() const { return fd_; }

 private:
  bool fill(size_t n, Millis deadline);  // until buf_ holds n unread bytes
  void consume(size_t n);
  int fd_ = -1;
  bool closed_ = false;
  std::string buf_;  // received bytes; [pos_, size) not yet consumed
  size_t pos_ = 0;
};

struct LoginOutcome {
  bool ok = false;                   // ReadyForQuery reached
  std::optional<ErrorFields> error;  // ErrorResponse during login
  std::string problem;               // anything else (EOF, timeout, unexpected message)
  int auth_code = -1;                // first AuthenticationRequest code seen
  std::map<std::string, std::string> parameters;  // ParameterStatus
  std::string describe() const;
};

// Startup + authentication with `password` (ignored for trust), until ReadyForQuery or an error.
LoginOutcome login(RawConn& c, const std::string& user, const std::string& password,
                   const std::string& database,
                   const std::vector<std::pair<std::string, std::string>>& extra = {},
                   Millis deadline = Millis(10000));
// The same after the startup packet was already sent (e.g. after an SSLRequest 'N').
LoginOutcome finish_login(RawConn& c, const std::string& user, const std::string& password,
                          Millis deadline = Millis(10000));

struct QueryOutcome {
  std::vector<Msg> messages;         // everything before ReadyForQuery
  std::optional<ErrorFields> error;  // first ErrorResponse
  char status = 0;                   // ReadyForQuery status, 0 when none arrived
  bool closed = false;
};
// Simple Query; reads until ReadyForQuery, EOF or the deadline.
QueryOutcome simple_query(RawConn& c, const std::string& sql, Millis deadline = Millis(10000));
// Reads messages until ReadyForQuery, EOF or the deadline.
QueryOutcome read_until_ready(RawConn& c, Millis deadline = Millis(10000));

// SCRAM-SHA-256 client proof computation (RFC 5802), exposed for tests of the helper itself.
std::string scram_client_final(const std::string& password, const std::string& client_first_bare,
                               const std::string& server_first, std::string* server_signature_b64);
std::string md5_response(const std::string& user, const std::string& password,
                         const std::string& salt4);
// Lower-case hex MD5 of `data` (also for checksums of test payloads).
std::string md5_hex(const std::string& data);

}  // namespace pgs::test
