// Frontend messages with argument lists (Bind, FunctionCall) and the startup-phase packets.
#include "protocol/decode_util.h"
#include "protocol/frontend.h"

namespace pgs::protocol::frontend {

namespace {

// Format codes: 0 text, 1 binary; anything else is rejected by the server too.
Result<Unit> read_formats(ByteReader& r, std::vector<int16_t>& out) {
  PGS_TRY(count, r.read_u16());
  if (r.remaining() < size_t{*count} * 2) return make_error(Errc::truncated, "format codes");
  out.reserve(*count);
  for (uint16_t i = 0; i < *count; ++i) {
    int16_t f = *r.read_i16();
    if (f != 0 && f != 1) return make_error(Errc::malformed, "format code not 0 or 1");
    out.push_back(f);
  }
  return Unit{};
}

// Int16 count (read unsigned, as the server does: at most 65535), then per value an Int32 length
// (-1 = NULL) and the bytes.
Result<Unit> read_values(ByteReader& r, std::vector<Bytes>& values, std::vector<bool>& is_null) {
  PGS_TRY(count, r.read_u16());
  if (r.remaining() < size_t{*count} * 4) return make_error(Errc::truncated, "parameter values");
  values.reserve(*count);
  is_null.reserve(*count);
  for (uint16_t i = 0; i < *count; ++i) {
    PGS_TRY(len, r.read_i32());
    if (*len < -1) return make_error(Errc::malformed, "negative parameter length");
    if (*len == -1) {
      values.push_back({});
      is_null.push_back(true);
      continue;
    }
    PGS_TRY(bytes, r.read_n(static_cast<size_t>(*len)));
    values.push_back(*bytes);
    is_null.push_back(false);
  }
  return Unit{};
}

// The server accepts 0 formats (all text), 1 (applies to all) or exactly one per value.
Result<Unit> check_format_count(size_t formats, size_t values) {
  if (formats > 1 && formats != values) return make_error(Errc::malformed, "format count mismatch");
  return Unit{};
}

}  // namespace

Result<Bind> Bind::decode(Bytes body) {
  PGS_TRY(head, BindView::decode(body));
  Bind b;
  b.portal = head->portal;
  b.statement = head->statement;
  b.params_region = head->rest;
  ByteReader r(head->rest);
  PGS_TRY(formats, read_formats(r, b.param_formats));
  PGS_TRY(values, read_values(r, b.params, b.param_is_null));
  PGS_TRY(count_ok, check_format_count(b.param_formats.size(), b.params.size()));
  PGS_TRY(results, read_formats(r, b.result_formats));
  PGS_TRY(end, r.expect_end());
  return b;
}

Result<FunctionCall> FunctionCall::decode(Bytes body) {
  ByteReader r(body);
  FunctionCall f;
  PGS_TRY(oid, r.read_u32());
  f.function_oid = *oid;
  PGS_TRY(formats, read_formats(r, f.arg_formats));
  PGS_TRY(values, read_values(r, f.args, f.arg_is_null));
  PGS_TRY(count_ok, check_format_count(f.arg_formats.size(), f.args.size()));
  PGS_TRY(result_format, r.read_i16());
  if (*result_format != 0 && *result_format != 1) return make_error(Errc::malformed, "format code");
  f.result_format = *result_format;
  PGS_TRY(end, r.expect_end());
  return f;
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
