// The protocol module against a real Postgres 15 (the dev primary at 127.0.0.1:15432): our
// startup packet, SCRAM client, writers and backend decoders must carry a real login and queries.
#include <algorithm>
#include <chrono>
#include <memory>
#include <cstdlib>
#include <string>
#include <vector>

#include "protocol/auth.h"
#include "protocol/backend.h"
#include "protocol/frontend.h"
#include "protocol/writer.h"
#include "tests/protocol/test_util.h"
#include "tests/protocol/wire_conn.h"
#include "tests/support/dev_env.h"

namespace pgs::protocol {
namespace {

using test::OwnedFrame;
using test::WireConn;

using ::pgs::test::kPrimaryPort;

std::unique_ptr<WireConn> connect_primary() {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto fd = WireConn::connect_until(kPrimaryPort, deadline);
  if (!fd) return nullptr;
  return std::make_unique<WireConn>(*fd);
}

// Reads one frame and checks that our backend decoders accept its layout.
OwnedFrame next(WireConn& c) {
  auto f = c.read_frame();
  EXPECT_TRUE(f.has_value()) << "no frame from the server";
  if (!f) return {};
  auto ok = backend::validate(f->type, f->bytes());
  EXPECT_TRUE(ok.ok()) << "type " << f->type << ": " << (ok.ok() ? "" : ok.error().detail);
  return *f;
}

// Startup + SCRAM-SHA-256 as the proxy does it towards a server. Returns the final frame read:
// ReadyForQuery on success, the ErrorResponse otherwise. `key` receives BackendKeyData.
OwnedFrame login(WireConn& c, const std::string& password, backend::BackendKeyData* key = nullptr) {
  std::string out;
  write_startup(out, {{"user", "flopods"}, {"database", "flopods"}, {"application_name", "pgs-protocol-test"}});
  EXPECT_TRUE(c.send(out));
  OwnedFrame f = next(c);
  auto auth = backend::Authentication::decode(f.bytes());
  EXPECT_TRUE(f.type == 'R' && auth.ok() && auth->code == 10) << "expected AuthenticationSASL";
  if (!auth.ok() || auth->code != 10) return f;
  auto mechs = auth->mechanisms();
  EXPECT_NE(std::find(mechs.begin(), mechs.end(), "SCRAM-SHA-256"), mechs.end());

  scram::ClientExchange scram(password, scram::random_nonce());
  out.clear();
  write_sasl_initial_response(out, "SCRAM-SHA-256", scram.client_first());
  EXPECT_TRUE(c.send(out));
  f = next(c);
  auto cont = backend::Authentication::decode(f.bytes());
  EXPECT_TRUE(cont.ok() && cont->code == 11);
  if (!cont.ok()) return f;
  auto client_final = scram.on_server_first(as_string_view(cont->data));
  EXPECT_TRUE(client_final.ok());
  if (!client_final.ok()) return f;
  out.clear();
  write_sasl_response(out, *client_final);
  EXPECT_TRUE(c.send(out));
  f = next(c);
  if (f.type == 'E') return f;
  auto fin = backend::Authentication::decode(f.bytes());
  EXPECT_TRUE(fin.ok() && fin->code == 12);
  if (!fin.ok()) return f;
  EXPECT_TRUE(scram.on_server_final(as_string_view(fin->data)).ok()) << "server signature";
  for (f = next(c); f.type != 'Z' && f.type != 'E' && f.type != '\0'; f = next(c)) {
    if (f.type == 'K' && key != nullptr) *key = *backend::BackendKeyData::decode(f.bytes());
  }
  return f;
}

// Reads frames until ReadyForQuery; returns their types and collects them.
std::string until_ready(WireConn& c, std::vector<OwnedFrame>& frames) {
  std::string types;
  for (;;) {
    OwnedFrame f = next(c);
    if (f.type == '\0') return types;
    types += f.type;
    frames.push_back(f);
    if (f.type == 'Z') return types;
  }
}

// The first column of the first row of a simple query, "" if none.
std::string first_value(WireConn& c, const std::string& sql) {
  std::string out;
  write_query(out, sql);
  if (!c.send(out)) return {};
  std::vector<OwnedFrame> frames;
  until_ready(c, frames);
  for (const OwnedFrame& f : frames) {
    if (f.type != 'D') continue;
    auto row = backend::DataRow::decode(f.bytes());
    if (!row.ok()) return {};
    std::optional<Bytes> v;
    backend::DataRow::Cursor cur(*row);
    if (cur.next(v) && v) return std::string(as_string_view(*v));
  }
  return {};
}

class LivePostgres : public ::testing::Test {
 protected:
  void SetUp() override {
    conn_ = connect_primary();
    ASSERT_NE(conn_, nullptr) << "Postgres not reachable on 127.0.0.1:" << kPrimaryPort
                              << " (start the dev services: ./dev up)";
  }
  std::unique_ptr<WireConn> conn_;
};

TEST_F(LivePostgres, ScramLoginThenSimpleQuery) {
  OwnedFrame ready = login(*conn_, "flopods-dev");
  ASSERT_EQ(ready.type, 'Z');
  EXPECT_EQ(backend::ReadyForQuery::decode(ready.bytes())->status, 'I');

  std::string out;
  write_query(out, "select 41 + 1 as answer, null::text as nothing");
  ASSERT_TRUE(conn_->send(out));
  std::vector<OwnedFrame> frames;
  ASSERT_EQ(until_ready(*conn_, frames), "TDCZ");
  auto rd = backend::RowDescription::decode(frames[0].bytes());
  ASSERT_TRUE(rd.ok());
  ASSERT_EQ(rd->fields.size(), 2u);
  EXPECT_EQ(rd->fields[0].name, "answer");
  EXPECT_EQ(rd->fields[0].type_oid, 23u);
  auto row = backend::DataRow::decode(frames[1].bytes());
  ASSERT_TRUE(row.ok());
  backend::DataRow::Cursor cur(*row);
  std::optional<Bytes> v;
  ASSERT_TRUE(cur.next(v));
  EXPECT_EQ(as_string_view(*v), "42");
  ASSERT_TRUE(cur.next(v));
  EXPECT_FALSE(v.has_value());
  EXPECT_EQ(backend::CommandComplete::decode(frames[2].bytes())->tag, "SELECT 1");
}

TEST_F(LivePostgres, ExtendedProtocolWithInjectedParseAndRenamedBind) {
  ASSERT_EQ(login(*conn_, "flopods-dev").type, 'Z');
  // Bind parameters region as a client would send it: 1 format (text), 1 value "41", 0 results.
  const std::string region = test::be16(1) + test::be16(0) + test::be16(1) + test::be32(2) + "41" + test::be16(0);
  const std::string client_bind = test::S("\0s\0") + region;
  ASSERT_TRUE(frontend::Bind::decode(test::bytes_of(client_bind)).ok());
  auto decoded = frontend::BindView::decode(test::bytes_of(client_bind));
  ASSERT_TRUE(decoded.ok());

  std::string out;
  write_parse(out, "pgs_1", "select $1::int + 1", {23});
  write_bind(out, "", "pgs_1", as_string_view(decoded->rest));
  write_describe(out, 'P', "");
  write_execute(out, "", 0);
  write_close(out, 'S', "pgs_1");
  write_sync(out);
  ASSERT_TRUE(conn_->send(out));
  std::vector<OwnedFrame> frames;
  ASSERT_EQ(until_ready(*conn_, frames), "12TDC3Z");
  auto row = backend::DataRow::decode(frames[3].bytes());
  ASSERT_TRUE(row.ok());
  backend::DataRow::Cursor cur(*row);
  std::optional<Bytes> v;
  ASSERT_TRUE(cur.next(v));
  EXPECT_EQ(as_string_view(*v), "42");

  out.clear();
  write_parse(out, "", "select $1::text", {});
  write_describe(out, 'S', "");
  write_flush(out);
  write_sync(out);
  ASSERT_TRUE(conn_->send(out));
  frames.clear();
  ASSERT_EQ(until_ready(*conn_, frames), "1tTZ");
  EXPECT_EQ(backend::ParameterDescription::decode(frames[1].bytes())->type_oids, (std::vector<uint32_t>{25}));
}

TEST_F(LivePostgres, ErrorResponseDecodes) {
  ASSERT_EQ(login(*conn_, "flopods-dev").type, 'Z');
  std::string out;
  write_query(out, "select * from pgs_no_such_table");
  ASSERT_TRUE(conn_->send(out));
  std::vector<OwnedFrame> frames;
  ASSERT_EQ(until_ready(*conn_, frames), "EZ");
  auto e = backend::ErrorFields::decode(frames[0].bytes());
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->severity, "ERROR");
  EXPECT_EQ(e->sqlstate, "42P01");
  EXPECT_NE(e->message.find("pgs_no_such_table"), std::string_view::npos);
  EXPECT_EQ(backend::ReadyForQuery::decode(frames[1].bytes())->status, 'I');
}

TEST_F(LivePostgres, WrongPasswordIsRejectedWith28P01) {
  OwnedFrame f = login(*conn_, "not-the-password");
  ASSERT_EQ(f.type, 'E');
  auto e = backend::ErrorFields::decode(f.bytes());
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->sqlstate, "28P01");
  EXPECT_EQ(e->severity, "FATAL");
}

TEST_F(LivePostgres, CancelRequestStopsARunningQuery) {
  backend::BackendKeyData key{0, 0};
  ASSERT_EQ(login(*conn_, "flopods-dev", &key).type, 'Z');
  ASSERT_NE(key.pid, 0);
  std::string out;
  write_query(out, "select pg_sleep(8)");
  ASSERT_TRUE(conn_->send(out));

  // Cancel only once the query is running: a cancel that reaches an idle backend is dropped.
  auto watcher = connect_primary();
  ASSERT_NE(watcher, nullptr);
  ASSERT_EQ(login(*watcher, "flopods-dev").type, 'Z');
  const std::string probe = "select state from pg_stat_activity where pid = " + std::to_string(key.pid);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (first_value(*watcher, probe) != "active") {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "query never became active";
  }
  auto cancel_conn = connect_primary();
  ASSERT_NE(cancel_conn, nullptr);
  std::string cancel;
  write_cancel_request(cancel, key.pid, key.secret);
  ASSERT_TRUE(cancel_conn->send(cancel));
  std::vector<OwnedFrame> frames;
  // RowDescription comes first (the server describes before it runs); then the error, no 'C'.
  ASSERT_EQ(until_ready(*conn_, frames), "TEZ");
  EXPECT_EQ(backend::ErrorFields::decode(frames[1].bytes())->sqlstate, "57014");
}

}  // namespace
}  // namespace pgs::protocol
