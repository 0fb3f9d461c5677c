// libFuzzer target for everything a client (or a server) can make the protocol module parse.
// The first input byte picks the mode; the rest is the byte stream:
//   0  startup phase: split_startup + Startup / CancelRequest decode
//   1  client stream: split_frame + every frontend view on every frame body
//   2  server stream: split_frame + every backend view (DataRow cursor, SASL mechanisms)
//   3  SCRAM text: "msg1\nmsg2" through ServerExchange, ClientExchange, Verifier::parse, base64
// Invariants are checked with CHECK (a trap, so the fuzzer reports it); ASan/UBSan catch the rest.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "protocol/auth.h"
#include "protocol/backend.h"
#include "protocol/base64.h"
#include "protocol/frame.h"
#include "protocol/frontend.h"

namespace {

using namespace pgs::protocol;

#define CHECK(cond) \
  do {              \
    if (!(cond)) __builtin_trap(); \
  } while (0)

// Reads every byte of a view so ASan sees any view that points outside the input.
volatile uint8_t g_sink;
void touch(Bytes b) {
  uint8_t acc = 0;
  for (uint8_t c : b) acc ^= c;
  g_sink = acc;
}
void touch(std::string_view s) { touch(Bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size())); }

void fuzz_startup(Bytes buf) {
  while (!buf.empty()) {
    StartupResult r = split_startup(buf);
    auto* f = std::get_if<StartupFrame>(&r);
    if (f == nullptr) {
      if (auto* m = std::get_if<NeedMore>(&r)) CHECK(m->at_least > buf.size());
      return;
    }
    CHECK(f->size >= 8 && f->size <= buf.size() && f->size <= kMaxStartupPacket);
    CHECK(f->body.size() + 8 == f->size);
    if (auto s = frontend::Startup::decode(*f); s.ok()) {
      for (const auto& [name, value] : s->params) {
        touch(name);
        touch(value);
      }
      touch(s->get("user"));
    }
    if (auto c = frontend::CancelRequest::decode(*f); c.ok()) g_sink = static_cast<uint8_t>(c->pid);
    buf = buf.subspan(f->size);
  }
}

// Reads every value of a decoded list; returns how many there were.
size_t touch_values(const frontend::ValueList& values) {
  frontend::ValueList::Cursor cur(values);
  std::optional<Bytes> v;
  size_t n = 0;
  while (cur.next(v)) {
    if (v) touch(*v);
    ++n;
  }
  return n;
}

void fuzz_frontend_body(char type, Bytes body) {
  (void)frontend::validate(type, body);
  if (auto q = frontend::Query::decode(body); q.ok()) touch(q->sql);
  if (auto p = frontend::Parse::decode(body); p.ok()) touch(p->sql);
  if (auto b = frontend::Bind::decode(body); b.ok()) {
    CHECK(touch_values(b->args.values) == b->args.values.count);
    for (size_t i = 0; i < b->args.values.count; ++i) {
      int16_t format = b->args.param_formats.for_value(i);
      CHECK(format == 0 || format == 1);
    }
    for (size_t i = 0; i < b->args.result_formats.count; ++i) {
      int16_t format = b->args.result_formats.at(i);
      CHECK(format == 0 || format == 1);
    }
  }
  if (auto d = frontend::Describe::decode(body); d.ok()) touch(d->name);
  if (auto e = frontend::Execute::decode(body); e.ok()) touch(e->portal);
  if (auto c = frontend::Close::decode(body); c.ok()) touch(c->name);
  if (auto f = frontend::CopyFail::decode(body); f.ok()) touch(f->message);
  if (auto f = frontend::FunctionCall::decode(body); f.ok()) CHECK(touch_values(f->args) == f->args.count);
  if (auto s = frontend::SaslInitialResponse::decode(body); s.ok()) touch(s->data);
  if (auto s = frontend::SaslResponse::decode(body); s.ok()) touch(s->data);
  if (auto p = frontend::PasswordMessage::decode(body); p.ok()) touch(p->password);
}

void fuzz_backend_body(char type, Bytes body) {
  (void)backend::validate(type, body);
  if (auto a = backend::Authentication::decode(body); a.ok()) {
    for (std::string_view m : a->mechanisms()) touch(m);
  }
  if (auto e = backend::ErrorFields::decode(body); e.ok()) touch(e->message);
  if (auto r = backend::RowDescription::decode(body); r.ok()) {
    for (const auto& f : r->fields) touch(f.name);
  }
  if (auto d = backend::DataRow::decode(body); d.ok()) {
    backend::DataRow::Cursor cur(*d);
    std::optional<Bytes> v;
    int n = 0;
    while (cur.next(v)) {
      if (v) touch(*v);
      ++n;
    }
    CHECK(n == d->column_count);
  }
  if (auto n = backend::NegotiateProtocolVersion::decode(body); n.ok()) {
    for (std::string_view s : n->unrecognized) touch(s);
  }
  if (auto n = backend::NotificationResponse::decode(body); n.ok()) touch(n->payload);
  (void)backend::ParameterStatus::decode(body);
  (void)backend::ParameterDescription::decode(body);
  (void)backend::CopyResponse::decode(body);
  (void)backend::CommandComplete::decode(body);
}

void fuzz_frames(Bytes buf, bool client) {
  constexpr uint32_t kMax = 1u << 16;
  while (!buf.empty()) {
    FrameResult r = split_frame(buf, kMax);
    auto* f = std::get_if<Frame>(&r);
    if (f == nullptr) {
      if (auto* m = std::get_if<NeedMore>(&r)) CHECK(m->at_least > buf.size() && m->at_least <= kMax + 5);
      return;
    }
    CHECK(f->size >= 5 && f->size <= buf.size() && f->body.size() + 5 == f->size);
    CHECK(f->whole.data() == buf.data() && f->whole.size() == f->size);
    if (client) {
      fuzz_frontend_body(f->type, f->body);
    } else {
      fuzz_backend_body(f->type, f->body);
    }
    buf = buf.subspan(f->size);
  }
}

// A server-first-message asking for many iterations would make the fuzzer time out on PBKDF2,
// which is bounded by design (kMaxClientIterations), not a bug.
bool cheap_iterations(std::string_view msg) {
  for (size_t at = msg.find("i="); at != std::string_view::npos; at = msg.find("i=", at + 1)) {
    size_t digits = 0;
    while (at + 2 + digits < msg.size() && msg[at + 2 + digits] >= '0' && msg[at + 2 + digits] <= '9') ++digits;
    if (digits > 4) return false;
  }
  return true;
}

void fuzz_scram(std::string_view text) {
  const size_t nl = text.find('\n');
  const std::string_view first = text.substr(0, nl);
  const std::string_view second = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  static const scram::Verifier verifier = scram::Verifier::from_password("pencil", "saltsaltsalt", 16);
  scram::ServerExchange server(verifier, "server-nonce");
  if (server.on_client_first(first).ok()) (void)server.on_client_final(second);
  if (cheap_iterations(first)) {
    scram::ClientExchange client("pencil", "c");
    if (client.on_server_first(first).ok()) (void)client.on_server_final(second);
  }
  if (auto v = scram::Verifier::parse(text); v.ok()) CHECK(scram::Verifier::parse(v->to_string()).ok());
  if (auto d = base64_decode(first)) CHECK(base64_encode(*d) == first);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Bytes in(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0: fuzz_startup(in); break;
    case 1: fuzz_frames(in, true); break;
    case 2: fuzz_frames(in, false); break;
    default: fuzz_scram(as_string_view(in)); break;
  }
  return 0;
}
