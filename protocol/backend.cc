// Backend message views (docs "Message Formats"). Each decode consumes the whole body.
#include "protocol/backend.h"

#include "protocol/decode_util.h"

namespace pgs::protocol::backend {

const char* type_name(char type_byte) {
  switch (type_byte) {
#define PGS_X(name, byte) \
  case byte:              \
    return #name;
    PGS_BACKEND_MESSAGES(PGS_X)
#undef PGS_X
    default:
      return nullptr;
  }
}

bool is_known_type(char type_byte) { return type_name(type_byte) != nullptr; }

namespace {

// A list of C strings closed by an empty one that must be the last byte (SASL mechanisms).
Result<Unit> check_cstr_list(Bytes data) {
  ByteReader r(data);
  for (;;) {
    PGS_TRY(s, r.read_cstr());
    if (s->empty()) break;
  }
  return r.expect_end();
}

// The data each authentication code carries; unknown codes keep theirs unchecked.
Result<Unit> check_auth_data(int32_t code, Bytes data) {
  switch (static_cast<AuthCode>(code)) {
    case AuthCode::ok:
    case AuthCode::cleartext:
      if (!data.empty()) return make_error(Errc::malformed, "authentication data not expected");
      return Unit{};
    case AuthCode::md5:
      if (data.size() != 4) return make_error(Errc::malformed, "md5 salt must be 4 bytes");
      return Unit{};
    case AuthCode::sasl:
      return check_cstr_list(data);
    case AuthCode::sasl_continue:
    case AuthCode::sasl_final:
      return Unit{};
  }
  return Unit{};
}

}  // namespace

Result<Authentication> Authentication::decode(Bytes body) {
  ByteReader r(body);
  PGS_TRY(code, r.read_i32());
  Authentication a{*code, r.rest()};
  PGS_TRY(ok, check_auth_data(a.code, a.data));
  return a;
}

std::vector<std::string_view> Authentication::mechanisms() const {
  std::vector<std::string_view> out;
  if (code != static_cast<int32_t>(AuthCode::sasl)) return out;
  ByteReader r(data);
  for (;;) {
    auto s = r.read_cstr();
    if (!s || s->empty()) break;
    out.push_back(*s);
  }
  return out;
}

Result<BackendKeyData> BackendKeyData::decode(Bytes body) {
  // Protocol 3.0 only (we always ask servers for 3.0): the secret is exactly 4 bytes.
  if (body.size() != 8) return make_error(Errc::malformed, "BackendKeyData length");
  ByteReader r(body);
  int32_t pid = *r.read_i32();
  int32_t secret = *r.read_i32();
  return BackendKeyData{pid, secret};
}

Result<ParameterStatus> ParameterStatus::decode(Bytes body) {
  ByteReader r(body);
  PGS_TRY(name, r.read_cstr());
  PGS_TRY(value, r.read_cstr());
  PGS_TRY(end, r.expect_end());
  return ParameterStatus{*name, *value};
}

Result<ReadyForQuery> ReadyForQuery::decode(Bytes body) {
  if (body.size() != 1) return make_error(Errc::malformed, "ReadyForQuery length");
  char status = static_cast<char>(body[0]);
  if (status != 'I' && status != 'T' && status != 'E') {
    return make_error(Errc::malformed, "ReadyForQuery status");
  }
  return ReadyForQuery{status};
}

Result<ErrorFields> ErrorFields::decode(Bytes body) {
  ByteReader r(body);
  ErrorFields e;
  std::string_view localized;
  for (;;) {
    PGS_TRY(code, r.read_u8());
    if (*code == 0) break;
    PGS_TRY(value, r.read_cstr());
    switch (*code) {
      case 'S': localized = *value; break;
      case 'V': e.severity = *value; break;
      case 'C': e.sqlstate = *value; break;
      case 'M': e.message = *value; break;
      case 'D': e.detail = *value; break;
      case 'H': e.hint = *value; break;
      default: break;
    }
  }
  PGS_TRY(end, r.expect_end());
  if (e.severity.empty()) e.severity = localized;
  return e;
}

Result<CommandComplete> CommandComplete::decode(Bytes body) {
  ByteReader r(body);
  PGS_TRY(tag, r.read_cstr());
  PGS_TRY(end, r.expect_end());
  return CommandComplete{*tag};
}

Result<RowDescription> RowDescription::decode(Bytes body) {
  constexpr size_t kMinField = 19;  // NUL of an empty name + 18 bytes of fixed fields
  ByteReader r(body);
  PGS_TRY(count, r.read_u16());
  if (r.remaining() < size_t{*count} * kMinField) return make_error(Errc::truncated, "RowDescription");
  RowDescription d;
  d.fields.reserve(*count);
  for (uint16_t i = 0; i < *count; ++i) {
    Field f;
    PGS_TRY(name, r.read_cstr());
    PGS_TRY(table_oid, r.read_u32());
    PGS_TRY(column, r.read_i16());
    PGS_TRY(type_oid, r.read_u32());
    PGS_TRY(type_size, r.read_i16());
    PGS_TRY(type_modifier, r.read_i32());
    PGS_TRY(format, r.read_i16());
    f = Field{*name, *table_oid, *column, *type_oid, *type_size, *type_modifier, *format};
    d.fields.push_back(f);
  }
  PGS_TRY(end, r.expect_end());
  return d;
}

Result<DataRow> DataRow::decode(Bytes body) {
  ByteReader r(body);
  PGS_TRY(count, r.read_i16());
  if (*count < 0) return make_error(Errc::malformed, "negative column count");
  DataRow row{*count, r.rest()};
  for (int16_t i = 0; i < *count; ++i) {
    PGS_TRY(len, r.read_i32());
    if (*len < -1) return make_error(Errc::malformed, "negative column length");
    if (*len == -1) continue;
    PGS_TRY(value, r.read_n(static_cast<size_t>(*len)));
  }
  PGS_TRY(end, r.expect_end());
  return row;
}

bool DataRow::Cursor::next(std::optional<Bytes>& value) {
  // decode() validated the region, so these reads succeed; a failure still ends the walk safely.
  return next_length_prefixed(reader_, left_, value);
}

Result<NotificationResponse> NotificationResponse::decode(Bytes body) {
  ByteReader r(body);
  PGS_TRY(pid, r.read_i32());
  PGS_TRY(channel, r.read_cstr());
  PGS_TRY(payload, r.read_cstr());
  PGS_TRY(end, r.expect_end());
  return NotificationResponse{*pid, *channel, *payload};
}

}  // namespace pgs::protocol::backend
