// Frontend messages with argument lists (Bind, FunctionCall) and the startup-phase packets.
#include "protocol/decode_util.h"
#include "protocol/frontend.h"

namespace pgs::protocol::frontend {

namespace {

// Format codes: 0 text, 1 binary; anything else is rejected by the server too.
Result<FormatCodes> read_formats(ByteReader& r) {
  PGS_TRY(count, r.read_u16());
  if (r.remaining() < size_t{*count} * 2) return make_error(Errc::truncated, "format codes");
  FormatCodes out{*r.read_n(size_t{*count} * 2), *count};
  for (uint16_t i = 0; i < out.count; ++i) {
    int16_t f = out.at(i);
    if (f != 0 && f != 1) return make_error(Errc::malformed, "format code not 0 or 1");
  }
  return out;
}

// Int16 count (read unsigned, as the server does: at most 65535), then per value an Int32 length
// (-1 = NULL) and the bytes. Walked once here so that a Cursor cannot fail.
Result<ValueList> read_values(ByteReader& r) {
  const Bytes start = r.rest();
  PGS_TRY(count, r.read_u16());
  if (r.remaining() < size_t{*count} * 4) return make_error(Errc::truncated, "parameter values");
  for (uint16_t i = 0; i < *count; ++i) {
    PGS_TRY(len, r.read_i32());
    if (*len < -1) return make_error(Errc::malformed, "negative parameter length");
    if (*len == -1) continue;
    PGS_TRY(bytes, r.read_n(static_cast<size_t>(*len)));
  }
  return ValueList{start.first(start.size() - r.remaining()), *count};
}

// The server accepts 0 formats (all text), 1 (applies to all) or exactly one per value.
Result<Unit> check_format_count(const FormatCodes& formats, const ValueList& values) {
  if (formats.count > 1 && formats.count != values.count) {
    return make_error(Errc::malformed, "format count mismatch");
  }
  return Unit{};
}

}  // namespace

int16_t FormatCodes::at(size_t i) const {
  return static_cast<int16_t>(static_cast<uint16_t>((codes[2 * i] << 8) | codes[2 * i + 1]));
}

int16_t FormatCodes::for_value(size_t i) const {
  if (count == 0) return 0;
  return at(count == 1 ? 0 : i);
}

ValueList::Cursor::Cursor(const ValueList& values)
    : reader_(values.block.size() >= 2 ? values.block.subspan(2) : Bytes{}), left_(values.count) {}

bool ValueList::Cursor::next(std::optional<Bytes>& value) {
  // The decode validated the block, so these reads succeed; a failure still ends the walk safely.
  return next_length_prefixed(reader_, left_, value);
}

Result<BindArgs> BindArgs::decode(Bytes rest) {
  ByteReader r(rest);
  PGS_TRY(param_formats, read_formats(r));
  PGS_TRY(values, read_values(r));
  PGS_TRY(count_ok, check_format_count(*param_formats, *values));
  PGS_TRY(result_formats, read_formats(r));
  PGS_TRY(end, r.expect_end());
  return BindArgs{*param_formats, *values, *result_formats};
}

Result<Bind> Bind::decode(Bytes body) {
  PGS_TRY(head, BindView::decode(body));
  PGS_TRY(args, BindArgs::decode(head->rest));
  return Bind{head->portal, head->statement, *args};
}

Result<FunctionCall> FunctionCall::decode(Bytes body) {
  ByteReader r(body);
  PGS_TRY(oid, r.read_u32());
  PGS_TRY(formats, read_formats(r));
  PGS_TRY(values, read_values(r));
  PGS_TRY(count_ok, check_format_count(*formats, *values));
  PGS_TRY(result_format, r.read_i16());
  if (*result_format != 0 && *result_format != 1) return make_error(Errc::malformed, "format code");
  PGS_TRY(end, r.expect_end());
  return FunctionCall{*oid, *formats, *values, *result_format};
}

std::string_view Startup::get(std::string_view name) const {
  // The server applies parameters in order, so a repeated name means the last one.
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    if (it->first == name) return it->second;
  }
  return {};
}

std::vector<std::string_view> Startup::protocol_options() const {
  std::vector<std::string_view> out;
  for (const auto& [name, value] : params) {
    if (name.starts_with("_pq_.")) out.push_back(name);
  }
  return out;
}

// StartupMessage: Int32 version (major << 16 | minor), then (name, value) C strings, then a
// terminating NUL that must be the last byte (the server's "invalid startup packet layout").
// Any 3.x is accepted: for a minor above 0 the caller answers NegotiateProtocolVersion.
Result<Startup> Startup::decode(const StartupFrame& f) {
  if (f.code == kSslRequestCode || f.code == kGssEncRequestCode || f.code == kCancelRequestCode) {
    return make_error(Errc::malformed, "request code is not a startup message");
  }
  if ((f.code >> 16) != 3) return make_error(Errc::unsupported, "unsupported frontend protocol");
  Startup s{f.code, {}};
  ByteReader r(f.body);
  for (;;) {
    PGS_TRY(name, r.read_cstr());
    if (name->empty()) break;
    PGS_TRY(value, r.read_cstr());
    s.params.emplace_back(*name, *value);
  }
  PGS_TRY(end, r.expect_end());
  return s;
}

// CancelRequest (protocol 3.0): code, Int32 pid, Int32 secret; 16 bytes in all.
Result<CancelRequest> CancelRequest::decode(const StartupFrame& f) {
  if (f.code != kCancelRequestCode) return make_error(Errc::malformed, "not a cancel request");
  if (f.body.size() != 8) return make_error(Errc::malformed, "cancel request length");
  ByteReader r(f.body);
  int32_t pid = *r.read_i32();
  int32_t secret = *r.read_i32();
  return CancelRequest{pid, secret};
}

}  // namespace pgs::protocol::frontend
