// ClientStatements: one client's protocol-level prepared statements under pooling (issue 3; issue 11
// item 2). A client's statement name maps to a proxy-wide server-side name (prepared.h), prepared on
// whichever server the client lands on, once per server. It owns the client's names, their limit, what
// it knows of the unnamed statement and the portals whose Execute changes SQL-prepared statements.
//
// It does no I/O: the connection hands it each decoded Parse, Bind, Describe and Close with what it needs
// to know (what the bound server holds, the pool mode) and carries out the action it returns on its
// server (ServerConn::send_parse, send_bind, send_describe_statement, forward, push_synthetic, ...).
// Views in the messages are read during the call only. Thread affinity: the owning connection's.
//
// Protocol: "Extended Query" in the Postgres protocol docs (ch. 55): a Parse of a name already in use is
// 42P05 duplicate_prepared_statement, a Bind or Describe of a name not in use 26000, a Close of a name not
// in use no error; the unnamed statement lasts until the next Parse of it (pooled: while the server stays).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "protocol/frontend.h"
#include "proxy/session/prepared.h"
#include "proxy/session/sql_prepared.h"
#include "router/classification.h"

namespace pgs::proxy {

// What to do with a client's Parse.
enum class ParseStep : uint8_t {
  forward,         // the unnamed statement: the client's Parse as it came
  prepare,         // a new name: Parse `statement` under its server-side name, tracked (Close a stale plan
                   // of that name first, record it as prepared after)
  parse_complete,  // a new name the server already holds: a ParseComplete of the proxy's own, nothing sent
  duplicate,       // a name the client has: make sure the server holds `statement`, then Parse the client's
                   // text under its server-side name, untracked: the server answers 42P05, as it would
  refuse,          // the client has too many statements: FATAL `sqlstate` `message`
};

struct ParseAction {
  ParseStep step = ParseStep::forward;
  PreparedRef statement;      // prepare, parse_complete, duplicate
  const char* sqlstate = "";  // refuse
  std::string message;        // refuse
};

// Where a client's Bind or Describe of a statement goes.
enum class StatementTarget : uint8_t {
  as_sent,            // unchanged: a portal, the client's own unnamed statement, or a name it did not
                      // prepare with the protocol (a SQL-prepared one, or unknown: the server answers 26000)
  server_name,        // to `statement`'s server-side name, tracked, once the server holds it (ensure_prepared)
  no_such_statement,  // to kNoSuchStatement, untracked: the server answers 26000. A reserved name (another
                      // client's statement), or, in transaction pooling, an unnamed statement this client
                      // did not parse on this server
};

struct Addressed {
  StatementTarget target = StatementTarget::as_sent;
  PreparedRef statement;  // server_name; held, so noting the statement cannot free it
};

// What to do with a client's Close.
enum class CloseStep : uint8_t {
  forward,          // as it came: a portal, or the client's own unnamed statement
  close_complete,   // a CloseComplete of the proxy's own, nothing sent: the client's name is forgotten (the
                    // server keeps the statement for other clients), or it was a name the client may not
                    // close on this server (reserved, or an unnamed statement not its own)
  forward_sql_close,  // as it came; it closes the client's SQL-prepared statement of that name (sql_gate
                      // brought the server to it): gone once the server confirms (attach_sql_effects)
};

// SQL DEALLOCATE of a name the client prepared with the protocol (PQprepare, then DEALLOCATE s1).
struct Deallocation {
  PreparedRef statement;  // forgotten by the client; the server deallocates it (forget_prepared)
  std::string sql;        // what runs in place of the client's statement: DEALLOCATE of the server-side name
};

class ClientStatements {
 public:
  // The SQL-prepared statements a text creates or drops (PREPARE q AS ..., DEALLOCATE q), or null:
  // sql_prep_request() of its classification. A seam for tests (the connection asks its worker).
  using EffectsOf = std::function<SqlPrepEffectsRef(std::string_view sql)>;
  // Named statements one client may keep (real servers have no limit; a bound keeps us bounded).
  static constexpr size_t kMaxStatements = 100000;

  explicit ClientStatements(EffectsOf effects_of, size_t max_statements = kMaxStatements);

  // ---- messages, as they go to the bound server ----
  // `touches_session`: the text may change session state (kept with the statement: probe after use).
  // `server`: the proxy-wide statements the bound server holds. A refused Parse (note_statement) is not
  // handed here. `may_name_sql_prepared`: false when the text has none of mentions_sql_prepared()'s
  // words (the caller's keyword scan said so): the unnamed statement's SQL-prepared effects are none.
  [[nodiscard]] ParseAction on_parse(const protocol::frontend::Parse& parse, bool touches_session,
                                     const ServerStatements& server,
                                     bool may_name_sql_prepared = true);
  // `transaction_pooling`: the server is not the client's own (in session pooling, the server's unnamed
  // statement is the client's whoever parsed it).
  [[nodiscard]] Addressed on_bind(const protocol::frontend::BindView& bind, bool transaction_pooling);
  [[nodiscard]] Addressed on_describe(const protocol::frontend::Describe& describe, bool transaction_pooling) const;
  [[nodiscard]] CloseStep on_close(const protocol::frontend::Close& close, bool transaction_pooling);
  // An unnamed Parse too large to read (client_stream.cc): forwarded as it came, its text unseen.
  void on_unread_unnamed_parse();
  // What the Execute of `portal` does to SQL-prepared statements (the portal was bound from a
  // "PREPARE q AS ..." statement), or null.
  SqlPrepEffectsRef effects_of_portal(std::string_view portal) const;

  // ---- without a server ----
  // A named Parse can be answered by the proxy (ParseComplete) and remembered, to be prepared on
  // whichever server first runs it: the name is new and under the limit.
  bool can_prepare_without_server(std::string_view name) const;
  // Remembers `name` for a Parse answered without a server (as above, or a cache hit). False, and
  // nothing remembered, when the name is new and the client is at the limit.
  bool remember(std::string_view name, std::string_view sql, const std::vector<uint32_t>& param_types);

  // ---- the session ----
  // A server was bound: its unnamed statement is not this client's until it parses one there.
  void on_server_bound() { unnamed_parsed_ = false; }
  // The server was released or lost: its portals and unnamed statement stay with it.
  void on_server_gone();
  // A session change of a statement being sent (note_statement): DISCARD ALL / DEALLOCATE ALL forget every
  // statement at once, and true is returned (the server's go once it succeeds:
  // ServerConn::expect_statements_cleared).
  bool on_session_change(const router::SessionChange& change);
  // A statement that is a SQL DEALLOCATE of a name the client prepared with the protocol: that
  // statement, forgotten, and its replacement. nullopt for any other statement.
  std::optional<Deallocation> take_deallocated(const router::Classification& c);

  // The client's statement of this name (null: unnamed, or not prepared with the protocol).
  const PreparedStatement* find(std::string_view name) const;
  size_t size() const { return by_name_.size(); }

 private:
  PreparedRef lookup(std::string_view name) const;  // find(), held
  // Whether a Bind/Describe/Close of `name` may reach the server's statement of that name.
  bool may_address(std::string_view name, bool transaction_pooling) const;

  EffectsOf effects_of_;
  size_t max_statements_;
  std::unordered_map<std::string, PreparedRef> by_name_;  // the client's named statements
  // This client sent a Parse of the unnamed statement since its server was bound. Without one, the
  // server's unnamed statement is another client's (or stale): a Bind or Describe of "" gets 26000, as on
  // a fresh server (transaction pooling; session pooling keeps the server's own semantics).
  bool unnamed_parsed_ = false;
  SqlPrepEffectsRef unnamed_sql_effects_;  // of the unnamed statement (Parse "PREPARE q AS ...")
  std::unordered_map<std::string, SqlPrepEffectsRef> portal_sql_effects_;  // portals bound from such
};

}  // namespace pgs::proxy
