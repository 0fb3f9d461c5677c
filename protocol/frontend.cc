// Frontend message views (docs "Message Formats"). Each decode consumes the whole body:
// trailing bytes are malformed, as in the server's pq_getmsgend().
#include "protocol/frontend.h"

#include "protocol/decode_util.h"

namespace pgs::protocol::frontend {

const char* type_name(char type_byte) {
  switch (type_byte) {
#define PGS_X(name, byte) \
  case byte:              \
    return #name;
    PGS_FRONTEND_MESSAGES(PGS_X)
#undef PGS_X
    default:
      return nullptr;
  }
}

bool is_known_type(char type_byte) { return type_name(type_byte) != nullptr; }

const char* malformed_reason(char type_byte, Bytes body, size_t streamed) {
  switch (type_byte) {
    case 'S': case 'H': case 'c': case 'X':
      return body.empty() && streamed == 0 ? nullptr : "a message with no body has one";
    case 'E':
      return streamed == 0 && Execute::decode(body).ok() ? nullptr : "invalid Execute message";
    case 'D': case 'C':
      return streamed == 0 ? nullptr : "a Describe or Close message that large";
    case 'f':
      return streamed > 0 || CopyFail::decode(body).ok() ? nullptr : "invalid CopyFail message";
    default:
      return nullptr;
  }
}

Result<Query> Query::decode(Bytes body) {
  ByteReader r(body);
  PGS_TRY(sql, r.read_cstr());
  PGS_TRY(end, r.expect_end());
  return Query{*sql};
}

Result<Parse> Parse::decode(Bytes body) {
  ByteReader r(body);
  PGS_TRY(name, r.read_cstr());
  PGS_TRY(sql, r.read_cstr());
  PGS_TRY(count, r.read_u16());
  // Check the count against the bytes present before reserving: a short message must not make
  // us allocate for 65535 entries.
  if (r.remaining() != size_t{*count} * 4) return make_error(Errc::malformed, "Parse type count");
  return Parse{*name, *sql, body.subspan(body.size() - 2 - size_t{*count} * 4)};
}

Result<std::string_view> Parse::decode_name(Bytes head) {
  ByteReader r(head);
  PGS_TRY(name, r.read_cstr());
  return *name;
}

uint16_t Parse::param_count() const {
  return static_cast<uint16_t>((uint16_t{param_type_block[0]} << 8) | param_type_block[1]);
}

uint32_t Parse::param_type(size_t i) const {
  const uint8_t* p = param_type_block.data() + 2 + 4 * i;
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::vector<uint32_t> Parse::param_types() const {
  std::vector<uint32_t> out(param_count());
  for (size_t i = 0; i < out.size(); ++i) out[i] = param_type(i);
  return out;
}

Result<BindView> BindView::decode(Bytes body) {
  ByteReader r(body);
  PGS_TRY(portal, r.read_cstr());
  PGS_TRY(statement, r.read_cstr());
  return BindView{*portal, *statement, r.rest()};
}

namespace {

template <typename View>
Result<Message> with_view(const Frame& f, Result<View> view) {
  if (!view.ok()) return view.error();
  return Message{f, std::move(view.value())};
}

}  // namespace

Result<Message> decode_message(const Frame& f) {
  const bool whole = f.streamed == 0;
  switch (f.type) {
    case 'Q':
      if (!whole) return Message{f, {}};
      return with_view(f, Query::decode(f.body));
    case 'P':
      if (!whole) {
        auto name = Parse::decode_name(f.body);
        if (!name.ok()) return name.error();
        return Message{f, ParseName{*name}};
      }
      return with_view(f, Parse::decode(f.body));
    case 'B':
      return with_view(f, BindView::decode(f.body));
    case 'D':
      if (!whole) return make_error(Errc::malformed, "larger than the inspect window");
      return with_view(f, Describe::decode(f.body));
    case 'C':
      if (!whole) return make_error(Errc::malformed, "larger than the inspect window");
      return with_view(f, Close::decode(f.body));
    case 'E':
      if (!whole) return make_error(Errc::malformed, "larger than the inspect window");
      return with_view(f, Execute::decode(f.body));
    default:
      return Message{f, {}};
  }
}

Result<Describe> Describe::decode(Bytes body) {
  ByteReader r(body);
  PGS_TRY(kind, r.read_u8());
  if (*kind != 'S' && *kind != 'P') return make_error(Errc::malformed, "Describe kind");
  PGS_TRY(name, r.read_cstr());
  PGS_TRY(end, r.expect_end());
  return Describe{static_cast<char>(*kind), *name};
}

Result<Execute> Execute::decode(Bytes body) {
  ByteReader r(body);
  PGS_TRY(portal, r.read_cstr());
  PGS_TRY(max_rows, r.read_i32());
  PGS_TRY(end, r.expect_end());
  return Execute{*portal, *max_rows};
}

Result<Close> Close::decode(Bytes body) {
  ByteReader r(body);
  PGS_TRY(kind, r.read_u8());
  if (*kind != 'S' && *kind != 'P') return make_error(Errc::malformed, "Close kind");
  PGS_TRY(name, r.read_cstr());
  PGS_TRY(end, r.expect_end());
  return Close{static_cast<char>(*kind), *name};
}

Result<CopyFail> CopyFail::decode(Bytes body) {
  ByteReader r(body);
  PGS_TRY(message, r.read_cstr());
  PGS_TRY(end, r.expect_end());
  return CopyFail{*message};
}

Result<SaslInitialResponse> SaslInitialResponse::decode(Bytes body) {
  ByteReader r(body);
  PGS_TRY(mechanism, r.read_cstr());
  PGS_TRY(len, r.read_i32());
  SaslInitialResponse out{*mechanism, {}};
  if (*len < -1) return make_error(Errc::malformed, "SASL data length");
  if (*len >= 0) {
    PGS_TRY(data, r.read_n(static_cast<size_t>(*len)));
    out.data = as_string_view(*data);
  }
  PGS_TRY(end, r.expect_end());
  return out;
}

Result<SaslResponse> SaslResponse::decode(Bytes body) { return SaslResponse{as_string_view(body)}; }

Result<PasswordMessage> PasswordMessage::decode(Bytes body) {
  ByteReader r(body);
  PGS_TRY(password, r.read_cstr());
  PGS_TRY(end, r.expect_end());
  return PasswordMessage{*password};
}

namespace {

Result<Unit> expect_empty(Bytes body) {
  if (!body.empty()) return make_error(Errc::malformed, "message must have an empty body");
  return Unit{};
}

template <typename View>
Result<Unit> check(Bytes body) {
  auto v = View::decode(body);
  if (!v) return v.error();
  return Unit{};
}

}  // namespace

Result<Unit> validate(char type_byte, Bytes body) {
  switch (static_cast<Type>(type_byte)) {
    case Type::Query: return check<Query>(body);
    case Type::Parse: return check<Parse>(body);
    case Type::Bind: return check<Bind>(body);
    case Type::Describe: return check<Describe>(body);
    case Type::Execute: return check<Execute>(body);
    case Type::Close: return check<Close>(body);
    case Type::CopyFail: return check<CopyFail>(body);
    case Type::FunctionCall: return check<FunctionCall>(body);
    case Type::Sync:
    case Type::Flush:
    case Type::Terminate:
    case Type::CopyDone: return expect_empty(body);
    case Type::CopyData: return Unit{};
    case Type::PasswordMessage:
      if (body.empty()) return make_error(Errc::malformed, "empty password message");
      return Unit{};
  }
  return make_error(Errc::unsupported, "unknown frontend message type");
}

}  // namespace pgs::protocol::frontend
