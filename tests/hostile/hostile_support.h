// Support for the hostile-client suite and the live protocol fuzzer: encoders for every frontend
// message (well-formed, and with any declared length), a send with a deadline, DataRow decoding,
// the "hostile prelude" (session state a misbehaving client leaves on its server) and the honest
// client's check that none of it leaked and that the pool of one server is free again.
// Every wait has a deadline; nothing here sleeps without a condition.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/support/raw_client.h"

namespace pgs::it::hostile {

// ---- frontend message encoders (protocol "Message Formats"); be16, be32, cstr and typed_message
// are tests/support/raw_client.h ----
// A typed message whose length field says `declared` whatever the body's real size.
std::string with_length(char type, uint32_t declared, std::string_view body);

std::string parse_msg(const std::string& name, const std::string& sql, const std::vector<uint32_t>& oids = {});
// Bind with text parameters (nullopt = NULL) and no result formats.
std::string bind_msg(const std::string& portal, const std::string& stmt,
                     const std::vector<std::optional<std::string>>& params = {});
std::string describe_msg(char kind, const std::string& name);
std::string execute_msg(const std::string& portal, int32_t max_rows = 0);
std::string close_msg(char kind, const std::string& name);
inline std::string sync_msg() { return typed_message('S', ""); }
inline std::string flush_msg() { return typed_message('H', ""); }
inline std::string copy_data_msg(const std::string& data) { return typed_message('d', data); }
inline std::string copy_done_msg() { return typed_message('c', ""); }
inline std::string copy_fail_msg(const std::string& why) { return typed_message('f', cstr(why)); }
// FunctionCall with text arguments and a text result.
std::string function_call_msg(uint32_t oid, const std::vector<std::string>& args);
inline std::string password_msg(const std::string& pw) { return typed_message('p', cstr(pw)); }

// One sample body per frontend type (what a well-formed message of that type carries).
struct TypeSample {
  char type;
  const char* name;
  std::string body;
};
std::vector<TypeSample> frontend_samples();  // Q P B D E S H C d c f F X p, plus unknown types

// ---- I/O with deadlines ----
enum class SendResult { ok, closed, timed_out };
// Sends all of `bytes` unless the peer goes away or `deadline` passes (the proxy may stop reading).
SendResult send_within(RawConn& c, std::string_view bytes, Millis deadline);

// How a connection ended up after a bad input.
struct Verdict {
  std::vector<Msg> messages;         // all messages read
  std::optional<ErrorFields> error;  // first ErrorResponse
  char ready = 0;                    // last ReadyForQuery status, 0 if none
  bool closed = false;               // EOF / reset seen
  bool timed_out = false;            // neither closed nor ReadyForQuery (after an error) by the deadline
  std::string describe() const;
};
// Reads until ReadyForQuery, EOF, or (when `stop_at_error`) the first ErrorResponse; else until
// `deadline`.
Verdict read_verdict(RawConn& c, Millis deadline, bool stop_at_error = false);

// Column values of every DataRow in `messages` (nullopt = NULL).
using Row = std::vector<std::optional<std::string>>;
std::vector<Row> data_rows(const std::vector<Msg>& messages);
// All bytes of all message bodies (to search for another client's marker).
std::string all_bodies(const std::vector<Msg>& messages);

// ---- state isolation ----
inline constexpr const char* kHostileSecret = "hostile-secret";
inline constexpr int64_t kHostileLockKey = 424242;

// Logs `c` in as the hostile client and leaves session state on its server: application_name,
// statement_timeout, a SQL PREPAREd statement, LISTEN, an advisory lock, a temp table, an open
// transaction with a row in it. "" when all of it worked, else what failed.
std::string hostile_prelude(RawConn& c, Proxy& p);

// What the honest client found; empty `problems` means clean.
struct HonestReport {
  std::vector<std::string> problems;
  // SQL-prepared statements of other clients listed in pg_prepared_statements (not executable): a
  // problem unless check_honest was told they are expected (see below).
  int foreign_sql_prepared = 0;
  bool ok() const { return problems.empty(); }
  std::string describe() const;
};
// An honest client logs in (application_name=honest) to the pool of one server and checks, each
// within a deadline: SELECT 1 works; its application_name is its own; no transaction is open; no
// prepared statement, LISTEN channel, temp table or statement_timeout of the hostile client is
// visible; the hostile statement cannot be EXECUTEd; no reply carries the hostile secret; the
// advisory lock is released (seen by the superuser on the primary); at most `max_servers` server
// connections of the proxy to the primary remain in database flopods.
// `listed_foreign_statements_ok`: SQL-prepared statements of another client listed in
// pg_prepared_statements are counted, not a problem (none should be: the proxy deallocates them
// before another client's request runs on that server).
HonestReport check_honest(Proxy& p, int max_servers = 1, Millis deadline = Millis(10000),
                          bool listed_foreign_statements_ok = false);

// The proxy's pool counters from SHOW POOLS (admin console) for flopods/flopods on the primary:
// sv_active + sv_used + sv_login (servers not idle), and cl_active + cl_waiting. nullopt when the
// admin console did not answer.
struct PoolCounts {
  int cl_active = 0, cl_waiting = 0, sv_active = 0, sv_idle = 0, sv_used = 0, sv_login = 0;
};
std::optional<PoolCounts> show_pools(Proxy& p);

}  // namespace pgs::it::hostile
