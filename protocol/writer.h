// Encoders for the messages the proxy says itself (to clients and to servers).
// Everything appends to a caller-owned std::string used as a byte buffer.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgs::protocol {

// Appends one typed message: begin() writes type + a length placeholder, finish() patches it.
class MessageWriter {
 public:
  explicit MessageWriter(std::string& out) : out_(out) {}
  MessageWriter& begin(char type);       // typed message
  MessageWriter& begin_untyped();        // startup-phase packet (no type byte)
  MessageWriter& u8(uint8_t v);
  MessageWriter& i16(int16_t v);
  MessageWriter& i32(int32_t v);
  MessageWriter& u32(uint32_t v);
  // Bytes up to the first NUL (if any), then NUL: a string can never split the message.
  MessageWriter& cstr(std::string_view s);
  MessageWriter& raw(std::string_view s);
  // Patches the length (bytes from the length field to the end). Callers keep messages below
  // the protocol's 1 GB limit; nothing here can fail.
  void finish();

 private:
  std::string& out_;
  size_t start_ = 0;
};

// ---- To clients (backend messages) ----
// The one-byte answer to SSLRequest or GSSENCRequest when we do not encrypt: 'N' (not a typed
// message). The client then sends its StartupMessage in the clear, or gives up.
void write_encryption_refused(std::string& out);

struct ErrorSpec {
  std::string_view severity = "ERROR";  // ERROR, FATAL, ...
  std::string_view sqlstate;            // five characters
  std::string_view message;
  std::string_view detail = {};
  std::string_view hint = {};
};
void write_error(std::string& out, const ErrorSpec& e);   // 'E' with S, V, C, M (+D, H)
// An ErrorResponse / NoticeResponse ('E' / 'N') of which only the first bytes of the body are at hand
// (a server message too large to buffer): its complete fields, then the field that was cut with
// "... (truncated by pgsidecar, N bytes in all)" appended, then the terminator. `total_body` is the
// body size the original declared. Fields the original had after the cut are lost.
void write_truncated_notice(std::string& out, char type, std::string_view partial_body, size_t total_body);
void write_notice(std::string& out, const ErrorSpec& e);  // 'N'
void write_ready_for_query(std::string& out, char status);
void write_auth_ok(std::string& out);
void write_auth_cleartext(std::string& out);
void write_auth_md5(std::string& out, const uint8_t salt[4]);
void write_auth_sasl(std::string& out, std::initializer_list<std::string_view> mechanisms);
void write_auth_sasl_continue(std::string& out, std::string_view data);
void write_auth_sasl_final(std::string& out, std::string_view data);
void write_parameter_status(std::string& out, std::string_view name, std::string_view value);
void write_backend_key_data(std::string& out, int32_t pid, int32_t secret);
void write_negotiate_protocol_version(std::string& out, int32_t newest_minor,
                                      const std::vector<std::string_view>& unrecognized);
struct ColumnSpec {
  std::string_view name;
  uint32_t type_oid = 25;  // text
  int16_t type_size = -1;
};
void write_row_description(std::string& out, const std::vector<ColumnSpec>& columns);
// A DataRow of text values; std::nullopt is SQL NULL.
void write_data_row(std::string& out, const std::vector<std::optional<std::string_view>>& values);
void write_command_complete(std::string& out, std::string_view tag);
void write_empty_query_response(std::string& out);
// Replies the proxy synthesizes in the extended protocol (e.g. a Parse it answered itself).
void write_parse_complete(std::string& out);
void write_bind_complete(std::string& out);
void write_close_complete(std::string& out);
void write_no_data(std::string& out);

// ---- To servers (frontend messages) ----
void write_startup(std::string& out,
                   const std::vector<std::pair<std::string, std::string>>& params);  // protocol 3.0
void write_cancel_request(std::string& out, int32_t pid, int32_t secret);
void write_password(std::string& out, std::string_view password);  // 'p' + C string
void write_sasl_initial_response(std::string& out, std::string_view mechanism, std::string_view data);
void write_sasl_response(std::string& out, std::string_view data);
void write_query(std::string& out, std::string_view sql);
void write_parse(std::string& out, std::string_view name, std::string_view sql,
                 const std::vector<uint32_t>& param_types);
void write_close(std::string& out, char kind, std::string_view name);
// A Bind re-addressed to another statement name: `params_region` is frontend::BindView::rest of the
// client's Bind, copied unchanged.
// `streamed_tail`: bytes of the params region that follow `params_region` and are sent after this
// message's first part (a Bind larger than the proxy buffers); the length field counts them.
void write_bind(std::string& out, std::string_view portal, std::string_view statement,
                std::string_view params_region, size_t streamed_tail = 0);
void write_describe(std::string& out, char kind, std::string_view name);
void write_execute(std::string& out, std::string_view portal, int32_t max_rows);
void write_sync(std::string& out);
void write_flush(std::string& out);
void write_terminate(std::string& out);

}  // namespace pgs::protocol
