// MessageWriter and the backend messages the proxy says to clients.
#include "protocol/writer.h"

namespace pgs::protocol {

MessageWriter& MessageWriter::begin(char type) {
  out_.push_back(type);
  return begin_untyped();
}

MessageWriter& MessageWriter::begin_untyped() {
  start_ = out_.size();
  out_.append(4, '\0');
  return *this;
}

MessageWriter& MessageWriter::u8(uint8_t v) {
  out_.push_back(static_cast<char>(v));
  return *this;
}

MessageWriter& MessageWriter::i16(int16_t v) {
  const auto u = static_cast<uint16_t>(v);
  out_.push_back(static_cast<char>(u >> 8));
  out_.push_back(static_cast<char>(u & 0xff));
  return *this;
}

MessageWriter& MessageWriter::u32(uint32_t v) {
  out_.push_back(static_cast<char>(v >> 24));
  out_.push_back(static_cast<char>((v >> 16) & 0xff));
  out_.push_back(static_cast<char>((v >> 8) & 0xff));
  out_.push_back(static_cast<char>(v & 0xff));
  return *this;
}

MessageWriter& MessageWriter::i32(int32_t v) { return u32(static_cast<uint32_t>(v)); }

MessageWriter& MessageWriter::cstr(std::string_view s) {
  out_.append(s.substr(0, s.find('\0')));
  out_.push_back('\0');
  return *this;
}

MessageWriter& MessageWriter::raw(std::string_view s) {
  out_.append(s);
  return *this;
}

void MessageWriter::finish() {
  const auto len = static_cast<uint32_t>(out_.size() - start_);
  out_[start_] = static_cast<char>(len >> 24);
  out_[start_ + 1] = static_cast<char>((len >> 16) & 0xff);
  out_[start_ + 2] = static_cast<char>((len >> 8) & 0xff);
  out_[start_ + 3] = static_cast<char>(len & 0xff);
}

void write_truncated_notice(std::string& out, char type, std::string_view partial_body, size_t total_body) {
  MessageWriter w(out);
  w.begin(type);
  size_t pos = 0;
  while (pos < partial_body.size() && partial_body[pos] != '\0') {
    const char code = partial_body[pos];
    size_t end = partial_body.find('\0', pos + 1);
    if (end == std::string_view::npos) {  // the field that was cut
      std::string_view cut = partial_body.substr(pos + 1);
      // Never end inside a UTF-8 sequence: drop the last (possibly incomplete) character.
      size_t keep = cut.size();
      while (keep > 0 && (static_cast<uint8_t>(cut[keep - 1]) & 0xc0) == 0x80) --keep;
      if (keep > 0 && static_cast<uint8_t>(cut[keep - 1]) >= 0xc0) --keep;
      else if (keep < cut.size()) keep = cut.size();  // continuation bytes after ASCII: leave as is
      w.u8(static_cast<uint8_t>(code))
          .cstr(std::string(cut.substr(0, keep)) + "... (truncated by pgsidecar, " +
                std::to_string(total_body) + " bytes in all)");
      break;
    }
    w.u8(static_cast<uint8_t>(code)).cstr(partial_body.substr(pos + 1, end - pos - 1));
    pos = end + 1;
  }
  w.u8(0).finish();
}

namespace {

// ErrorResponse / NoticeResponse fields (docs "Error and Notice Message Fields"). 'S' may be
// localized by servers; 'V' never is. We send the same text in both.
void write_fields(std::string& out, char type, const ErrorSpec& e) {
  MessageWriter w(out);
  w.begin(type);
  w.u8('S').cstr(e.severity).u8('V').cstr(e.severity);
  w.u8('C').cstr(e.sqlstate).u8('M').cstr(e.message);
  if (!e.detail.empty()) w.u8('D').cstr(e.detail);
  if (!e.hint.empty()) w.u8('H').cstr(e.hint);
  w.u8(0).finish();
}

void write_empty(std::string& out, char type) { MessageWriter(out).begin(type).finish(); }

void write_auth(std::string& out, int32_t code, std::string_view data) {
  MessageWriter(out).begin('R').i32(code).raw(data).finish();
}

}  // namespace

void write_encryption_refused(std::string& out) { out.push_back('N'); }

void write_error(std::string& out, const ErrorSpec& e) { write_fields(out, 'E', e); }
void write_notice(std::string& out, const ErrorSpec& e) { write_fields(out, 'N', e); }

void write_ready_for_query(std::string& out, char status) {
  MessageWriter(out).begin('Z').u8(static_cast<uint8_t>(status)).finish();
}

void write_auth_ok(std::string& out) { write_auth(out, 0, {}); }
void write_auth_cleartext(std::string& out) { write_auth(out, 3, {}); }

void write_auth_md5(std::string& out, const uint8_t salt[4]) {
  write_auth(out, 5, std::string_view(reinterpret_cast<const char*>(salt), 4));
}

void write_auth_sasl(std::string& out, std::initializer_list<std::string_view> mechanisms) {
  MessageWriter w(out);
  w.begin('R').i32(10);
  for (std::string_view m : mechanisms) w.cstr(m);
  w.u8(0).finish();
}

void write_auth_sasl_continue(std::string& out, std::string_view data) { write_auth(out, 11, data); }
void write_auth_sasl_final(std::string& out, std::string_view data) { write_auth(out, 12, data); }

void write_parameter_status(std::string& out, std::string_view name, std::string_view value) {
  MessageWriter(out).begin('S').cstr(name).cstr(value).finish();
}

void write_backend_key_data(std::string& out, int32_t pid, int32_t secret) {
  MessageWriter(out).begin('K').i32(pid).i32(secret).finish();
}

void write_negotiate_protocol_version(std::string& out, int32_t newest_minor,
                                      const std::vector<std::string_view>& unrecognized) {
  MessageWriter w(out);
  w.begin('v').i32(newest_minor).i32(static_cast<int32_t>(unrecognized.size()));
  for (std::string_view name : unrecognized) w.cstr(name);
  w.finish();
}

// Columns the proxy describes are not table columns: table OID 0, attribute 0, typmod -1, text.
void write_row_description(std::string& out, const std::vector<ColumnSpec>& columns) {
  MessageWriter w(out);
  w.begin('T').i16(static_cast<int16_t>(columns.size()));
  for (const ColumnSpec& c : columns) {
    w.cstr(c.name).u32(0).i16(0).u32(c.type_oid).i16(c.type_size).i32(-1).i16(0);
  }
  w.finish();
}

void write_data_row(std::string& out, const std::vector<std::optional<std::string_view>>& values) {
  MessageWriter w(out);
  w.begin('D').i16(static_cast<int16_t>(values.size()));
  for (const auto& v : values) {
    if (!v) {
      w.i32(-1);
      continue;
    }
    w.i32(static_cast<int32_t>(v->size())).raw(*v);
  }
  w.finish();
}

void write_command_complete(std::string& out, std::string_view tag) {
  MessageWriter(out).begin('C').cstr(tag).finish();
}

void write_empty_query_response(std::string& out) { write_empty(out, 'I'); }
void write_parse_complete(std::string& out) { write_empty(out, '1'); }
void write_bind_complete(std::string& out) { write_empty(out, '2'); }
void write_close_complete(std::string& out) { write_empty(out, '3'); }
void write_no_data(std::string& out) { write_empty(out, 'n'); }

}  // namespace pgs::protocol
