// The frontend messages the proxy says to servers (login, cancel, injected statements).
#include "protocol/frame.h"
#include "protocol/writer.h"

namespace pgs::protocol {

void write_startup(std::string& out,
                   const std::vector<std::pair<std::string, std::string>>& params) {
  MessageWriter w(out);
  w.begin_untyped().u32(kProtocol30);
  for (const auto& [name, value] : params) w.cstr(name).cstr(value);
  w.u8(0).finish();
}

void write_cancel_request(std::string& out, int32_t pid, int32_t secret) {
  MessageWriter(out).begin_untyped().u32(kCancelRequestCode).i32(pid).i32(secret).finish();
}

void write_password(std::string& out, std::string_view password) {
  MessageWriter(out).begin('p').cstr(password).finish();
}

void write_sasl_initial_response(std::string& out, std::string_view mechanism, std::string_view data) {
  MessageWriter(out)
      .begin('p')
      .cstr(mechanism)
      .i32(static_cast<int32_t>(data.size()))
      .raw(data)
      .finish();
}

void write_sasl_response(std::string& out, std::string_view data) {
  MessageWriter(out).begin('p').raw(data).finish();
}

void write_query(std::string& out, std::string_view sql) {
  MessageWriter(out).begin('Q').cstr(sql).finish();
}

void write_parse(std::string& out, std::string_view name, std::string_view sql,
                 const std::vector<uint32_t>& param_types) {
  MessageWriter w(out);
  w.begin('P').cstr(name).cstr(sql).i16(static_cast<int16_t>(param_types.size()));
  for (uint32_t oid : param_types) w.u32(oid);
  w.finish();
}

void write_close(std::string& out, char kind, std::string_view name) {
  MessageWriter(out).begin('C').u8(static_cast<uint8_t>(kind)).cstr(name).finish();
}

void write_bind(std::string& out, std::string_view portal, std::string_view statement,
                std::string_view params_region, size_t streamed_tail) {
  const size_t start = out.size();
  MessageWriter(out).begin('B').cstr(portal).cstr(statement).raw(params_region).finish();
  if (streamed_tail == 0) return;
  // The length field (after the type byte) counts the tail the caller streams after this part.
  uint32_t len = static_cast<uint32_t>(out.size() - start - 1 + streamed_tail);
  for (int i = 0; i < 4; ++i) out[start + 1 + static_cast<size_t>(i)] = static_cast<char>((len >> (24 - 8 * i)) & 0xff);
}

void write_describe(std::string& out, char kind, std::string_view name) {
  MessageWriter(out).begin('D').u8(static_cast<uint8_t>(kind)).cstr(name).finish();
}

void write_execute(std::string& out, std::string_view portal, int32_t max_rows) {
  MessageWriter(out).begin('E').cstr(portal).i32(max_rows).finish();
}

void write_sync(std::string& out) { MessageWriter(out).begin('S').finish(); }
void write_flush(std::string& out) { MessageWriter(out).begin('H').finish(); }
void write_terminate(std::string& out) { MessageWriter(out).begin('X').finish(); }

}  // namespace pgs::protocol
