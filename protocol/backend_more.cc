// Backend views for describe/copy/negotiation, and layout validation of any backend message.
#include "protocol/backend.h"
#include "protocol/decode_util.h"

namespace pgs::protocol::backend {

Result<ParameterDescription> ParameterDescription::decode(Bytes body) {
  ByteReader r(body);
  PGS_TRY(count, r.read_u16());
  if (r.remaining() != size_t{*count} * 4) return make_error(Errc::malformed, "ParameterDescription");
  ParameterDescription d;
  d.type_oids.reserve(*count);
  for (uint16_t i = 0; i < *count; ++i) d.type_oids.push_back(*r.read_u32());
  return d;
}

Result<CopyResponse> CopyResponse::decode(Bytes body) {
  ByteReader r(body);
  PGS_TRY(format, r.read_u8());
  if (*format > 1) return make_error(Errc::malformed, "copy format");
  PGS_TRY(count, r.read_u16());
  if (r.remaining() != size_t{*count} * 2) return make_error(Errc::malformed, "copy column formats");
  CopyResponse c{static_cast<int8_t>(*format), {}};
  c.column_formats.reserve(*count);
  for (uint16_t i = 0; i < *count; ++i) c.column_formats.push_back(*r.read_i16());
  return c;
}

// NegotiateProtocolVersion: Int32 newest minor supported, Int32 count, count option names.
Result<NegotiateProtocolVersion> NegotiateProtocolVersion::decode(Bytes body) {
  ByteReader r(body);
  PGS_TRY(minor, r.read_i32());
  PGS_TRY(count, r.read_i32());
  if (*count < 0 || static_cast<size_t>(*count) > r.remaining()) {
    return make_error(Errc::malformed, "option count");
  }
  NegotiateProtocolVersion n{*minor, {}};
  n.unrecognized.reserve(static_cast<size_t>(*count));
  for (int32_t i = 0; i < *count; ++i) {
    PGS_TRY(name, r.read_cstr());
    n.unrecognized.push_back(*name);
  }
  PGS_TRY(end, r.expect_end());
  return n;
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

// FunctionCallResponse: Int32 length (-1 = NULL) then the bytes.
Result<Unit> check_function_result(Bytes body) {
  ByteReader r(body);
  PGS_TRY(len, r.read_i32());
  if (*len < -1) return make_error(Errc::malformed, "negative result length");
  if (*len >= 0) {
    PGS_TRY(value, r.read_n(static_cast<size_t>(*len)));
  }
  return r.expect_end();
}

}  // namespace

Result<Unit> validate(char type_byte, Bytes body) {
  switch (static_cast<Type>(type_byte)) {
    case Type::Authentication: return check<Authentication>(body);
    case Type::BackendKeyData: return check<BackendKeyData>(body);
    case Type::ParameterStatus: return check<ParameterStatus>(body);
    case Type::ReadyForQuery: return check<ReadyForQuery>(body);
    case Type::ErrorResponse:
    case Type::NoticeResponse: return check<ErrorFields>(body);
    case Type::RowDescription: return check<RowDescription>(body);
    case Type::DataRow: return check<DataRow>(body);
    case Type::CommandComplete: return check<CommandComplete>(body);
    case Type::ParameterDescription: return check<ParameterDescription>(body);
    case Type::CopyInResponse:
    case Type::CopyOutResponse:
    case Type::CopyBothResponse: return check<CopyResponse>(body);
    case Type::NotificationResponse: return check<NotificationResponse>(body);
    case Type::NegotiateProtocolVersion: return check<NegotiateProtocolVersion>(body);
    case Type::FunctionCallResponse: return check_function_result(body);
    case Type::EmptyQueryResponse:
    case Type::ParseComplete:
    case Type::BindComplete:
    case Type::CloseComplete:
    case Type::NoData:
    case Type::PortalSuspended:
    case Type::CopyDone: return expect_empty(body);
    case Type::CopyData: return Unit{};
  }
  return make_error(Errc::unsupported, "unknown backend message type");
}

}  // namespace pgs::protocol::backend
