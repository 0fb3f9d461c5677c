// ClientStatements, message by message, with no network and no Postgres: the test writes each client
// message as a client would, decodes it as the connection does, and reads the action the component
// returns. A ServerStatements stands for what the bound server holds (the connection records a tracked
// Parse there, as ServerConn::note_prepared does).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "protocol/frame.h"
#include "protocol/frontend.h"
#include "protocol/writer.h"
#include "proxy/session/client_statements.h"
#include "proxy/session/prepared.h"
#include "router/classification.h"

namespace pgs::proxy {
namespace {

namespace pf = protocol::frontend;

constexpr bool kTransaction = true;  // transaction_pooling
constexpr bool kSession = false;

// One client message: its bytes, and the views decoded from them (which point into `wire`).
class Wire {
 public:
  explicit Wire(std::string wire) : wire_(std::move(wire)) {
    protocol::Bytes bytes(reinterpret_cast<const uint8_t*>(wire_.data()), wire_.size());
    auto r = protocol::split_frame(bytes, 1 << 20);
    const auto* f = std::get_if<protocol::Frame>(&r);
    if (f == nullptr) {
      ADD_FAILURE() << "the test wrote an incomplete message";
      return;
    }
    auto m = pf::decode_message(*f);
    if (!m.ok()) {
      ADD_FAILURE() << "the test wrote a message that does not decode";
      return;
    }
    message_ = std::move(m.value());
  }
  Wire(const Wire&) = delete;
  Wire& operator=(const Wire&) = delete;

  template <typename T>
  const T& as() const {
    const T* v = message_.as<T>();
    if (v == nullptr) {
      ADD_FAILURE() << "not the message type the test expected";
      static const T none{};
      return none;
    }
    return *v;
  }

 private:
  std::string wire_;
  pf::Message message_;
};

std::unique_ptr<Wire> parse_msg(std::string_view name, std::string_view sql, std::vector<uint32_t> types = {}) {
  std::string out;
  protocol::write_parse(out, name, sql, types);
  return std::make_unique<Wire>(std::move(out));
}

std::unique_ptr<Wire> bind_msg(std::string_view portal, std::string_view statement) {
  std::string out;
  // No parameter formats, no values, no result formats.
  protocol::write_bind(out, portal, statement, std::string_view("\0\0\0\0\0\0", 6));
  return std::make_unique<Wire>(std::move(out));
}

std::unique_ptr<Wire> describe_msg(char kind, std::string_view name) {
  std::string out;
  protocol::write_describe(out, kind, name);
  return std::make_unique<Wire>(std::move(out));
}

std::unique_ptr<Wire> close_msg(char kind, std::string_view name) {
  std::string out;
  protocol::write_close(out, kind, name);
  return std::make_unique<Wire>(std::move(out));
}

// Stands for sql_prep_request(): a "PREPARE q AS ..." text creates q; anything else changes nothing.
SqlPrepEffectsRef fake_effects_of(std::string_view sql) {
  if (!sql.starts_with("PREPARE ")) return nullptr;
  auto e = std::make_shared<SqlPrepEffects>();
  std::string name(sql.substr(8, sql.find(' ', 8) - 8));
  e->by_statement.emplace_back(SqlPrepEffect{SqlPrepEffect::Op::prepare, name, std::string(sql), "PREPARE"});
  return e;
}

ClientStatements make_client(size_t max_statements = ClientStatements::kMaxStatements) {
  return ClientStatements(fake_effects_of, max_statements);
}

// Parses `name` on `server` and carries out a prepare as the connection does (the server holds it then).
ParseAction parse_on(ClientStatements& client, ServerStatements& server, std::string_view name,
                     std::string_view sql, std::vector<uint32_t> types = {}) {
  auto p = parse_msg(name, sql, std::move(types));
  ParseAction a = client.on_parse(p->as<pf::Parse>(), false, server);
  if (a.step == ParseStep::prepare) (void)server.insert(a.statement->server_name);
  return a;
}

router::SessionChange change(router::SessionOp op) {
  router::SessionChange ch;
  ch.op = op;
  return ch;
}

// ---- Parse ----

TEST(ClientStatements, NamedParseGetsAProxyWideNameAndIsSentOncePerServer) {
  ServerStatements server(100);
  ClientStatements alice = make_client();
  ClientStatements bob = make_client();
  ParseAction first = parse_on(alice, server, "s1", "select $1", {23});
  ASSERT_EQ(first.step, ParseStep::prepare);
  EXPECT_EQ(first.statement->server_name, make_prepared("select $1", {23})->server_name);
  EXPECT_EQ(first.statement->sql, "select $1");
  EXPECT_EQ(first.statement->param_types, std::vector<uint32_t>{23});
  ASSERT_NE(alice.find("s1"), nullptr);
  EXPECT_EQ(alice.find("s1")->server_name, first.statement->server_name);

  // Another client, another name, the same statement, on a server that has it: answered here.
  ParseAction second = parse_on(bob, server, "other", "select $1", {23});
  ASSERT_EQ(second.step, ParseStep::parse_complete);
  EXPECT_EQ(second.statement->server_name, first.statement->server_name);
  ASSERT_NE(bob.find("other"), nullptr);
  // The same client, a second name for the same text: answered here too.
  EXPECT_EQ(parse_on(alice, server, "s2", "select $1", {23}).step, ParseStep::parse_complete);

  // A server that does not have it yet gets its own Parse.
  ServerStatements fresh(100);
  EXPECT_EQ(parse_on(bob, fresh, "third", "select $1", {23}).step, ParseStep::prepare);
  // Other parameter types: another statement.
  EXPECT_EQ(parse_on(alice, server, "s3", "select $1", {25}).step, ParseStep::prepare);
}

TEST(ClientStatements, UnnamedParseIsForwardedAsItCame) {
  ServerStatements server(100);
  ClientStatements client = make_client();
  ParseAction a = parse_on(client, server, "", "select 1");
  EXPECT_EQ(a.step, ParseStep::forward);
  EXPECT_EQ(a.statement, nullptr);
  EXPECT_EQ(client.size(), 0u);
  EXPECT_EQ(server.size(), 0u);
}

TEST(ClientStatements, ParseOfANameTheClientHasIsSentUnderItsServerNameForThe42P05) {
  ServerStatements server(100);
  ClientStatements client = make_client();
  ParseAction first = parse_on(client, server, "s1", "select 1");
  ASSERT_EQ(first.step, ParseStep::prepare);
  // Another text under the same name: the server is to say 42P05, naming the existing server-side name.
  auto again = parse_msg("s1", "select 2");
  ParseAction dup = client.on_parse(again->as<pf::Parse>(), false, server);
  ASSERT_EQ(dup.step, ParseStep::duplicate);
  EXPECT_EQ(dup.statement->server_name, first.statement->server_name);
  EXPECT_EQ(dup.statement->sql, "select 1");
  // The client's statement is unchanged.
  EXPECT_EQ(client.find("s1")->sql, "select 1");
  EXPECT_EQ(client.size(), 1u);
}

TEST(ClientStatements, TouchesSessionIsKeptWithTheStatement) {
  ServerStatements server(100);
  ClientStatements client = make_client();
  auto p = parse_msg("s1", "set search_path = a");
  ParseAction a = client.on_parse(p->as<pf::Parse>(), true, server);
  ASSERT_EQ(a.step, ParseStep::prepare);
  EXPECT_TRUE(a.statement->touches_session);
  EXPECT_TRUE(client.find("s1")->touches_session);
}

// ---- the per-client limit ----

TEST(ClientStatements, TooManyStatementsIsRefused53400) {
  ServerStatements server(100);
  ClientStatements client = make_client(2);
  EXPECT_EQ(parse_on(client, server, "a", "select 1").step, ParseStep::prepare);
  EXPECT_TRUE(client.remember("b", "select 2", {}));
  EXPECT_FALSE(client.can_prepare_without_server("c"));
  EXPECT_FALSE(client.remember("c", "select 3", {}));
  ParseAction a = parse_on(client, server, "c", "select 3");
  EXPECT_EQ(a.step, ParseStep::refuse);
  EXPECT_STREQ(a.sqlstate, "53400");
  EXPECT_EQ(a.message, "pgsidecar: too many prepared statements in one session");
  EXPECT_EQ(client.size(), 2u);
  EXPECT_EQ(client.find("c"), nullptr);
  // A name the client has is still the 42P05 path at the limit, and the unnamed statement is not counted.
  EXPECT_EQ(parse_on(client, server, "a", "select 9").step, ParseStep::duplicate);
  EXPECT_EQ(parse_on(client, server, "", "select 9").step, ParseStep::forward);
  EXPECT_EQ(ClientStatements::kMaxStatements, 100000u);
}

// ---- without a server ----

TEST(ClientStatements, PrepareWithoutServerOnlyForANewName) {
  ServerStatements server(100);
  ClientStatements client = make_client();
  EXPECT_FALSE(client.can_prepare_without_server(""));
  EXPECT_TRUE(client.can_prepare_without_server("s1"));
  EXPECT_TRUE(client.remember("s1", "select $1", {23}));
  EXPECT_FALSE(client.can_prepare_without_server("s1"));  // the server is to say 42P05
  ASSERT_NE(client.find("s1"), nullptr);
  EXPECT_FALSE(client.find("s1")->touches_session);
  // Its first Bind prepares it on the server it lands on.
  auto b = bind_msg("", "s1");
  Addressed a = client.on_bind(b->as<pf::BindView>(), kTransaction);
  ASSERT_EQ(a.target, StatementTarget::server_name);
  EXPECT_EQ(a.statement->server_name, make_prepared("select $1", {23})->server_name);
}

// ---- Bind and Describe ----

TEST(ClientStatements, BindAndDescribeOfAKnownNameGoToItsServerName) {
  ServerStatements server(100);
  ClientStatements client = make_client();
  ParseAction p = parse_on(client, server, "s1", "select 1");
  auto b = bind_msg("portal", "s1");
  Addressed bind = client.on_bind(b->as<pf::BindView>(), kTransaction);
  ASSERT_EQ(bind.target, StatementTarget::server_name);
  EXPECT_EQ(bind.statement->server_name, p.statement->server_name);
  auto d = describe_msg('S', "s1");
  Addressed describe = client.on_describe(d->as<pf::Describe>(), kTransaction);
  ASSERT_EQ(describe.target, StatementTarget::server_name);
  EXPECT_EQ(describe.statement->server_name, p.statement->server_name);
  // In session pooling too: the server only knows the proxy-wide name.
  EXPECT_EQ(client.on_bind(b->as<pf::BindView>(), kSession).target, StatementTarget::server_name);
  EXPECT_EQ(client.on_describe(d->as<pf::Describe>(), kSession).target, StatementTarget::server_name);
}

TEST(ClientStatements, BindAndDescribeOfAnUnknownNameGoAsSent) {
  ClientStatements client = make_client();
  auto b = bind_msg("", "q");  // a SQL-prepared name, or none at all: the server answers
  Addressed bind = client.on_bind(b->as<pf::BindView>(), kTransaction);
  EXPECT_EQ(bind.target, StatementTarget::as_sent);
  EXPECT_EQ(bind.statement, nullptr);
  auto d = describe_msg('S', "q");
  EXPECT_EQ(client.on_describe(d->as<pf::Describe>(), kTransaction).target, StatementTarget::as_sent);
  auto portal = describe_msg('P', "");  // a portal: always the server's
  EXPECT_EQ(client.on_describe(portal->as<pf::Describe>(), kTransaction).target, StatementTarget::as_sent);
}

TEST(ClientStatements, ReservedNamesGoToNoSuchStatement) {
  ServerStatements server(100);
  ClientStatements other = make_client();
  ParseAction p = parse_on(other, server, "s1", "select 1");
  const std::string& stolen = p.statement->server_name;  // another client's statement on this server
  ClientStatements client = make_client();
  for (bool transaction_pooling : {kTransaction, kSession}) {
    auto b = bind_msg("", stolen);
    EXPECT_EQ(client.on_bind(b->as<pf::BindView>(), transaction_pooling).target, StatementTarget::no_such_statement);
    auto d = describe_msg('S', stolen);
    EXPECT_EQ(client.on_describe(d->as<pf::Describe>(), transaction_pooling).target,
              StatementTarget::no_such_statement);
    auto c = close_msg('S', stolen);
    EXPECT_EQ(client.on_close(c->as<pf::Close>(), transaction_pooling), CloseStep::close_complete);
  }
  auto b = bind_msg("", "pgsidecar_anything");
  EXPECT_EQ(client.on_bind(b->as<pf::BindView>(), kTransaction).target, StatementTarget::no_such_statement);
  EXPECT_TRUE(server.contains(stolen));
}

TEST(ClientStatements, UnnamedStatementNotParsedOnThisServerGoesToNoSuchStatement) {
  ServerStatements server(100);
  ClientStatements client = make_client();
  client.on_server_bound();
  auto b = bind_msg("", "");
  auto d = describe_msg('S', "");
  auto c = close_msg('S', "");
  // Transaction pooling: the server's unnamed statement is another client's (or stale).
  EXPECT_EQ(client.on_bind(b->as<pf::BindView>(), kTransaction).target, StatementTarget::no_such_statement);
  EXPECT_EQ(client.on_describe(d->as<pf::Describe>(), kTransaction).target, StatementTarget::no_such_statement);
  EXPECT_EQ(client.on_close(c->as<pf::Close>(), kTransaction), CloseStep::close_complete);
  // Once the client parsed it on this server, it is its own.
  EXPECT_EQ(parse_on(client, server, "", "select 1").step, ParseStep::forward);
  EXPECT_EQ(client.on_bind(b->as<pf::BindView>(), kTransaction).target, StatementTarget::as_sent);
  EXPECT_EQ(client.on_describe(d->as<pf::Describe>(), kTransaction).target, StatementTarget::as_sent);
  EXPECT_EQ(client.on_close(c->as<pf::Close>(), kTransaction), CloseStep::forward);
  // ... until another server is bound.
  client.on_server_gone();
  client.on_server_bound();
  EXPECT_EQ(client.on_bind(b->as<pf::BindView>(), kTransaction).target, StatementTarget::no_such_statement);
  // An unnamed Parse too large to read counts as parsed.
  client.on_unread_unnamed_parse();
  EXPECT_EQ(client.on_bind(b->as<pf::BindView>(), kTransaction).target, StatementTarget::as_sent);
}

TEST(ClientStatements, SessionPoolingKeepsTheServersUnnamedStatement) {
  ClientStatements client = make_client();
  client.on_server_bound();
  auto b = bind_msg("", "");
  auto d = describe_msg('S', "");
  auto c = close_msg('S', "");
  EXPECT_EQ(client.on_bind(b->as<pf::BindView>(), kSession).target, StatementTarget::as_sent);
  EXPECT_EQ(client.on_describe(d->as<pf::Describe>(), kSession).target, StatementTarget::as_sent);
  EXPECT_EQ(client.on_close(c->as<pf::Close>(), kSession), CloseStep::forward);
}

// ---- Close ----

TEST(ClientStatements, CloseOfAClientNameIsAnsweredHereAndTheServerKeepsTheStatement) {
  ServerStatements server(100);
  ClientStatements client = make_client();
  ParseAction p = parse_on(client, server, "s1", "select 1");
  auto c = close_msg('S', "s1");
  EXPECT_EQ(client.on_close(c->as<pf::Close>(), kTransaction), CloseStep::close_complete);
  EXPECT_EQ(client.find("s1"), nullptr);
  EXPECT_EQ(client.size(), 0u);
  EXPECT_TRUE(server.contains(p.statement->server_name));
  // The name is unknown now: a Bind of it is the server's to refuse (26000), a Parse of it is new again
  // and answered here (the server still has the statement).
  auto b = bind_msg("", "s1");
  EXPECT_EQ(client.on_bind(b->as<pf::BindView>(), kTransaction).target, StatementTarget::as_sent);
  EXPECT_EQ(parse_on(client, server, "s1", "select 1").step, ParseStep::parse_complete);
}

TEST(ClientStatements, CloseOfAnUnknownNameClosesTheSqlPreparedOne) {
  ClientStatements client = make_client();
  auto c = close_msg('S', "q");
  EXPECT_EQ(client.on_close(c->as<pf::Close>(), kTransaction), CloseStep::forward_sql_close);
  auto portal = close_msg('P', "q");
  EXPECT_EQ(client.on_close(portal->as<pf::Close>(), kTransaction), CloseStep::forward);
}

// ---- the session ----

TEST(ClientStatements, DiscardAllAndDeallocateAllForgetEverything) {
  for (router::SessionOp op : {router::SessionOp::discard_all, router::SessionOp::deallocate_all}) {
    ServerStatements server(100);
    ClientStatements client = make_client();
    ASSERT_EQ(parse_on(client, server, "s1", "select 1").step, ParseStep::prepare);
    ASSERT_TRUE(client.remember("s2", "select 2", {}));
    EXPECT_FALSE(client.on_session_change(change(router::SessionOp::set)));
    EXPECT_FALSE(client.on_session_change(change(router::SessionOp::deallocate)));
    EXPECT_EQ(client.size(), 2u);
    EXPECT_TRUE(client.on_session_change(change(op))) << router::session_op_name(op);
    EXPECT_EQ(client.size(), 0u);
    EXPECT_EQ(client.find("s1"), nullptr);
    // The server forgets its own once the statement succeeds (ServerConn): a new Parse prepares again.
    server.clear();
    EXPECT_EQ(parse_on(client, server, "s1", "select 1").step, ParseStep::prepare);
  }
}

TEST(ClientStatements, SqlDeallocateOfAProtocolNameDeallocatesItsServerName) {
  ServerStatements server(100);
  ClientStatements client = make_client();
  ParseAction p = parse_on(client, server, "s1", "select 1");
  router::Classification c;
  c.statements.emplace_back();
  router::SessionChange ch = change(router::SessionOp::deallocate);
  ch.name = "s1";
  c.statements.front().session_changes.push_back(ch);
  std::optional<Deallocation> d = client.take_deallocated(c);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->statement->server_name, p.statement->server_name);
  EXPECT_EQ(d->sql, "DEALLOCATE \"" + p.statement->server_name + "\"");
  EXPECT_EQ(client.find("s1"), nullptr);
  // Not a name of the client's (a SQL-prepared one): the statement runs as written.
  EXPECT_FALSE(client.take_deallocated(c));
  c.statements.front().session_changes.front().name = "q";
  EXPECT_FALSE(client.take_deallocated(c));
}

// The connection's keyword scan found none of the SQL-prepared words: the unnamed statement's effects
// are none, and the classifier is not asked.
TEST(ClientStatements, AnUnnamedParseWithoutSqlPreparedWordsHasNoEffects) {
  int asked = 0;
  ClientStatements client([&](std::string_view sql) {
    ++asked;
    return fake_effects_of(sql);
  });
  ServerStatements server(100);
  auto p = parse_msg("", "PREPARE q AS select 1");
  ASSERT_EQ(client.on_parse(p->as<pf::Parse>(), false, server, false).step, ParseStep::forward);
  EXPECT_EQ(asked, 0);
  auto b = bind_msg("p1", "");
  (void)client.on_bind(b->as<pf::BindView>(), kTransaction);
  EXPECT_EQ(client.effects_of_portal("p1"), nullptr);
  ASSERT_EQ(client.on_parse(p->as<pf::Parse>(), false, server, true).step, ParseStep::forward);
  EXPECT_EQ(asked, 1);
  (void)client.on_bind(b->as<pf::BindView>(), kTransaction);
  EXPECT_NE(client.effects_of_portal("p1"), nullptr);
}

TEST(ClientStatements, PortalsBoundFromAPrepareStatementCarryItsEffects) {
  ServerStatements server(100);
  ClientStatements client = make_client();
  // The unnamed statement is "PREPARE q AS ...": executing a portal bound from it creates q.
  ASSERT_EQ(parse_on(client, server, "", "PREPARE q AS select 1").step, ParseStep::forward);
  auto b = bind_msg("p1", "");
  EXPECT_EQ(client.on_bind(b->as<pf::BindView>(), kTransaction).target, StatementTarget::as_sent);
  SqlPrepEffectsRef e = client.effects_of_portal("p1");
  ASSERT_NE(e, nullptr);
  ASSERT_EQ(e->by_statement.size(), 1u);
  EXPECT_EQ(e->by_statement.front()->name, "q");
  // A named statement too.
  ASSERT_EQ(parse_on(client, server, "s1", "PREPARE r AS select 2").step, ParseStep::prepare);
  auto b2 = bind_msg("p2", "s1");
  EXPECT_EQ(client.on_bind(b2->as<pf::BindView>(), kTransaction).target, StatementTarget::server_name);
  ASSERT_NE(client.effects_of_portal("p2"), nullptr);
  EXPECT_EQ(client.effects_of_portal("p2")->by_statement.front()->name, "r");
  // Rebinding the portal from another statement drops them.
  ASSERT_EQ(parse_on(client, server, "s2", "select 3").step, ParseStep::prepare);
  auto b3 = bind_msg("p1", "s2");
  (void)client.on_bind(b3->as<pf::BindView>(), kTransaction);
  EXPECT_EQ(client.effects_of_portal("p1"), nullptr);
  // Portals and the unnamed statement stay with the server.
  client.on_server_gone();
  EXPECT_EQ(client.effects_of_portal("p2"), nullptr);
  client.on_server_bound();
  auto b4 = bind_msg("p3", "");  // the next server's unnamed statement (session pooling: bound as sent)
  EXPECT_EQ(client.on_bind(b4->as<pf::BindView>(), kSession).target, StatementTarget::as_sent);
  EXPECT_EQ(client.effects_of_portal("p3"), nullptr);
}

}  // namespace
}  // namespace pgs::proxy
